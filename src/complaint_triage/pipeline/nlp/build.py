"""Assemble the spaCy pipeline from config/patterns/ and write it under models/."""

from __future__ import annotations

import json
import shutil
import tomllib
from functools import lru_cache
from pathlib import Path

import spacy
from spacy.language import Language

from complaint_triage.errors import ModelError
from complaint_triage.pipeline.nlp import components  # noqa: F401 - registers the factories
from complaint_triage.pipeline.nlp.tables import validated_linking, validated_shapes
from complaint_triage.pipeline.nlp.tokenizer import bound_suffix_search, customise_tokenizer
from complaint_triage.pipeline.nlp.vocabulary import add_vocabulary, recurring_chunks, warm
from complaint_triage.resources import config_dir, model_dir

PIPELINE_NAME = "complaint_triage_ner"
PACK_DIR = "lang"
PATTERN_FILES = ("identifiers.jsonl", "cues.jsonl", "claims.jsonl", "kinds.jsonl", "deadlines.jsonl")
VOCABULARY_FILE = "vocabulary.txt"


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ModelError(f"{path}:{number}: {exc.msg}") from exc
    return rows


def pack_paths(patterns_dir: Path) -> list[Path]:
    """The language packs: lang/CODE.jsonl, one per language, in code order."""
    return sorted((patterns_dir / PACK_DIR).glob("*.jsonl"))


def read_patterns(patterns_dir: Path) -> list[dict]:
    """Every span-ruler pattern of every JSONL file, in file order, then the language packs'."""
    shared = [row for name in PATTERN_FILES for row in _read_jsonl(patterns_dir / name)]
    return shared + [row for path in pack_paths(patterns_dir) for row in _read_jsonl(path)]


def build_pipeline(patterns_dir: Path | None = None) -> Language:
    """A blank English pipeline with our tokenizer rules, span ruler and linker."""
    patterns_dir = patterns_dir or config_dir() / "patterns"
    nlp = customise_tokenizer(spacy.blank("en"))
    nlp.meta.update(
        {"name": PIPELINE_NAME, "version": "1.0.0", "description": "complaint-triage rule patterns"}
    )
    ruler = nlp.add_pipe(
        "span_ruler",
        config={
            "spans_key": "candidates",
            "phrase_matcher_attr": "LOWER",
            "validate": True,
            "overwrite": True,
        },
    )
    ruler.add_patterns(read_patterns(patterns_dir))
    linking = validated_linking(
        tomllib.loads((patterns_dir / "linking.toml").read_text(encoding="utf-8")),
        str(patterns_dir / "linking.toml"),
    )
    shapes = validated_shapes(
        _read_jsonl(patterns_dir / "values.jsonl"), linking, str(patterns_dir / "values.jsonl")
    )
    nlp.add_pipe("value_finder", config={"shapes": shapes})
    nlp.add_pipe("identifier_linker", config={"linking": linking})
    add_vocabulary(nlp, read_vocabulary(patterns_dir))
    return nlp


def read_vocabulary(patterns_dir: Path) -> list[str]:
    """The recurring chunks of mail in vocabulary.txt (one a line; none when the file is absent)."""
    path = patterns_dir / VOCABULARY_FILE
    if not path.is_file():
        return []
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def write_vocabulary(mail_dir: Path, patterns_dir: Path | None = None, min_count: int = 2) -> Path:
    """Refresh vocabulary.txt from the chunks that recur in the .eml files under MAIL_DIR."""
    from complaint_triage.pipeline.extract import extraction_text
    from complaint_triage.pipeline.parse import parse_email

    patterns_dir = patterns_dir or config_dir() / "patterns"
    texts = (extraction_text(parse_email(path.read_bytes())) for path in sorted(mail_dir.rglob("*.eml")))
    chunks = recurring_chunks(texts, min_count)
    header = f"# Chunks of text that recur in mail (seen {min_count}+ times, at most 4 digits): built into the pipeline's vocabulary.\n"
    target = patterns_dir / VOCABULARY_FILE
    target.write_text(header + "".join(chunk + "\n" for chunk in chunks), encoding="utf-8")
    return target


def build_model(output_root: Path | None = None, patterns_dir: Path | None = None) -> Path:
    """Build the pipeline and write it to OUTPUT_ROOT/complaint_triage_ner (replacing what was there)."""
    target = (output_root / PIPELINE_NAME) if output_root else model_dir()
    nlp = build_pipeline(patterns_dir)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    return target


@lru_cache(maxsize=4)
def load_pipeline(path: str | None = None) -> Language:
    """Load the built pipeline from models/ (cached per process)."""
    location = Path(path) if path else model_dir()
    if not (location / "config.cfg").is_file():
        raise ModelError(f"no built pipeline at {location}: run `complaint-triage build-model`")
    try:
        return warm(bound_suffix_search(spacy.load(location)))
    except Exception as exc:  # spaCy raises many kinds on a stale or broken pipeline
        raise ModelError(f"cannot load the pipeline at {location}: {exc}") from exc
