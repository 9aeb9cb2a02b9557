"""The service: `run --once`, `run` stopped by SIGTERM mid-poll, `status`, the schedule and the daily summary.

The command-line tests start `complaint-triage` as a real process against the test Dovecot, so the
signal path, logging and exit codes are the ones a systemd unit sees.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import date

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from complaint_triage.cli import cli
from complaint_triage.service import Service
from complaint_triage.settings import Settings
from complaint_triage.store import Store
from complaint_triage.store.checkpoints import Checkpoints
from complaint_triage.store.leases import FileLeases
from complaint_triage.testing.dovecot import PASSWORD
from complaint_triage.testing.mail import sample_messages
from tests.conftest import CLI, cli_env, fixture_files, sql_statements, write_config


def test_run_once_polls_every_source_logs_json_and_status_shows_it(mailbox, tmp_path):
    mailbox.append(sample_messages(20, "once"))
    config = write_config(tmp_path / "config.toml", mailbox)
    done = subprocess.run(
        [*CLI, "--log-format", "json", "run", "--once", "--config", str(config)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every stderr line is a JSON log entry
    assert any(entry["message"].startswith("inbox: 20 triaged, 0 failed; ok") for entry in lines)
    assert PASSWORD not in done.stderr
    status = subprocess.run(
        [*CLI, "status", "--format", "json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout
    document = json.loads(status.stdout)  # one JSON document: the verdict and every source
    assert (document["ok"], document["failing"], len(document["sources"])) == (True, [], 1)
    entry = document["sources"][0]
    assert (entry["state"], entry["auth"]) == ("ok", "ok")
    assert (entry["source_name"], entry["messages_triaged"], entry["backlog"], entry["last_error"]) == (
        "inbox",
        20,
        0,
        None,
    )
    assert entry["last_success_at"] and entry["last_poll_at"]


def test_sigterm_during_a_poll_commits_what_is_in_hand_and_loses_nothing(mailbox, tmp_path):
    mailbox.append(sample_messages(400, "term"))
    config = write_config(tmp_path / "config.toml", mailbox, fetch_chunk=50)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    service = subprocess.Popen(
        [*CLI, "run", "--config", str(config)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: store.count() > 0 or service.poll() is not None, 90)
        service.send_signal(signal.SIGTERM)
        stderr = service.communicate(timeout=30)[1]
    finally:
        service.kill() if service.poll() is None else None
    assert service.returncode == 0, stderr
    stored = store.count()
    assert 0 < stored < 400, "SIGTERM did not land mid-poll"
    assert (
        Checkpoints(store.engine).folder("inbox", "INBOX").last_uid == stored
    )  # the checkpoint is exactly what was committed
    assert Checkpoints(store.engine).statuses()["inbox"].backlog == 400 - stored
    assert "stopping" in stderr
    rest = subprocess.run(
        [*CLI, "run", "--once", "--config", str(config)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rest.returncode == 0, rest.stderr
    assert store.count() == 400 and {row["attempts"] for row in store.rows()} == {1}
    assert len(mailbox.server.uids(mailbox.user)) == 400  # after = "keep": nothing moved or deleted
    store.close()


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_run_once_exits_1_when_a_source_fails(mailbox, tmp_path):
    config = write_config(tmp_path / "config.toml", mailbox, password_env="NO_SUCH_PASSWORD_VARIABLE")
    done = subprocess.run(
        [*CLI, "run", "--once", "--config", str(config)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "NO_SUCH_PASSWORD_VARIABLE is not set" in done.stderr and "Traceback" not in done.stderr


def test_run_once_says_a_source_was_skipped_while_another_worker_holds_its_lease(mailbox, tmp_path):
    mailbox.append(sample_messages(3, "leased"))
    config = write_config(tmp_path / "config.toml", mailbox)
    with FileLeases(str(tmp_path / "store.db")).hold("inbox") as lease:
        assert lease is not None
        done = subprocess.run(
            [*CLI, "run", "--once", "--config", str(config)],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert "inbox: 0 triaged, 0 failed; skipped: another worker holds its lease" in done.stderr
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert store.count() == 0
    store.close()


def test_status_lists_a_source_never_polled(mailbox, tmp_path):
    config = write_config(tmp_path / "config.toml", mailbox)
    result = CliRunner().invoke(cli, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "inbox" in result.output and "never" in result.output


def test_scheduler_has_one_job_per_source_and_the_daily_summary(mailbox, triager, fresh_store):
    settings = Settings(
        sources=[mailbox.settings(name="a"), mailbox.settings(name="b", watch=True)],
        schedule={"poll_every": "5m", "daily_report_at": "07:30", "timezone": "Europe/Berlin"},
    )
    service = Service(settings, store=fresh_store, triager=triager)
    scheduler = service.scheduler()
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {"poll:a", "watch:b", "daily-report"}
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    assert jobs["poll:a"].trigger.interval.total_seconds() == 300
    daily = jobs["daily-report"].next_run_time
    assert (daily.hour, daily.minute, str(daily.tzinfo)) == (7, 30, "Europe/Berlin")


def test_daily_report_is_written_in_every_format_and_a_missing_renderer_is_skipped(
    triager, fresh_store, tmp_path, monkeypatch, caplog
):
    files = fixture_files()[:3]
    settings = Settings(
        sources=[{"name": "saved", "type": "directory", "path": str(files[0].parent)}],
        reports={"dir": str(tmp_path / "reports"), "formats": ["html", "markdown", "json"]},
    )
    service = Service(settings, store=fresh_store, triager=triager)
    monkeypatch.setitem(
        sys.modules, "complaint_triage.report.html", None
    )  # as in a build without the HTML renderer
    written = service.write_daily_reports(date(2026, 3, 3))
    assert [path.name for path in written] == ["summary-2026-03-03.md", "summary-2026-03-03.json"]
    assert json.loads(written[1].read_text())["day"] == "2026-03-03"
    assert "no html renderer" in caplog.text


def test_saved_mail_sources_are_polled_and_not_triaged_again(triager, fresh_store, tmp_path):
    files = fixture_files()[:3]
    for path in files:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    service = Service(
        Settings(sources=[{"name": "saved", "type": "directory", "path": str(tmp_path)}]),
        store=fresh_store,
        triager=triager,
    )
    first, second = service.poll_all(), service.poll_all()
    assert (first[0].summary.triaged + first[0].summary.failed, second[0].summary.triaged) == (3, 0)
    assert {row["attempts"] for row in fresh_store.rows()} == {1}


@pytest.mark.parametrize(("commit_seconds", "commits"), [(60.0, 1), (1e-6, 3)])
def test_the_store_commit_interval_sets_how_often_a_poll_commits(
    commit_seconds, commits, triager, fresh_store, tmp_path
):
    for path in fixture_files()[:3]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    sent = sql_statements(fresh_store)
    settings = Settings(
        sources=[{"name": "saved", "type": "directory", "path": str(tmp_path)}],
        store={"url": fresh_store.url, "commit_seconds": commit_seconds},
    )
    Service(settings, store=fresh_store, triager=triager).poll_all()
    assert sum(statement.startswith("INSERT INTO messages") for statement in sent) == commits


def test_a_commit_interval_of_zero_is_refused():
    with pytest.raises(ValidationError):
        Settings(store={"commit_seconds": 0})


def test_a_missing_saved_mail_path_is_an_error_of_that_source_only(triager, fresh_store, tmp_path):
    settings = Settings(sources=[{"name": "gone", "type": "directory", "path": str(tmp_path / "nope")}])
    service = Service(settings, store=fresh_store, triager=triager)
    outcome = service.poll_all()[0]
    assert "no such file or directory" in outcome.error
