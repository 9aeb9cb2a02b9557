"""The store keeps one record per message, the raw bytes, and failures for replay."""

from __future__ import annotations

from complaint_triage.ingest import ingest
from complaint_triage.models import RawMessage
from tests.mail import NOTICE, build_message


def _messages(*raws):
    return [RawMessage(raw=raw, source=f"mem#{n}", source_name="test") for n, raw in enumerate(raws)]


def test_storing_twice_never_duplicates(triager, fresh_store):
    messages = _messages(build_message(NOTICE), build_message(NOTICE, message_id=None))
    ingest(messages, triager, fresh_store)
    ingest(messages, triager, fresh_store)
    assert fresh_store.count() == 2
    assert {r.message_id for r in fresh_store.records()} == {"<test-1@example.com>", next(r.message_id for r in fresh_store.records() if r.message_id.startswith("sha256:"))}


def test_raw_bytes_are_kept_for_reprocessing(triager, fresh_store):
    raw = build_message(NOTICE)
    ingest(_messages(raw), triager, fresh_store)
    assert [m.raw for m in fresh_store.raw_messages()] == [raw]


def test_failures_are_stored_with_their_reason_and_replayable(triager, fresh_store):
    summary = ingest(_messages(b"", build_message(NOTICE)), triager, fresh_store)
    assert (summary.triaged, summary.failed) == (1, 1)
    failed = list(fresh_store.raw_messages(failed_only=True))
    assert len(failed) == 1 and failed[0].raw == b""
    assert [r.error for r in fresh_store.records() if r.error] == ["empty message"]


def test_settle_runs_only_after_commit(triager, fresh_store):
    seen = []

    def settle(batch):
        seen.append((len(batch), fresh_store.count()))

    ingest(_messages(*(build_message(NOTICE, message_id=f"<m{n}@x>") for n in range(5))), triager, fresh_store, settle=settle, batch_size=2)
    assert seen == [(2, 2), (2, 4), (1, 5)]


def test_no_settle_without_a_store(triager):
    seen = []
    ingest(_messages(build_message(NOTICE)), triager, None, settle=seen.append)
    assert seen == []


def test_reprocessing_updates_in_place(triager, fresh_store):
    ingest(_messages(build_message(NOTICE)), triager, fresh_store)
    ingest(fresh_store.raw_messages(), triager, fresh_store)
    rows = fresh_store.rows()
    assert len(rows) == 1 and rows[0]["attempts"] == 2


def test_sqlite_uses_wal(fresh_store):
    with fresh_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
