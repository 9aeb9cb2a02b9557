"""Configuration that cannot silently do nothing: unknown keys, relative paths, secrets, tables, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from complaint_triage.errors import ConfigError, ModelError
from complaint_triage.pipeline.domain import load_domain
from complaint_triage.pipeline.nlp.build import build_pipeline
from complaint_triage.resources import config_dir
from complaint_triage.settings import load_settings
from complaint_triage.testing.mail import NOTICE, build_message

CLI = [sys.executable, "-m", "complaint_triage.cli"]


def run_cli(*args, cwd=None, env=None):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("COMPLAINT_TRIAGE")}
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, **(env or {})},
        timeout=120,
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "named", "suggested"),
    [
        ('[[source]]\nname = "x"\ntype = "directory"\npath = "m"\n', "'source'", "'sources'"),
        ('[store]\nulr = "sqlite:///x.db"\n', "'ulr'", "'url'"),
        ('[schedule]\npol_every = "5m"\n', "'pol_every'", "'poll_every'"),
        (
            '[[sources]]\nname = "x"\ntype = "directory"\npath = "m"\nafterr = "seen"\n',
            "sources[0].afterr",
            "'after'",
        ),
    ],
)
def test_unknown_key_is_refused_with_the_closest_valid_one(tmp_path, text, named, suggested):
    config = _write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert named in str(caught.value) and f"did you mean {suggested}" in str(caught.value)
    result = run_cli("run", "--once", "--config", str(config))
    assert (
        result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and suggested in result.stderr
    )


def test_unknown_environment_override_names_the_variable(tmp_path):
    config = _write(tmp_path / "c.toml", f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    with pytest.raises(
        ConfigError,
        match=r"COMPLAINT_TRIAGE__STORE__ULR \(sets store.ulr\): unknown key 'ulr'; did you mean 'url'",
    ):
        load_settings(config, environ={"COMPLAINT_TRIAGE__STORE__ULR": "sqlite:///elsewhere.db"})


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path):
    home = tmp_path / "etc"
    home.mkdir()
    config = _write(
        home / "c.toml",
        '[store]\nurl = "sqlite:///var/s.db"\n[[sources]]\nname = "m"\ntype = "directory"\npath = "mail"\n'
        '[reports]\ndir = "out"\n[pipeline]\ntables_dir = "tables"\n',
    )
    settings = load_settings(config, environ={})
    assert settings.store.url == f"sqlite:///{home / 'var' / 's.db'}"
    assert settings.sources[0].path == str(home / "mail")
    assert settings.reports.dir == str(home / "out") and settings.pipeline.tables_dir == str(home / "tables")
    shutil.copytree(config_dir(), home / "tables")
    (home / "mail").mkdir()
    (home / "mail" / "n.eml").write_bytes(build_message(NOTICE))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("run", "--once", "--config", str(config), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (home / "var" / "s.db").is_file() and not (elsewhere / "var").exists()


def test_every_store_command_says_which_store_it_opened(tmp_path):
    config = _write(tmp_path / "c.toml", f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    for command in (["export"], ["cases"], ["report", "--date", "today"], ["status"]):
        result = run_cli(*command, "--config", str(config))
        assert result.returncode in (0, 1), (command, result.stderr)
        assert f"store: sqlite:///{tmp_path / 's.db'}" in result.stderr, command


def test_database_password_comes_from_the_environment_or_a_file(tmp_path):
    inline = _write(
        tmp_path / "inline.toml", '[store]\nurl = "postgresql+psycopg://ops:s3cret-pass@db.example/triage"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(inline, environ={})
    assert "password" in str(caught.value) and "s3cret-pass" not in str(caught.value)
    by_env = _write(
        tmp_path / "env.toml",
        '[store]\nurl = "postgresql+psycopg://ops@db.example/triage"\npassword_env = "CT_TEST_DB_PASSWORD"\n',
    )
    os.environ["CT_TEST_DB_PASSWORD"] = "p@ss/word"
    try:
        assert (
            load_settings(by_env, environ={}).store.url
            == "postgresql+psycopg://ops:p%40ss%2Fword@db.example/triage"
        )
    finally:
        del os.environ["CT_TEST_DB_PASSWORD"]
    with pytest.raises(ConfigError, match="CT_TEST_DB_PASSWORD is not set"):
        load_settings(by_env, environ={})
    secret = _write(tmp_path / "db-password", "from-a-file\n")
    by_file = _write(
        tmp_path / "file.toml",
        '[store]\nurl = "postgresql+psycopg://ops@db.example/triage"\npassword_file = "db-password"\n',
    )
    assert (
        load_settings(by_file, environ={}).store.url
        == "postgresql+psycopg://ops:from-a-file@db.example/triage"
    )
    assert secret.is_file()


def test_missing_postgres_driver_names_the_extra(tmp_path):
    from complaint_triage.errors import StoreError
    from complaint_triage.store import Store

    with pytest.raises(StoreError, match=r"complaint-triage\[postgres\]"):
        Store("postgresql+pg8000://ops@127.0.0.1:1/none")


def _copy_tables(tmp_path: Path) -> Path:
    tables = tmp_path / "tables"
    shutil.copytree(config_dir(), tables)
    return tables


def test_a_rubric_rule_moved_to_another_level_is_a_config_error_at_start(tmp_path):
    tables = _copy_tables(tmp_path)
    urgency = tables / "urgency.toml"
    text = urgency.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("stated_deadline"))
    urgency.write_text(text.replace(line + "\n", "").replace("[low]\n", f"[low]\n{line}\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'stated_deadline' belongs under \[high\], not \[low\]"):
        load_domain(str(tables))
    config = _write(
        tmp_path / "c.toml",
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[pipeline]\ntables_dir = "tables"\n',
    )
    (tmp_path / "n.eml").write_bytes(build_message(NOTICE))
    result = run_cli("process", str(tmp_path / "n.eml"), "--config", str(config))
    assert result.returncode == 2 and "stated_deadline" in result.stderr and result.stdout == ""


def test_a_kind_without_a_playbook_is_a_config_error(tmp_path):
    tables = _copy_tables(tmp_path)
    playbooks = tables / "playbooks.toml"
    playbooks.write_text(
        playbooks.read_text(encoding="utf-8").replace("[kinds.buyer_message]", "[kinds.buyer_mesage]"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="buyer_mesage"):
        load_domain(str(tables))


def test_linking_and_value_shapes_are_validated(tmp_path):
    tables = _copy_tables(tmp_path)
    values = tables / "patterns" / "values.jsonl"
    values.write_text(
        values.read_text(encoding="utf-8") + '{"label": "VAL_BROKEN", "regex": "(unclosed"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ModelError, match="does not compile"):
        build_pipeline(tables / "patterns")
    values.write_text(
        values.read_text(encoding="utf-8").replace(
            '{"label": "VAL_BROKEN", "regex": "(unclosed"}\n', '{"label": "VAL_NEW", "regex": "x"}\n'
        ),
        encoding="utf-8",
    )
    with pytest.raises(ModelError, match=r"VAL_NEW has no \[values.VAL_NEW\]"):
        build_pipeline(tables / "patterns")
    linking = tables / "patterns" / "linking.toml"
    linking.write_text(
        linking.read_text(encoding="utf-8").replace("window_tokens = 12", "window_tokenz = 12"),
        encoding="utf-8",
    )
    with pytest.raises(ModelError, match="window_tokenz"):
        build_pipeline(tables / "patterns")


def test_own_tables_and_pipeline_from_the_config(tmp_path):
    tables = _copy_tables(tmp_path)
    playbooks = tables / "playbooks.toml"
    playbooks.write_text(
        playbooks.read_text(encoding="utf-8").replace(
            "[kinds.ip_complaint]\n", "[kinds.ip_complaint]\n# own copy\n"
        ),
        encoding="utf-8",
    )
    config = _write(
        tmp_path / "c.toml",
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[pipeline]\ntables_dir = "tables"\nmodel_dir = "built"\n',
    )
    built = run_cli("build-model", "--config", str(config))
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "built" / "complaint_triage_ner" / "config.cfg").is_file()
    (tmp_path / "n.eml").write_bytes(build_message(NOTICE))
    result = run_cli("process", str(tmp_path / "n.eml"), "--config", str(config), "--no-store")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "ip_complaint"


def test_build_model_into_a_new_directory(tmp_path):
    result = run_cli("build-model", "--output", str(tmp_path / "new" / "deeper"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "deeper" / "complaint_triage_ner" / "meta.json").is_file()


def test_without_a_config_file_the_built_in_defaults_poll_nothing(tmp_path):
    settings = load_settings(None, environ={}) if not Path("config/complaint-triage.toml").is_file() else None
    if settings is None:  # run from a checkout: ask from a directory without config/
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from complaint_triage.settings import load_settings; s = load_settings(environ={}); print(len(s.sources), s.config_path)",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("COMPLAINT_TRIAGE")},
            check=True,
        )
        assert result.stdout.split() == ["0", "None"]
    else:
        assert settings.sources == [] and settings.config_path is None


def test_init_writes_a_commented_config_that_works(tmp_path):
    result = run_cli("init", str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    written = tmp_path / "site" / "complaint-triage.toml"
    assert written.read_text(encoding="utf-8").startswith("# complaint-triage configuration")
    settings = load_settings(written, environ={})
    assert (
        settings.store.url == f"sqlite:///{tmp_path / 'site' / 'var' / 'complaint-triage.db'}"
        and settings.sources == []
    )
    again = run_cli("init", str(tmp_path / "site"))
    assert again.returncode == 1 and "exists already" in again.stderr


def _stored_config(tmp_path: Path, database: Path) -> Path:
    return _write(tmp_path / "c.toml", f'[store]\nurl = "sqlite:///{database}"\n')


def test_runtime_failures_exit_1_with_one_line(tmp_path):
    (tmp_path / "n.eml").write_bytes(build_message(NOTICE))
    config = _stored_config(tmp_path, tmp_path / "s.db")
    assert run_cli("process", str(tmp_path / "n.eml"), "--config", str(config)).returncode == 0
    blocker = _write(tmp_path / "a-file", "not a directory")
    report = run_cli(
        "report", "--date", "today", "--output", str(blocker / "summary.md"), "--config", str(config)
    )
    assert (
        report.returncode == 1
        and len(report.stderr.strip().splitlines()) <= 2
        and "cannot write the summary" in report.stderr
    )
    assert "Traceback" not in report.stderr
    unwritable = _stored_config(tmp_path, blocker / "sub" / "s.db")
    opened = run_cli("export", "--config", str(unwritable))
    assert (
        opened.returncode == 1 and "Traceback" not in opened.stderr and "cannot open store" in opened.stderr
    )


def test_read_only_store_exits_1(tmp_path):
    database = tmp_path / "s.db"
    (tmp_path / "n.eml").write_bytes(build_message(NOTICE))
    assert (
        run_cli(
            "process", str(tmp_path / "n.eml"), "--config", str(_stored_config(tmp_path, database))
        ).returncode
        == 0
    )
    read_only = _write(tmp_path / "ro.toml", f'[store]\nurl = "sqlite:///file:{database}?mode=ro&uri=true"\n')
    (tmp_path / "m.eml").write_bytes(build_message(NOTICE, message_id="<other@x>"))
    result = run_cli("process", str(tmp_path / "m.eml"), "--config", str(read_only))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "complaint-triage: error" in result.stderr
