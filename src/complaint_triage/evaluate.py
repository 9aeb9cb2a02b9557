"""Score the pipeline against annotated fixtures: NAME.eml beside NAME.expected.json."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from pydantic import BaseModel, Field

from complaint_triage.pipeline.triage import Triager
from complaint_triage.records import KINDS, URGENCIES

SET_FIELDS = (
    "claim_types",
    "asins",
    "trademarks",
    "registration_numbers",
    "patent_numbers",
    "copyright_registrations",
    "complaint_ids",
    "rights_owner_emails",
)
SCALAR_FIELDS = ("is_complaint", "kind", "urgency", "marketplace", "deadline_days")


class FieldScore(BaseModel):
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


class Disagreement(BaseModel):
    file: str
    field: str
    expected: object
    got: object


class Evaluation(BaseModel):
    """Scores per field, accuracies, confusion matrices and every disagreement."""

    files: int
    fields: dict[str, FieldScore]
    accuracy: dict[str, float]
    is_complaint_false_positives: int
    is_complaint_false_negatives: int
    complaint: FieldScore = Field(
        description="is_complaint as a detection task: precision and recall of complaints"
    )
    silent_misses: list[str] = Field(
        default_factory=list, description="complaints rated low without needs_review"
    )
    urgency_confusion: dict[str, dict[str, int]]
    kind_confusion: dict[str, dict[str, int]]
    disagreements: list[Disagreement] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


def _normalise_set(field: str, values) -> set[str]:
    values = values or []
    if field in {"rights_owner_emails"}:
        return {str(v).strip().lower() for v in values}
    if field == "trademarks":
        return {" ".join(str(v).split()).casefold() for v in values}
    return {str(v).strip().upper() for v in values}


def _score(tp: int, fp: int, fn: int) -> FieldScore:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return FieldScore(
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
    )


def fixture_pairs(directory: Path, recursive: bool = True) -> list[tuple[Path, Path]]:
    """Every NAME.eml in (or below) DIRECTORY that has NAME.expected.json beside it."""
    pairs = []
    for eml in sorted(directory.rglob("*.eml") if recursive else directory.glob("*.eml")):
        expected = eml.with_name(eml.name[: -len(".eml")] + ".expected.json")
        if expected.is_file():
            pairs.append((eml, expected))
    return pairs


def is_silent_miss(expected: dict, record: dict) -> bool:
    """A real complaint that the record rates low and does not flag for review: the worst outcome."""
    return (
        bool(expected.get("is_complaint"))
        and record.get("urgency") == "low"
        and not record.get("needs_review")
    )


def evaluate(directory: Path, triager: Triager, recursive: bool = True) -> Evaluation:
    """Triage every annotated fixture and compare with its annotation."""
    counts: dict[str, Counter] = defaultdict(Counter)
    correct: Counter = Counter()
    urgency_confusion = {e: {g: 0 for g in URGENCIES} for e in URGENCIES}
    kind_confusion = {e: {g: 0 for g in KINDS} for e in KINDS}
    disagreements, errors = [], []
    complaint_fp = complaint_fn = complaint_tp = 0
    silent: list[str] = []
    pairs = fixture_pairs(directory, recursive)
    for eml, expected_path in pairs:
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
        record = triager.triage_bytes(eml.read_bytes(), source=str(eml)).to_json_dict()
        if record.get("error"):
            errors.append(f"{eml.name}: {record['error']}")
        for field in SET_FIELDS:
            want, got = _normalise_set(field, expected.get(field)), _normalise_set(field, record.get(field))
            counts[field].update(tp=len(want & got), fp=len(got - want), fn=len(want - got))
            if want != got:
                disagreements.append(
                    Disagreement(file=eml.name, field=field, expected=sorted(want), got=sorted(got))
                )
        for field in SCALAR_FIELDS:
            if expected.get(field) == record.get(field):
                correct[field] += 1
            else:
                disagreements.append(
                    Disagreement(
                        file=eml.name, field=field, expected=expected.get(field), got=record.get(field)
                    )
                )
        complaint_fp += bool(record["is_complaint"] and not expected.get("is_complaint"))
        complaint_fn += bool(expected.get("is_complaint") and not record["is_complaint"])
        complaint_tp += bool(expected.get("is_complaint") and record["is_complaint"])
        if is_silent_miss(expected, record):
            silent.append(eml.name)
        if expected.get("urgency") in urgency_confusion:
            urgency_confusion[expected["urgency"]][record["urgency"]] += 1
        if expected.get("kind") in kind_confusion:
            kind_confusion[expected["kind"]][record["kind"]] += 1
    total = len(pairs) or 1
    return Evaluation(
        files=len(pairs),
        fields={
            field: _score(c["tp"], c["fp"], c["fn"]) for field, c in ((f, counts[f]) for f in SET_FIELDS)
        },
        accuracy={field: round(correct[field] / total, 4) for field in SCALAR_FIELDS},
        is_complaint_false_positives=complaint_fp,
        is_complaint_false_negatives=complaint_fn,
        complaint=_score(complaint_tp, complaint_fp, complaint_fn),
        silent_misses=silent,
        urgency_confusion=urgency_confusion,
        kind_confusion=kind_confusion,
        disagreements=disagreements,
        errors=errors,
    )
