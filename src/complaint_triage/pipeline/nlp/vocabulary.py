"""The words that recur across mail, kept in the built pipeline so that only new strings cost per message.

Inside the per-message memory zone spaCy neither keeps a lexeme it creates nor caches how it
split a chunk of text, so every word of every message was split and given its lexical
attributes anew (a third of the tokenizer's time on notices). The built pipeline's vocabulary
holds the recurring chunks (config/patterns/vocabulary.txt, refreshed from a mail corpus with
`complaint-triage build-model --vocabulary-from DIR`); `warm` tokenises them once when the
pipeline loads, outside any zone, so their lexemes and splits stay for the life of the process.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from spacy.language import Language

MAX_CHUNK_CHARS = 40  # longer chunks are URLs, base64 and the like: they do not recur
MAX_CHUNK_DIGITS = (
    4  # years, list numbers and '72' recur; identifiers (ASINs, complaint IDs) are new in every message
)
_DIGIT = re.compile(r"\d")


def recurring_chunks(texts: Iterable[str], min_count: int = 2) -> list[str]:
    """The space-separated chunks seen at least MIN_COUNT times, with few digits (not identifiers), sorted."""
    counts = Counter(chunk for text in texts for chunk in text.split())
    return sorted(
        chunk
        for chunk, seen in counts.items()
        if seen >= min_count
        and len(chunk) <= MAX_CHUNK_CHARS
        and len(_DIGIT.findall(chunk)) <= MAX_CHUNK_DIGITS
    )


def add_vocabulary(nlp: Language, chunks: Iterable[str]) -> None:
    """Store the chunks in the pipeline's strings (saved with it in vocab/strings.json)."""
    for chunk in chunks:
        nlp.vocab.strings.add(chunk)


def warm(nlp: Language) -> Language:
    """Tokenise every string of the vocabulary once, outside a memory zone: lexemes and splits stay cached."""
    if nlp.vocab.in_memory_zone:
        raise RuntimeError("the vocabulary must be warmed outside a memory zone")
    for string in list(nlp.vocab.strings):
        if (
            string
            and not string.isspace()
            and len(string) <= MAX_CHUNK_CHARS
            and not any(ch.isspace() for ch in string)
        ):
            nlp.tokenizer(string)
    return nlp
