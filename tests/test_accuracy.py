"""The pipeline meets its accuracy targets on the tuned corpus in fixtures/ (issue targets).

The blind batches under fixtures/blind/ are scored separately: they measure mail the patterns were
not tuned against, and their scores are kept in the README.
"""

from __future__ import annotations

import pytest

from complaint_triage.evaluate import evaluate, fixture_pairs
from tests.conftest import FIXTURES

TARGETS = {
    "asins": 0.97,
    "complaint_ids": 0.97,
    "rights_owner_emails": 0.97,
    "claim_types": 0.97,
    "trademarks": 0.93,
    "registration_numbers": 0.93,
    "patent_numbers": 0.93,
}


@pytest.fixture(scope="module")
def scores(triager):
    return evaluate(FIXTURES, triager, recursive=False)


def test_corpus_is_large_enough():
    assert len(fixture_pairs(FIXTURES, recursive=False)) >= 60


@pytest.mark.parametrize("field", sorted(TARGETS))
def test_field_f1_meets_target(scores, field):
    assert scores.fields[field].f1 >= TARGETS[field], [d for d in scores.disagreements if d.field == field]


def test_urgency_and_kind_accuracy(scores):
    assert scores.accuracy["urgency"] >= 0.93, [d for d in scores.disagreements if d.field == "urgency"]
    assert scores.accuracy["kind"] >= 0.90, [d for d in scores.disagreements if d.field == "kind"]


def test_no_false_positive_complaint(scores):
    assert scores.is_complaint_false_positives == 0


def test_no_fixture_fails_to_parse(scores):
    assert scores.errors == []


def test_blind_batches_are_annotated_and_parse(triager):
    """Every blind batch message has its annotation and triages without an error."""
    scores = evaluate(FIXTURES / "blind", triager)
    assert scores.files >= 60
    assert scores.errors == []


# The targets on the whole annotated corpus: the tuned fixtures and every blind batch.
WHOLE_CORPUS_F1 = {
    "asins": 0.95,
    "complaint_ids": 0.95,
    "rights_owner_emails": 0.95,
    "claim_types": 0.95,
    "trademarks": 0.90,
    "registration_numbers": 0.90,
}


@pytest.fixture(scope="module")
def whole_corpus(triager):
    return evaluate(FIXTURES, triager, recursive=True)


@pytest.mark.parametrize("field", sorted(WHOLE_CORPUS_F1))
def test_whole_corpus_field_f1_meets_target(whole_corpus, field):
    assert whole_corpus.fields[field].f1 >= WHOLE_CORPUS_F1[field], [
        d for d in whole_corpus.disagreements if d.field == field
    ]


def test_whole_corpus_complaint_precision_recall_and_no_silent_miss(whole_corpus):
    assert whole_corpus.complaint.precision >= 0.97 and whole_corpus.complaint.recall >= 0.97
    assert whole_corpus.silent_misses == []


def test_whole_corpus_kind_and_urgency_accuracy(whole_corpus):
    assert whole_corpus.accuracy["kind"] >= 0.90, [d for d in whole_corpus.disagreements if d.field == "kind"]
    assert whole_corpus.accuracy["urgency"] >= 0.90, [
        d for d in whole_corpus.disagreements if d.field == "urgency"
    ]


def test_whole_corpus_is_large(whole_corpus):
    assert whole_corpus.files >= 190
