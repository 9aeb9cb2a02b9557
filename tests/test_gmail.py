"""The Gmail API source against a local HTTPS server implementing the documented subset (tests/gmail_server.py).

A service account's signed JWT and an installed app's refresh token (rotated, revoked), the
first listing then the history, raw messages, labels after the commit, throttling, server
errors, an expired token, a history ID too old, and SIGKILL during a 1,000-message sync.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine

from complaint_triage import health
from complaint_triage.service import Backoff, Service, source_statuses
from complaint_triage.settings import Settings
from complaint_triage.store import Store
from complaint_triage.store.checkpoints import Checkpoints
from complaint_triage.testing.dovecot import make_certificates
from complaint_triage.testing.mail import sample_messages
from tests.conftest import count_records, require_service
from tests.gmail_server import REFRESH_TOKEN, USER, GmailServer
from tests.graph_server import Fault

FAST = Backoff(attempts=3, first_wait=0.1, max_wait=0.5)
CLI = [sys.executable, "-m", "complaint_triage.cli"]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    require_service(shutil.which("openssl") is not None, "openssl")
    directory = tmp_path_factory.mktemp("gmail-certs")
    make_certificates(directory)
    return directory


@pytest.fixture
def gmail(certificates, tmp_path):
    with GmailServer(certificates, tmp_path) as server:
        yield server


def _service(gmail, store, triager, **source) -> Service:
    if "token_file" not in source:
        source.setdefault("credentials_file", str(gmail.service_account_file()))
    settings = Settings(sources=[gmail.source(**source)])
    return Service(settings, store=store, triager=triager, backoff=FAST)


def _attempts(store: Store) -> dict[str, int]:
    return {row["message_id"]: row["attempts"] for row in store.rows()}


def _cursor(store: Store) -> dict:
    return json.loads(Checkpoints(store.engine).cursor("gmail", "in:inbox | INBOX"))


def test_a_service_account_lists_the_inbox_once_then_reads_only_the_history(gmail, triager, fresh_store):
    gmail.state.deliver(sample_messages(120, "listed"))
    service = _service(gmail, fresh_store, triager)
    first = service.poll_all()[0]
    assert first.error is None and first.summary.triaged == 120
    assert _cursor(fresh_store) == {"phase": "history", "start": "1120", "page": None}
    gmail.state.deliver(sample_messages(4, "added"))
    assert service.poll_all()[0].summary.triaged == 4
    assert service.poll_all()[0].summary.triaged == 0
    assert len(_attempts(fresh_store)) == 124 and set(_attempts(fresh_store).values()) == {1}
    assert all("UNREAD" in m.labels for m in gmail.state.messages.values())  # after = "keep" changes no label
    assert next(iter(fresh_store.records())).source.startswith(f"gmail://{USER}/")
    assert gmail.state.tokens_issued == 1  # one token, reused
    service.close()


def test_seen_and_move_change_labels_after_the_commit(gmail, triager, fresh_store, tmp_path):
    gmail.state.deliver(sample_messages(6, "labels"))
    seen = _service(gmail, fresh_store, triager, after="seen")
    assert seen.poll_all()[0].summary.triaged == 6
    assert all("UNREAD" not in m.labels for m in gmail.state.messages.values())
    seen.close()
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    moved = _service(gmail, other, triager, after="move", move_to="Triaged")
    assert moved.poll_all()[0].summary.triaged == 6
    label = gmail.state.labels["Triaged"]
    assert all(label in m.labels and "INBOX" not in m.labels for m in gmail.state.messages.values())
    moved.close()


def test_an_installed_app_token_is_refreshed_and_a_rotated_refresh_token_saved_atomically_0600(
    gmail, triager, fresh_store, caplog
):
    token_file = gmail.token_file()
    gmail.state.rotate_refresh_token = True
    gmail.state.deliver(sample_messages(3, "installed"))
    service = _service(gmail, fresh_store, triager, token_file=str(token_file))
    assert service.poll_all()[0].summary.triaged == 3
    saved = json.loads(token_file.read_text())
    assert saved["refresh_token"] in gmail.state.refresh_tokens and saved["refresh_token"] != REFRESH_TOKEN
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and "token" not in saved
    assert [
        path.name for path in token_file.parent.iterdir() if path.name.startswith(".gmail-token")
    ] == []  # no temporary left
    status = source_statuses(service.settings, fresh_store)[0]
    assert status.token_expires_at is not None and health.assess(status, service.settings).auth == "ok"
    assert saved["refresh_token"] not in caplog.text
    service.close()


def test_a_revoked_refresh_token_is_an_auth_failure_that_says_what_to_do(gmail, triager, fresh_store):
    token_file = gmail.token_file()
    gmail.state.refresh_tokens = set()  # the user revoked the app's access
    service = _service(gmail, fresh_store, triager, token_file=str(token_file))
    outcome = service.poll_all()[0]
    assert "the token endpoint refused: invalid_grant: Token has been expired or revoked." in outcome.error
    assert REFRESH_TOKEN not in outcome.error
    judged = health.assess(source_statuses(service.settings, fresh_store)[0], service.settings)
    assert (judged.state, judged.auth) == ("down", "failed")
    assert "run the consent flow again" in health.remedy(
        service.settings.sources[0], judged, service.settings
    )
    service.close()


def test_a_service_account_without_delegation_is_an_auth_failure(gmail, triager, fresh_store):
    service = _service(gmail, fresh_store, triager, user="someone-else@shop.example")
    outcome = service.poll_all()[0]
    assert "unauthorized_client" in outcome.error
    assert source_statuses(service.settings, fresh_store)[0].auth_failed
    service.close()


def test_throttling_server_errors_and_an_expired_token_are_retried(gmail, triager, fresh_store):
    gmail.state.deliver(sample_messages(10, "faults"))
    limited = {
        "error": {"code": 403, "message": "Rate Limit Exceeded", "errors": [{"reason": "rateLimitExceeded"}]}
    }
    gmail.state.faults += [
        Fault("GET", "/messages?", 500),
        Fault("GET", "format=raw", 429, {"Retry-After": "1"}),
        Fault("GET", "format=raw", 403, body=limited),
    ]
    service = _service(gmail, fresh_store, triager)
    started = time.monotonic()
    assert service.poll_all()[0].summary.triaged == 10
    assert time.monotonic() - started >= 1.0 and gmail.state.faults == []
    gmail.state.expire_tokens()
    gmail.state.deliver(sample_messages(2, "after-expiry"))
    outcome = service.poll_all()[0]
    assert outcome.error is None and outcome.summary.triaged == 2 and gmail.state.tokens_issued == 2
    service.close()


def test_a_history_id_too_old_starts_a_fresh_listing_without_duplicates(gmail, triager, fresh_store, caplog):
    gmail.state.deliver(sample_messages(8, "old"))
    service = _service(gmail, fresh_store, triager)
    assert service.poll_all()[0].summary.triaged == 8
    gmail.state.forget_history()
    gmail.state.deliver(sample_messages(3, "new"))
    outcome = service.poll_all()[0]
    assert outcome.error is None and outcome.summary.triaged == 3
    assert "is no longer available: listing the mailbox afresh" in caplog.text
    assert len(_attempts(fresh_store)) == 11 and set(_attempts(fresh_store).values()) == {1}
    service.close()


def test_sigkill_during_a_sync_of_1000_messages_loses_and_doubles_nothing(gmail, tmp_path):
    gmail.state.deliver(sample_messages(1000, "gcrash"))
    source = gmail.source(credentials_file=str(gmail.service_account_file()), fetch_chunk=40)
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in source.items())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\ncommit_seconds = 0.25\n\n[[sources]]\n{lines}\n'
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    kills = []
    for kill_at in (250, 600):
        process = subprocess.Popen(
            [*CLI, "run", "--once", "--config", str(config)],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 240
        while count_records(engine) < kill_at and process.poll() is None:
            assert time.monotonic() < deadline, "the sync did not get far enough"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        kills.append(count_records(engine))
    gmail.state.deliver(
        sample_messages(5, "gcrash-late")
    )  # mail that arrives between the crash and the restart
    done = subprocess.run(
        [*CLI, "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    attempts = _attempts(store)
    store.close()
    assert kills[0] < 1000 and kills[1] < 1000, kills
    expected = [f"<gcrash-{n}@test.example>" for n in range(1000)] + [
        f"<gcrash-late-{n}@test.example>" for n in range(5)
    ]
    assert sorted(attempts) == sorted(expected)  # 0 lost
    assert set(attempts.values()) == {1}  # 0 doubled
