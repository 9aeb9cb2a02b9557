"""The store keeps one record per message, the raw bytes, and failures for replay."""

from __future__ import annotations

import time

from complaint_triage import ingest as ingest_module
from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.store import Store
from complaint_triage.testing.mail import NOTICE, build_message
from tests.conftest import sql_statements


def _messages(*raws):
    return [RawMessage(raw=raw, source=f"mem#{n}", source_name="test") for n, raw in enumerate(raws)]


def test_storing_twice_never_duplicates(triager, fresh_store):
    messages = _messages(build_message(NOTICE), build_message(NOTICE, message_id=None))
    ingest(messages, triager, fresh_store)
    ingest(messages, triager, fresh_store)
    assert fresh_store.count() == 2
    assert {r.message_id for r in fresh_store.records()} == {
        "<test-1@example.com>",
        next(r.message_id for r in fresh_store.records() if r.message_id.startswith("sha256:")),
    }


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

    ingest(
        _messages(*(build_message(NOTICE, message_id=f"<m{n}@x>") for n in range(5))),
        triager,
        fresh_store,
        settle=settle,
        batch_size=2,
    )
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


def test_sqlite_commits_before_a_mailbox_is_touched_wait_for_the_disk(triager, fresh_store):
    sent = sql_statements(fresh_store)
    ingest(
        _messages(build_message(NOTICE, message_id="<durable@x>")),
        triager,
        fresh_store,
        settle=lambda _batch: None,
        durable=True,
    )
    ingest(_messages(build_message(NOTICE, message_id="<relaxed@x>")), triager, fresh_store)
    pragmas = [statement for statement in sent if statement.startswith("PRAGMA synchronous")]
    inserts = [index for index, statement in enumerate(sent) if statement.startswith("INSERT INTO messages")]
    assert pragmas == ["PRAGMA synchronous=FULL", "PRAGMA synchronous=NORMAL"]
    assert (
        sent.index("PRAGMA synchronous=FULL")
        < inserts[0]
        < sent.index("PRAGMA synchronous=NORMAL")
        < inserts[1]
    )


def test_a_batch_is_committed_at_its_byte_limit_before_its_message_limit(triager, fresh_store, monkeypatch):
    raws = [build_message(NOTICE, message_id=f"<big{n}@x>") for n in range(5)]
    monkeypatch.setattr(ingest_module, "BATCH_BYTES", 2 * len(raws[0]) + 1)  # three messages pass it
    committed: list[int] = []
    ingest(
        _messages(*raws),
        triager,
        fresh_store,
        on_commit=lambda _connection, batch: committed.append(len(batch)),
    )
    assert committed == [3, 2] and fresh_store.count() == 5


def test_a_batch_is_committed_once_it_has_been_open_for_its_time_limit(triager, fresh_store):
    committed: list[int] = []
    ingest(
        _messages(*(build_message(NOTICE, message_id=f"<slow{n}@x>") for n in range(3))),
        triager,
        fresh_store,
        on_commit=lambda _connection, batch: committed.append(len(batch)),
        batch_seconds=1e-9,
    )  # every message is past it once triaged
    assert committed == [1, 1, 1]


def test_the_sqlite_write_ahead_log_is_copied_into_the_database_by_the_store_itself(triager, tmp_path):
    database = tmp_path / "store.db"
    store = Store(f"sqlite:///{database}")
    before = database.stat().st_size
    raws = [build_message(NOTICE + "\n" + "x" * 4000, message_id=f"<wal{n}@x>") for n in range(200)]
    ingest(_messages(*raws), triager, store)
    # 200 messages of 4 KiB are far below the automatic checkpoint's 64 MiB: only the store's own
    # checkpoint moves them into the file while the store is open (closing it would checkpoint too)
    deadline = time.monotonic() + 10
    while database.stat().st_size - before <= sum(len(raw) for raw in raws) and time.monotonic() < deadline:
        time.sleep(0.05)
    grown = database.stat().st_size - before
    store.close()
    assert grown > sum(len(raw) for raw in raws)
