"""The committed pipeline under models/ is exactly what config/patterns/ builds."""

from __future__ import annotations

import filecmp
import subprocess
import sys

from complaint_triage.pipeline.nlp.build import build_model, build_pipeline, load_pipeline
from complaint_triage.resources import model_dir


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_models_dir_matches_a_fresh_build(tmp_path):
    fresh = build_model(tmp_path)
    shipped = model_dir()
    assert _files(fresh) == _files(shipped), "models/ has different files: run `complaint-triage build-model`"
    for relative in _files(fresh):
        assert filecmp.cmp(fresh / relative, shipped / relative, shallow=False), (
            f"models/{relative} is stale: run `complaint-triage build-model`"
        )


def test_loaded_pipeline_has_the_rule_components():
    nlp = load_pipeline()
    assert nlp.pipe_names == ["span_ruler", "value_finder", "identifier_linker"]
    assert nlp.lang == "en"


def test_tokenizer_keeps_order_ids_whole_and_splits_cjk():
    nlp = build_pipeline()
    tokens = [t.text for t in nlp.make_doc("order 112-3456789-1234567 申立ID:16509328131 B0ABC1234K")]
    assert "112-3456789-1234567" in tokens
    assert tokens[2:5] == ["申", "立", "ID"]
    assert "B0ABC1234K" in tokens


def test_the_loaded_tokenizer_searches_suffixes_at_the_end_only_and_tokenises_as_the_built_one():
    """Searching the whole token for a suffix made unspaced CJK text quadratic (20,000 kanji: 36 s)."""
    from complaint_triage.pipeline.extract import extraction_text
    from complaint_triage.pipeline.nlp.tokenizer import SuffixAtEnd
    from complaint_triage.pipeline.parse import parse_email
    from tests.conftest import fixture_files

    loaded, built = load_pipeline(), build_pipeline()
    assert isinstance(loaded.tokenizer.suffix_search, SuffixAtEnd)
    assert not isinstance(built.tokenizer.suffix_search, SuffixAtEnd)
    texts = [extraction_text(parse_email(path.read_bytes())) for path in fixture_files()]
    texts += [
        "「ZENTRO」商標",
        "メールアドレス:chizai@sorami-kogei.co.jp まで",
        "https://www.amazon.co.jp/dp/B0ABCDE123を確認",
        "wow" + "!" * 39,
        "10km. 5's (B0ABCDE123).",
        "72時間以内に",
        "漢" * 300 + "。" + "ー" * 200,
    ]
    for text in texts:
        assert [(t.text, t.whitespace_) for t in loaded.make_doc(text)] == [
            (t.text, t.whitespace_) for t in built.make_doc(text)
        ]
    # The rules still save as the compiled pattern (the vocabularies differ: warming adds the lexemes' attribute strings).
    assert loaded.tokenizer.to_bytes(exclude=["vocab"]) == built.tokenizer.to_bytes(exclude=["vocab"])


def test_the_built_vocabulary_holds_the_recurring_words_and_loading_keeps_them(tmp_path):
    """Recurring words get their lexemes and splits once, at load, so a memory zone frees only new strings."""
    from complaint_triage.pipeline.nlp.build import read_vocabulary
    from complaint_triage.pipeline.nlp.vocabulary import recurring_chunks
    from complaint_triage.resources import config_dir

    chunks = read_vocabulary(config_dir() / "patterns")
    assert (
        len(chunks) > 500
        and "Complaint" in chunks
        and not any(sum(ch.isdigit() for ch in chunk) > 4 for chunk in chunks)
    )
    nlp = load_pipeline()
    assert all(chunk in nlp.vocab.strings for chunk in chunks)
    with nlp.memory_zone():
        nlp.make_doc("Complaint ID: 16509328131 about B0XYZ98765 removed.")
        assert "B0XYZ98765" in nlp.vocab.strings
    assert (
        "Complaint" in nlp.vocab.strings and "B0XYZ98765" not in nlp.vocab.strings
    )  # the new identifier is gone again
    assert recurring_chunks(["a b a 12 B0AB123456", "b a c 12 B0AB123456"], min_count=2) == ["12", "a", "b"]


def test_plain_spacy_load_finds_the_components():
    """The package registers its factories as spaCy entry points: no import of ours is needed first."""
    code = "import spacy, sys; nlp = spacy.load(sys.argv[1]); print(' '.join(nlp.pipe_names))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(model_dir())], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["span_ruler", "value_finder", "identifier_linker"]
