"""Identity that cannot mix two messages: reused Message-IDs, the same bytes twice, reprocessing."""

from __future__ import annotations

from pathlib import Path

from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.store.identity import content_digest, distinct_identity

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
FIRST = (REGRESSIONS / "reused-message-id-first.eml").read_bytes()
SECOND = (REGRESSIONS / "reused-message-id-second.eml").read_bytes()


def _messages(*raws, folder="INBOX"):
    return [RawMessage(raw=raw, source=f"{folder}#{n}", source_name="test") for n, raw in enumerate(raws)]


def _stored(store) -> dict[str, tuple[str, bytes]]:
    """message_id -> (record subject, first line of the stored raw Subject)."""
    raws = {message.source: message.raw for message in store.raw_messages()}
    return {
        row["message_id"]: (_field(row["record"], "subject"), raws[row["source"]]) for row in store.rows()
    }


def _subject_of(raw: bytes) -> str:
    return next(line for line in raw.decode().splitlines() if line.startswith("Subject: "))[
        len("Subject: ") :
    ]


def test_a_second_message_with_a_stored_message_id_is_its_own_record(triager, fresh_store):
    ingest(_messages(FIRST), triager, fresh_store)
    ingest(_messages(SECOND, folder="Lists"), triager, fresh_store)
    stored = _stored(fresh_store)
    assert set(stored) == {"<reused-id@list.example>", f"<reused-id@list.example> {content_digest(SECOND)}"}
    for subject, raw in stored.values():  # the record and the raw bytes are the same message
        assert subject == _subject_of(raw)


def test_two_messages_with_one_message_id_in_one_batch_are_both_kept(triager, fresh_store):
    ingest(_messages(FIRST, SECOND), triager, fresh_store)
    assert sorted(subject for subject, _raw in _stored(fresh_store).values()) == [
        "Notice: Policy Warning",
        "This week on the list",
    ]


def test_the_same_bytes_from_two_folders_are_one_record(triager, fresh_store):
    ingest(_messages(FIRST, SECOND), triager, fresh_store)
    ingest(_messages(FIRST, SECOND, folder="Archive"), triager, fresh_store)
    assert fresh_store.count() == 2


def test_reprocessing_changes_no_record(triager, fresh_store):
    ingest(_messages(FIRST, SECOND), triager, fresh_store)
    before = {row["message_id"]: row["record"] for row in fresh_store.rows()}
    ingest(fresh_store.raw_messages(), triager, fresh_store)
    after = {row["message_id"]: row["record"] for row in fresh_store.rows()}
    assert after == before and fresh_store.count() == 2


def test_the_stored_check_is_for_exactly_these_bytes(triager, fresh_store):
    ingest(_messages(FIRST), triager, fresh_store)
    assert fresh_store.holds("<reused-id@list.example>", FIRST)
    assert not fresh_store.holds("<reused-id@list.example>", SECOND)


def test_distinct_identity_fits_the_column():
    assert distinct_identity("<a@b>", b"x") == f"<a@b> {content_digest(b'x')}"
    assert distinct_identity("<" + "a" * 990 + ">", b"x") == content_digest(b"x")
    assert distinct_identity(content_digest(b"x"), b"x") == content_digest(b"x")


def _field(record, name: str):
    return record[name] if isinstance(record, dict) else getattr(record, name)
