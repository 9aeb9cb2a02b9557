"""The spaCy pipeline: a blank language, our tokenizer rules, rule patterns and linking components."""
