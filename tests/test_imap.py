"""The IMAP source against a real Dovecot: incremental polls, flags, moves, UIDVALIDITY, limits, TLS, failures.

Dovecot runs on loopback with a generated config (tests/dovecot.py); without it these tests skip
on a laptop and fail under CI. Each test reads a mailbox of its own.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import timedelta

import pytest
from imapclient.response_parser import parse_fetch_response

from complaint_triage.errors import SourceAuthError, SourceError, TransientSourceError
from complaint_triage.ingest import ingest
from complaint_triage.service import Backoff, Service, source_statuses
from complaint_triage.settings import Settings, SourceSettings
from complaint_triage.sources.imap import ImapSource, plan_fetches
from complaint_triage.sources.imap_session import bodies_only, connect
from complaint_triage.store import Store
from complaint_triage.testing.dovecot import LEGACY_HOST, PASSWORD, Dovecot, Mailbox, dovecot_available
from complaint_triage.testing.mail import PASSWORD_ENV, message_of_size, sample_messages
from tests.conftest import fixture_files, poll, require_service, sql_statements

FAST = Backoff(attempts=8, first_wait=0.2, max_wait=1.0)


def attempts(store: Store) -> dict[str, int]:
    """How many times each stored message was triaged, by Message-ID."""
    return {row["message_id"]: row["attempts"] for row in store.rows()}


def test_fresh_inbox_is_triaged_once_and_a_second_poll_fetches_nothing(
    mailbox, triager, fresh_store, checkpoints
):
    mailbox.append(sample_messages(240, "fresh"))
    source = ImapSource(mailbox.settings(fetch_chunk=50), checkpoints)
    first = poll(source, triager, fresh_store)
    second = poll(source, triager, fresh_store)
    assert (first.triaged + first.failed, second.triaged + second.failed) == (240, 0)
    assert sorted(attempts(fresh_store)) == sorted(f"<fresh-{n}@test.example>" for n in range(240))
    assert set(attempts(fresh_store).values()) == {1}
    mark = checkpoints.folder("inbox", "INBOX")
    assert mark.last_uid == 240 and source.backlog == 0
    record = next(r for r in fresh_store.records() if r.message_id == "<fresh-0@test.example>")
    assert (
        record.source
        == f"imap://{mailbox.user}@127.0.0.1:{mailbox.server.plain_port}/INBOX;UIDVALIDITY={mark.uidvalidity}/;UID=1"
    )
    source.close()


def test_records_from_imap_equal_records_from_the_files(mailbox, triager, fresh_store, checkpoints):
    files = fixture_files()[:15]
    mailbox.append([path.read_bytes() for path in files])
    source = ImapSource(mailbox.settings(), checkpoints)
    poll(source, triager, fresh_store)
    source.close()
    for path, record in zip(
        files, fresh_store.records(), strict=True
    ):  # stored in UID order, which is append order
        local = triager.triage_bytes(
            path.read_bytes(), source=record.source, source_name="inbox"
        ).to_json_dict()
        expected = json.loads(path.with_name(path.name.removesuffix(".eml") + ".expected.json").read_text())
        assert {**record.to_json_dict(), "message_id": None} == {**local, "message_id": None}, path.name
        assert (record.kind, record.urgency) == (expected["kind"], expected["urgency"]), path.name


def test_only_mail_arriving_between_polls_is_fetched(mailbox, triager, fresh_store, checkpoints):
    mailbox.append(sample_messages(10, "early"))
    source = ImapSource(mailbox.settings(), checkpoints)
    poll(source, triager, fresh_store)
    mailbox.append(sample_messages(3, "late"))
    fetched = []
    poll(source, triager, fresh_store, on_record=lambda record: fetched.append(record.message_id))
    assert fetched == [f"<late-{n}@test.example>" for n in range(3)]
    assert fresh_store.count() == 13 and set(attempts(fresh_store).values()) == {1}
    source.close()


def test_keep_opens_read_only_and_leaves_every_flag_as_it_was(mailbox, triager, fresh_store, checkpoints):
    mailbox.append(sample_messages(3, "plain"))
    mailbox.append(sample_messages(1, "flagged"), flags=(b"\\Flagged",))
    mailbox.append(sample_messages(1, "read"), flags=(b"\\Seen",))
    before = mailbox.server.flags(mailbox.user)
    source = ImapSource(mailbox.settings(after="keep"), checkpoints)
    assert poll(source, triager, fresh_store).triaged == 5
    source.close()
    # \Recent survives only if no session selected the folder read-write.
    assert mailbox.server.flags(mailbox.user) == before
    assert all(b"\\Recent" in flags for flags in before.values())


def test_seen_flags_committed_mail_only(mailbox, triager, fresh_store, checkpoints):
    mailbox.append(sample_messages(6, "seen"))
    source = ImapSource(mailbox.settings(after="seen"), checkpoints)
    with pytest.raises(RuntimeError):
        poll(source, triager, fresh_store, batch_size=2, on_record=_crash_at(5))
    flags = mailbox.server.flags(mailbox.user)
    assert [b"\\Seen" in flags[uid] for uid in sorted(flags)] == [True] * 4 + [False] * 2
    poll(source, triager, fresh_store)
    assert all(b"\\Seen" in f for f in mailbox.server.flags(mailbox.user).values())
    source.close()


def _crash_at(n: int):
    """An on_record hook that fails at the Nth record: a crash between triage and commit."""
    seen = []

    def on_record(record) -> None:
        seen.append(record)
        if len(seen) == n:
            raise RuntimeError("crash before the commit")

    return on_record


@pytest.mark.parametrize("host", ["127.0.0.1", LEGACY_HOST], ids=["MOVE", "COPY-fallback"])
def test_move_moves_only_committed_mail(host, mailbox, triager, fresh_store, checkpoints):
    mailbox.append(sample_messages(25, "move"))
    source = ImapSource(mailbox.settings(host=host, after="move", move_to="Triage/Processed"), checkpoints)
    with pytest.raises(RuntimeError):
        poll(source, triager, fresh_store, batch_size=10, on_record=_crash_at(25))
    stored = {row["message_id"] for row in fresh_store.rows()}
    moved = mailbox.server.message_ids(mailbox.user, "Triage/Processed")
    assert len(stored) == 20 and set(moved) == stored
    assert len(mailbox.server.uids(mailbox.user)) == 5
    poll(source, triager, fresh_store)
    assert mailbox.server.uids(mailbox.user) == []
    assert len(mailbox.server.message_ids(mailbox.user, "Triage/Processed")) == 25
    assert set(attempts(fresh_store).values()) == {1}
    source.close()


def test_mail_committed_but_not_yet_moved_is_moved_by_the_next_poll(
    mailbox, triager, fresh_store, checkpoints
):
    mailbox.append(sample_messages(4, "late-move"))
    source = ImapSource(mailbox.settings(after="move", move_to="Done"), checkpoints)
    # Committed, then the connection "dropped" before settling: no settle call at all.
    ingest(source.fetch_messages(), triager, fresh_store, on_commit=source.record_progress)
    assert len(mailbox.server.uids(mailbox.user)) == 4
    assert poll(source, triager, fresh_store).triaged == 0
    assert mailbox.server.uids(mailbox.user) == [] and len(mailbox.server.uids(mailbox.user, "Done")) == 4
    source.close()


def test_uidvalidity_reset_rescans_without_duplicates(mailbox, triager, fresh_store, checkpoints):
    originals = sample_messages(5, "uv")
    mailbox.append(originals, folder="Notices")
    source = ImapSource(mailbox.settings(folders=["Notices"]), checkpoints)
    poll(source, triager, fresh_store)
    before = checkpoints.folder("inbox", "Notices")
    source.close()
    with mailbox.server.client(mailbox.user) as client:
        client.delete_folder("Notices")
    time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock
    mailbox.append(originals + sample_messages(2, "uv-new"), folder="Notices")
    summary = poll(source, triager, fresh_store)
    after = checkpoints.folder("inbox", "Notices")
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 7
    assert summary.triaged + summary.failed == 7 and fresh_store.count() == 7
    assert sorted(attempts(fresh_store).values()) == [1, 1, 2, 2, 2, 2, 2]
    source.close()


def test_several_folders_each_keep_their_own_checkpoint(mailbox, triager, fresh_store, checkpoints):
    mailbox.append(sample_messages(3, "inbox"))
    mailbox.append(sample_messages(2, "legal"), folder="Legal")
    source = ImapSource(mailbox.settings(folders=["INBOX", "Legal"], after="seen"), checkpoints)
    assert poll(source, triager, fresh_store, batch_size=4).triaged == 5
    assert {folder: mark.last_uid for folder, mark in checkpoints.folders("inbox").items()} == {
        "INBOX": 3,
        "Legal": 2,
    }
    assert all(b"\\Seen" in f for f in mailbox.server.flags(mailbox.user, "Legal").values())
    source.close()


def test_oversized_message_is_recorded_with_headers_and_reason_not_fetched_whole(
    mailbox, triager, fresh_store, checkpoints
):
    mailbox.append(
        [
            message_of_size(500_000, "<big@test.example>"),
            message_of_size(300_000, "<large@test.example>"),
            message_of_size(2_000, "<small@test.example>"),
        ]
    )
    source = ImapSource(mailbox.settings(max_message_bytes=400_000), checkpoints)
    summary = poll(source, triager, fresh_store)
    source.close()
    assert (summary.triaged, summary.failed) == (2, 1)
    big = next(r for r in fresh_store.records() if r.message_id == "<big@test.example>")
    assert "over the 400000-byte limit" in big.error and big.subject == "Notice: Policy Warning"
    raw = next(m.raw for m in fresh_store.raw_messages(failed_only=True))
    assert raw.endswith(b"\r\n\r\n") and len(raw) < 1_000 and b"xxxx" not in raw
    assert {row["message_id"]: row["raw_size"] > 250_000 for row in fresh_store.rows()} == {
        "<big@test.example>": False,
        "<large@test.example>": True,
        "<small@test.example>": False,
    }
    assert "body_count=2 " in _fetching_session_logout(
        mailbox
    )  # the oversized message's body never crossed the wire


def _fetching_session_logout(mailbox, wait: float = 10.0) -> str:
    """Dovecot's logout line of the session that fetched bodies (the APPEND session fetched none); the log is written asynchronously."""
    deadline = time.monotonic() + wait
    while True:
        lines = [
            line
            for line in mailbox.server.session_lines(mailbox.user)
            if "Logged out" in line and "body_count=0 " not in line
        ]
        if lines or time.monotonic() > deadline:
            assert lines, "no logout line of the fetching session in Dovecot's log"
            return lines[-1]
        time.sleep(0.1)


def test_plan_fetches_keeps_uid_order_and_fetches_large_messages_alone():
    plan = list(plan_fetches([1, 2, 3, 4, 5, 6, 7], large={3, 6}, oversized={6}, chunk=2))
    assert plan == [([1, 2], False), ([3], False), ([4, 5], False), ([6], True), ([7], False)]


def test_protocol_trace_is_off_unless_its_debug_lines_are_logged(mailbox, caplog):
    mailbox.append(sample_messages(2, "trace"))
    quiet = connect(mailbox.settings())
    assert quiet._imap.debug == 0  # imaplib formats no repr of lines and bodies for a trace nobody reads
    quiet.select_folder("INBOX", readonly=True)
    assert len(quiet.fetch(quiet.search("ALL"), ["BODY.PEEK[]"])) == 2
    quiet.logout()
    caplog.set_level(logging.DEBUG, logger="imapclient.imaplib")
    traced = connect(mailbox.settings())
    traced.select_folder("INBOX", readonly=True)
    traced.logout()
    assert traced._imap.debug == 5 and any(
        "SELECT" in record.getMessage() for record in caplog.records if record.name == "imapclient.imaplib"
    )
    assert PASSWORD not in caplog.text


BODY_ONE, BODY_TWO = b"Subject: one\r\n\r\nfirst body\r\n", b"Subject: two\r\n\r\n)second body (\r\n"


@pytest.mark.parametrize(
    "data",
    [
        [
            (b"7 (UID 41 BODY[] {%d}" % len(BODY_ONE), BODY_ONE),
            b")",
            (b"8 (UID 42 BODY[] {%d}" % len(BODY_TWO), BODY_TWO),
            b")",
        ],
        [
            (b"7 (BODY[] {%d}" % len(BODY_ONE), BODY_ONE),
            b" UID 41)",
            (b"8 (BODY[] {%d}" % len(BODY_TWO), BODY_TWO),
            b" UID 42)",
        ],
    ],
)
def test_a_bodies_only_fetch_answer_reads_as_imapclient_reads_it(data):
    assert (
        bodies_only(data)
        == parse_fetch_response(data, False, True)
        == {41: {b"SEQ": 7, b"BODY[]": BODY_ONE}, 42: {b"SEQ": 8, b"BODY[]": BODY_TWO}}
    )


@pytest.mark.parametrize(
    "data",
    [
        [
            (b"7 (UID 41 BODY[] {%d}" % len(BODY_ONE), BODY_ONE),
            b")",
            b"3 (FLAGS (\\Seen) UID 12)",
        ],  # a flag change another session made
        [(b"7 (UID 41 FLAGS () BODY[] {%d}" % len(BODY_ONE), BODY_ONE), b")"],  # more than the body
        [(b"7 (UID 41 BODY[] {%d}" % len(BODY_ONE), BODY_ONE), b" UID 41)"],  # the UID twice
        [(b"7 (BODY[] {%d}" % len(BODY_ONE), BODY_ONE), b")"],  # no UID
        [(b"7 (UID 41 BODY[] {%d}" % (len(BODY_ONE) + 1), BODY_ONE), b")"],  # a literal of another length
        [(b"7 (UID 41 BODY[] {%d}" % len(BODY_ONE), BODY_ONE)],  # cut short
    ],
)
def test_any_other_fetch_answer_is_left_to_imapclient(data):
    assert bodies_only(data) is None


def test_a_source_that_flags_or_moves_commits_durably_first(mailbox, triager, fresh_store):
    mailbox.append(sample_messages(3, "durable"))
    sent = sql_statements(fresh_store)
    for after, expected in (("keep", "PRAGMA synchronous=NORMAL"), ("seen", "PRAGMA synchronous=FULL")):
        sent.clear()
        service = Service(
            Settings(sources=[mailbox.settings(name=f"box-{after}", after=after)]),
            store=fresh_store,
            triager=triager,
        )
        assert service.poll_all()[0].summary.triaged == 3
        service.close()
        assert [statement for statement in sent if statement.startswith("PRAGMA synchronous")] == [expected]


def test_wrong_password_is_one_clear_error_per_poll_and_other_sources_go_on(
    dovecot, imap_password, triager, fresh_store, monkeypatch, caplog
):
    good, bad = Mailbox(dovecot, dovecot.new_user()), Mailbox(dovecot, dovecot.new_user())
    good.append(sample_messages(3, "good"))
    monkeypatch.setenv("WRONG_IMAP_PASSWORD", "not-the-Pa55word")
    settings = Settings(
        sources=[bad.settings(name="bad", password_env="WRONG_IMAP_PASSWORD"), good.settings(name="good")]
    )
    service = Service(settings, store=fresh_store, triager=triager, backoff=FAST)
    first, second = service.poll_all(), service.poll_all()
    service.close()
    assert "refused the login" in first[0].error and first[1].error is None and first[1].summary.triaged == 3
    assert second[0].error == first[0].error and second[1].error is None
    failures = [line for line in dovecot.session_lines(bad.user) if "auth failed" in line]
    assert len(failures) == 2  # one attempt per poll, no retry storm
    status = {entry.source_name: entry for entry in _statuses(service)}
    assert (
        status["bad"].last_error
        and status["bad"].last_success_at is None
        and status["good"].messages_triaged == 3
    )
    assert "not-the-Pa55word" not in caplog.text + first[0].error


def _statuses(service: Service):
    return source_statuses(service.settings, service.store)


def test_missing_password_is_an_auth_error(mailbox, checkpoints, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    source = ImapSource(mailbox.settings(), checkpoints)
    with pytest.raises(SourceAuthError, match=PASSWORD_ENV):
        list(source.fetch_messages())


def test_password_file_is_read_and_never_logged(mailbox, triager, fresh_store, checkpoints, tmp_path, caplog):
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    mailbox.append(sample_messages(1, "file"))
    source = ImapSource(mailbox.settings(password_env=None, password_file=str(secret)), checkpoints)
    assert poll(source, triager, fresh_store).triaged == 1
    source.close()
    assert PASSWORD not in caplog.text


def test_xoauth2_token_is_fetched_afresh_on_every_connect(
    mailbox, triager, fresh_store, checkpoints, tmp_path
):
    calls = tmp_path / "calls"
    script = tmp_path / "token.sh"
    script.write_text(f"#!/bin/sh\necho call >> {calls}\nprintf '%s' '{PASSWORD}'\n")
    script.chmod(0o755)
    mailbox.append(sample_messages(2, "oauth"))
    source = ImapSource(mailbox.settings(password_env=None, oauth2_token_command=str(script)), checkpoints)
    assert poll(source, triager, fresh_store).triaged == 2
    source.close()
    poll(source, triager, fresh_store)
    source.close()
    assert calls.read_text().count("call") == 2
    assert sum("method=XOAUTH2" in line for line in mailbox.server.session_lines(mailbox.user)) == 2


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_a_private_ca_is_accepted_with_the_ca_file_and_refused_without(
    security, mailbox, triager, fresh_store, checkpoints
):
    server = mailbox.server
    port = server.tls_port if security == "ssl" else server.plain_port
    mailbox.append(sample_messages(2, "tls"))
    trusted = ImapSource(
        mailbox.settings(security=security, port=port, host="localhost", ca_file=str(server.ca_file)),
        checkpoints,
    )
    assert poll(trusted, triager, fresh_store).triaged == 2
    trusted.close()
    untrusted = ImapSource(
        mailbox.settings(name="untrusted", security=security, port=port, host="localhost"), checkpoints
    )
    with pytest.raises(SourceError, match="certificate not trusted") as refused:
        list(untrusted.fetch_messages())
    assert not isinstance(refused.value, TransientSourceError)  # a configuration problem: no retries


def test_a_dead_connection_is_a_transient_error_and_the_next_poll_reconnects(
    mailbox, triager, fresh_store, checkpoints
):
    mailbox.append(sample_messages(2, "drop"))
    source = ImapSource(mailbox.settings(), checkpoints)
    poll(source, triager, fresh_store)
    source._client.socket().shutdown(socket.SHUT_RDWR)  # the network drops under an open session
    mailbox.append(sample_messages(1, "after-drop"))
    assert poll(source, triager, fresh_store).triaged == 1
    source.close()


def test_server_stopped_and_restarted_mid_poll_loses_and_doubles_nothing(
    triager, fresh_store, imap_password, caplog
):
    require_service(dovecot_available(), "Dovecot (dovecot-imapd, run as root)")
    server = Dovecot()  # its own, since this test stops it
    server.start()
    try:
        box = Mailbox(server, server.new_user())
        box.append(
            sample_messages(1000, "restart")
        )  # commits come every second: the poll must outlast the first one and the stop
        settings = Settings(sources=[box.settings(fetch_chunk=50, timeout_seconds=3)])
        service = Service(settings, store=fresh_store, triager=triager, backoff=FAST)
        worker = threading.Thread(target=lambda: outcome.append(service.poll(service.sources[0])))
        outcome: list = []
        worker.start()
        _wait_for(lambda: fresh_store.count() >= 100)
        server.stop()
        stopped_at = fresh_store.count()
        server.start()
        worker.join(60)
        service.close()
    finally:
        server.destroy()
    assert stopped_at < 1000, "the poll finished before the server stopped: nothing was tested"
    assert outcome[0].error is None and "retrying in" in caplog.text  # it reconnected with backoff
    assert fresh_store.count() == 1000 and set(attempts(fresh_store).values()) == {1}


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_watch_wakes_on_new_mail_through_idle(mailbox, triager, fresh_store):
    mailbox.append(sample_messages(1, "before-idle"))
    settings = Settings(sources=[mailbox.settings(watch=True)], schedule={"poll_every": "1h"})
    service = Service(settings, store=fresh_store, triager=triager, backoff=FAST)
    worker = threading.Thread(target=service.watch, args=[service.sources[0], timedelta(hours=1)])
    worker.start()
    try:
        _wait_for(lambda: fresh_store.count() == 1, 10)
        time.sleep(0.5)  # let it enter IDLE
        started = time.monotonic()
        mailbox.append(sample_messages(2, "during-idle"))
        _wait_for(lambda: fresh_store.count() == 3, 10)
        woke_after = time.monotonic() - started
    finally:
        service.stop.set()
        worker.join(10)
        service.close()
    assert not worker.is_alive() and woke_after < 5


def test_without_idle_the_source_says_so_and_the_service_polls(mailbox, checkpoints):
    source = ImapSource(mailbox.settings(host=LEGACY_HOST, watch=True), checkpoints)
    list(source.fetch_messages())
    assert source.wait_for_mail(5) is False
    source.close()


def test_a_watching_service_without_idle_falls_back_to_polling(mailbox, triager, fresh_store, caplog):
    caplog.set_level(logging.INFO, logger="complaint_triage")
    settings = Settings(
        sources=[mailbox.settings(host=LEGACY_HOST, watch=True)], schedule={"poll_every": "1h"}
    )
    service = Service(settings, store=fresh_store, triager=triager, backoff=FAST)
    worker = threading.Thread(target=service.watch, args=[service.sources[0], timedelta(seconds=1)])
    worker.start()
    try:
        _wait_for(lambda: "has no IDLE" in caplog.text, 10)
        mailbox.append(sample_messages(2, "no-idle"))
        _wait_for(lambda: fresh_store.count() == 2, 10)  # found by the next timed poll
    finally:
        service.stop.set()
        worker.join(10)
        service.close()
    assert not worker.is_alive()


def test_settling_between_fetches_leaves_the_next_batch_intact(mailbox, triager, fresh_store, checkpoints):
    mailbox.append(sample_messages(23, "chunks"))
    source = ImapSource(mailbox.settings(after="move", move_to="Done", fetch_chunk=7), checkpoints)
    summary = poll(source, triager, fresh_store, batch_size=5)  # commits and moves fall inside fetched chunks
    source.close()
    assert summary.triaged + summary.failed == 23 and fresh_store.count() == 23
    assert mailbox.server.uids(mailbox.user) == [] and len(mailbox.server.uids(mailbox.user, "Done")) == 23
    assert set(attempts(fresh_store).values()) == {1}


def test_security_none_is_refused_for_a_remote_host():
    with pytest.raises(ValueError, match="loopback"):
        SourceSettings(
            name="x", type="imap", host="imap.example.com", security="none", username="u", password_env="P"
        )


def test_a_poll_ended_while_the_next_batch_is_fetched_ahead_leaves_the_connection_clean(
    mailbox, triager, fresh_store, checkpoints
):
    """The next batch's FETCH is sent before the current one is handed on; a poll stopped then reads it off the connection."""
    mailbox.append(sample_messages(45, "ahead"))
    source = ImapSource(mailbox.settings(fetch_chunk=10), checkpoints)
    stream = source.fetch_messages()
    taken = [next(stream) for _ in range(12)]  # into the second batch: the third is on its way
    stream.close()  # what a stop or a lost lease does to the generator
    client = source._client
    assert (
        client is not None and client.noop()[1] == []
    )  # no FETCH response is left to read before the NOOP's own answer
    ingest(taken, triager, fresh_store, on_commit=source.record_progress)
    rest = poll(source, triager, fresh_store)
    assert source._client is client  # not reconnected: nothing was left unread on the session
    assert rest.triaged + rest.failed == 33 and fresh_store.count() == 45
    assert set(attempts(fresh_store).values()) == {1}
    assert sorted(attempts(fresh_store)) == sorted(f"<ahead-{n}@test.example>" for n in range(45))
    source.close()
