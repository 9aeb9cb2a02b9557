"""The store on real PostgreSQL: the SQLite suite's behaviour, concurrent writers, hostile values, WAL readers.

Each test gets its own schema (chosen through the URL's search_path, so the store code is the
same as in production) and drops it afterwards: parallel and CI runs never collide. Without
PostgreSQL the tests skip on a laptop and fail under CI (`require_service`).
Set COMPLAINT_TRIAGE_TEST_POSTGRES_URL to use another server.
"""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import tests.test_store as sqlite_suite
from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage, TriageRecord
from complaint_triage.store import Store
from complaint_triage.store.leases import leases_for
from complaint_triage.testing.mail import NOTICE, build_message
from complaint_triage.testing.postgres import (  # noqa: F401
    POSTGRES_URL,
    postgres_available,
    postgres_description,
    postgres_schema_url,
)
from tests.conftest import require_postgres

# The SQLite suite, run again here: its tests ask for `fresh_store`, which this module overrides.
from tests.test_store import (  # noqa: F401
    test_a_batch_is_committed_at_its_byte_limit_before_its_message_limit,
    test_a_batch_is_committed_once_it_has_been_open_for_its_time_limit,
    test_failures_are_stored_with_their_reason_and_replayable,
    test_no_settle_without_a_store,
    test_raw_bytes_are_kept_for_reprocessing,
    test_reprocessing_updates_in_place,
    test_settle_runs_only_after_commit,
    test_storing_twice_never_duplicates,
)


@pytest.fixture
def fresh_store():
    """A store on PostgreSQL, in a schema of its own (overrides the SQLite one for this module)."""
    require_postgres()
    with postgres_schema_url() as url:
        store = Store(url)
        yield store
        store.close()


def test_every_backend_neutral_store_test_runs_here():
    neutral = {name for name in vars(sqlite_suite) if name.startswith("test_") and "sqlite" not in name}
    assert neutral <= set(globals()), (
        f"import these from tests.test_store too: {sorted(neutral - set(globals()))}"
    )


def test_the_url_picks_postgresql(fresh_store):
    assert fresh_store.engine.dialect.name == "postgresql"
    assert fresh_store.engine.dialect.driver == "psycopg"


def test_records_round_trip_through_json_and_dates(triager, fresh_store):
    raw = build_message(NOTICE)
    record = triager.triage_bytes(raw, source="mem#0")
    fresh_store.save(RawMessage(raw=raw, source="mem#0"), record)
    assert list(fresh_store.records()) == [record]
    row = fresh_store.rows()[0]
    assert row["received_at"].utcoffset() is not None and row["raw_size"] == len(raw)


def _writer(url: str, start, messages: list[RawMessage], rounds: int) -> None:
    """One worker process: wait for the other, then save the same messages again and again."""
    from complaint_triage.pipeline.triage import default_triager

    triager = default_triager("UTC")
    records = [(message, triager.triage_bytes(message.raw, source=message.source)) for message in messages]
    store = Store(url)
    start.wait(timeout=60)
    for _ in range(rounds):
        store.save_many(records)
        for pair in records:
            store.save(*pair)
    store.close()


def _messages(count: int) -> list[RawMessage]:
    return [
        RawMessage(raw=build_message(NOTICE, message_id=f"<race-{n}@example.com>"), source=f"mem#{n}")
        for n in range(count)
    ]


def test_two_processes_writing_the_same_messages_keep_one_row_each(store_url):
    messages, rounds = _messages(20), 5
    Store(
        store_url
    ).close()  # the schema exists before the race; creating it concurrently is the migrations' job
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [context.Process(target=_writer, args=(store_url, start, messages, rounds)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=180)
    assert [writer.exitcode for writer in writers] == [0, 0]
    store = Store(store_url)
    rows = store.rows()
    store.close()
    assert len(rows) == len(messages)
    assert {row["message_id"] for row in rows} == {f"<race-{n}@example.com>" for n in range(len(messages))}
    assert all(row["attempts"] == 2 * 2 * rounds for row in rows)  # every save counted, none lost


def test_hostile_identities_and_text_are_stored_as_given(triager, store_url):
    store = Store(store_url)
    hostile = [
        b"Message-ID: <'); DROP TABLE messages;-- @x>\r\nSubject: '; DELETE FROM messages; --\r\nFrom: a@b.example\r\n\r\nbody",
        b"Message-ID: <nul\x00@x>\r\nSubject: nul\x00byte\r\nFrom: a\x00b <a@b.example>\r\n\r\nbody \x00",
        b"Message-ID: <"
        + "\u00e9".encode() * 900
        + b"@x>\r\nSubject: long identity\r\nFrom: a@b.example\r\n\r\nbody",
        b"Message-ID: <\xff\xfe@x>\r\nSubject: \xe9\r\nFrom: \xff <a@b.example>\r\n\r\nbody",
    ]
    ingest([RawMessage(raw=raw, source=f"mem#{n}") for n, raw in enumerate(hostile)], triager, store)
    assert store.count() == len(hostile)
    assert sorted(message.raw for message in store.raw_messages()) == sorted(hostile)
    assert any(record.message_id == "<'); DROP TABLE messages;-- @x>" for record in store.records())
    store.close()


def test_sqlite_readers_are_not_blocked_by_an_open_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    writer, reader = Store(url), Store(url)
    raw = build_message(NOTICE)
    writer.save(RawMessage(raw=raw, source="a"), TriageRecord(message_id="<a@x>", source="a"))
    with writer.engine.begin() as transaction:
        transaction.exec_driver_sql("update messages set attempts = attempts + 1")
        assert reader.count() == 1  # WAL: `report`, `export` and `status` read while the worker writes
    writer.close()
    reader.close()


def test_every_postgresql_session_has_keepalives_and_an_idle_transaction_limit_and_keeps_the_url_options():
    """Store and lease sessions: a worker whose machine vanishes is noticed in 30 s, not the kernel's two hours."""
    require_postgres()
    with postgres_schema_url() as store_url:
        store = Store(store_url)
        leases = leases_for(store.engine)
        settings = (
            "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'), "
            "current_setting('tcp_keepalives_count'), current_setting('idle_in_transaction_session_timeout'), current_schema()"
        )
        with store.engine.connect() as connection:
            stored = tuple(connection.execute(text(settings)).one())
        with leases.hold("box") as lease:
            assert lease is not None
            with leases.engine.connect() as connection:
                leased = tuple(connection.execute(text(settings)).one())
        schema = make_url(store_url).query["options"].removeprefix("-csearch_path=")
        leases.close()
        store.close()
    assert stored == leased == ("15", "5", "3", "10min", schema)
