"""Schema migrations on SQLite and PostgreSQL: the migrated schema is the model's, and an old store upgrades itself."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select

from complaint_triage.store import Store
from complaint_triage.store.case_links import load_cases
from complaint_triage.store.migrate import current_revision, head_revision
from complaint_triage.store.tables import messages, metadata
from complaint_triage.testing.mail import NOTICE, build_message


def _differences(engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def test_a_new_store_is_migrated_to_exactly_the_model(store_url):  # noqa: F811
    store = Store(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
        assert _differences(store.engine) == []
    finally:
        store.close()


def test_a_store_from_before_migrations_upgrades_itself_and_keeps_its_records(store_url, triager):  # noqa: F811
    raw = build_message(NOTICE, message_id="<old@x>")
    record = triager.triage_bytes(raw, source="old.eml")
    old = create_engine(store_url)
    messages.create(old)  # what the first releases created directly, without a revision table
    now = datetime.now(timezone.utc)
    with old.begin() as connection:
        connection.execute(
            messages.insert().values(
                message_id=record.message_id,
                source="old.eml",
                raw=raw,
                raw_size=len(raw),
                stored_at=now,
                triaged_at=now,
                record=record.to_json_dict(),
                kind=record.kind,
                urgency=record.urgency,
                is_complaint=True,
                attempts=1,
            )
        )
    assert not inspect(old).has_table("alembic_version")
    old.dispose()

    store = Store(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            assert connection.execute(select(messages.c.message_id)).scalars().all() == ["<old@x>"]
        assert _differences(store.engine) == []
        cases = load_cases(store.engine, {r.message_id: r for r in store.records()})
        assert [case.key for case in cases] == [
            "complaint:16509328131"
        ]  # the old record was grouped on upgrade
        Store(store_url).close()  # opening again changes nothing
        assert len(load_cases(store.engine, {r.message_id: r for r in store.records()})) == 1
    finally:
        store.close()


def test_workers_opening_a_new_store_at_once_migrate_it_once(store_url):  # noqa: F811
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(store_url).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    store = Store(store_url)
    assert _differences(store.engine) == []
    store.close()
