"""The command line as users and scripts call it: real subprocesses, real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import jsonschema
import pytest

from complaint_triage.cli import cli
from complaint_triage.records import record_schema, shipped_schema
from complaint_triage.testing.mail import NOTICE, build_message
from tests.conftest import run_cli

REQUIRED = set(record_schema()["required"])


@pytest.fixture
def mail_dir(tmp_path):
    folder = tmp_path / "mail" / "nested"
    folder.mkdir(parents=True)
    (folder / "a.eml").write_bytes(build_message(NOTICE, message_id="<a@x>"))
    (folder / "b.eml").write_bytes(
        build_message(
            "Hello, when will my order ship?",
            subject="Shipping",
            sender="x@marketplace.amazon.com",
            message_id="<b@x>",
        )
    )
    return tmp_path / "mail"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "ct.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "db" / "ct.db"}"\n[schedule]\ntimezone = "UTC"\n',
        encoding="utf-8",
    )
    return path


def test_every_command_has_help_text():
    missing = [name for name, command in cli.commands.items() if not (command.help or "").strip()]
    assert missing == []
    for name, command in cli.commands.items():
        params = [
            p.name
            for p in command.params
            if isinstance(p, click.Option) and not (p.help or "").strip() and p.name != "help"
        ]
        assert params == [], f"{name} has options without help: {params}"


def test_process_jsonl_is_one_valid_record_per_message_and_nothing_else(mail_dir, config_file):
    result = run_cli(
        "process", str(mail_dir), "--format", "jsonl", "--no-store", "--config", str(config_file)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        record = json.loads(line)
        assert REQUIRED <= set(record)
        jsonschema.validate(record, shipped_schema())
    assert [json.loads(line)["message_id"] for line in lines] == ["<a@x>", "<b@x>"]


def test_missing_path_is_exit_2_with_one_line(config_file, tmp_path):
    result = run_cli("process", str(tmp_path / "nope"), "--config", str(config_file))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_bad_config_is_exit_2_with_one_line(tmp_path, mail_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedule]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    result = run_cli("process", str(mail_dir), "--config", str(bad))
    assert (
        result.returncode == 2
        and len(result.stderr.strip().splitlines()) == 1
        and "timezone" in result.stderr
    )


def test_garbage_files_get_error_records_and_exit_1(mail_dir, config_file):
    (mail_dir / "garbage.eml").write_bytes(os.urandom(2000).replace(b":", b";"))
    (mail_dir / "empty.eml").write_bytes(b"")
    (mail_dir / "latin1.eml").write_bytes(b"From: a@b.example\nSubject: Pr\xfcfung\n\nText \xe4\n")
    result = run_cli("process", str(mail_dir), "--format", "jsonl", "--config", str(config_file))
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 5
    errors = {Path(r["source"]).name: r["error"] for r in records}
    assert errors["a.eml"] is None and errors["latin1.eml"] is None
    assert errors["garbage.eml"] and errors["empty.eml"] == "empty message"
    stored = run_cli("export", "--config", str(config_file))
    assert len(stored.stdout.splitlines()) == 5


def test_mbox_and_maildir_sources(tmp_path, config_file):
    import mailbox

    box = mailbox.mbox(tmp_path / "saved.mbox")
    box.add(build_message(NOTICE, message_id="<m1@x>"))
    box.add(build_message(NOTICE, message_id="<m2@x>"))
    box.flush()
    maildir = mailbox.Maildir(tmp_path / "md")
    maildir.add(build_message(NOTICE, message_id="<m3@x>"))
    result = run_cli(
        "process",
        str(tmp_path / "saved.mbox"),
        str(tmp_path / "md"),
        "--no-store",
        "--config",
        str(config_file),
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["message_id"] for line in result.stdout.splitlines()] == [
        "<m1@x>",
        "<m2@x>",
        "<m3@x>",
    ]
    assert json.loads(result.stdout.splitlines()[0])["source"].endswith("saved.mbox#1")


def test_store_report_and_reprocess(mail_dir, config_file, tmp_path):
    assert run_cli("process", str(mail_dir), "--config", str(config_file)).returncode == 0
    assert run_cli("process", str(mail_dir), "--config", str(config_file)).returncode == 0
    assert len(run_cli("export", "--config", str(config_file)).stdout.splitlines()) == 2
    markdown = run_cli("report", "--date", "2026-03-03", "--format", "markdown", "--config", str(config_file))
    assert (
        markdown.returncode == 0
        and "Triage summary for 2026-03-03" in markdown.stdout
        and "B0ABCDE123" in markdown.stdout
    )
    summary = json.loads(
        run_cli("report", "--date", "2026-03-03", "--format", "json", "--config", str(config_file)).stdout
    )
    assert summary["messages"] == 2 and summary["by_urgency"]["high"] == 1
    again = run_cli("reprocess", "--config", str(config_file))
    assert again.returncode == 0 and "2 triaged" in again.stderr


def test_table_and_markdown_formats(mail_dir, config_file):
    table = run_cli("process", str(mail_dir), "--format", "table", "--no-store", "--config", str(config_file))
    assert table.returncode == 0 and "ip_complaint" in table.stdout
    markdown = run_cli(
        "process", str(mail_dir), "--format", "markdown", "--no-store", "--config", str(config_file)
    )
    assert markdown.stdout.count("\n| ") >= 2


def test_shipped_schema_matches_the_model():
    assert shipped_schema() == record_schema(), (
        "record.schema.json is stale: python -c 'from complaint_triage.records import write_schema; write_schema()'"
    )


def test_process_says_what_it_skipped_and_keeps_stderr_lines_whole(tmp_path, config_file):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "notice").write_bytes(build_message(NOTICE, message_id="<no-suffix@x>"))
    (folder / "expected.json").write_text("{}")
    (folder / ("z" * 120 + ".eml")).write_bytes(b"")  # its failure line is longer than 80 columns
    result = run_cli("process", str(folder), "--no-store", "--config", str(config_file))
    assert "skipped 1 file: 1 not *.eml and without mail headers" in result.stderr
    assert json.loads(result.stdout.splitlines()[0])["source"].endswith("notice")
    failure = next(line for line in result.stderr.splitlines() if "failed: " in line)
    assert failure.endswith("z" * 120 + ".eml: empty message")
