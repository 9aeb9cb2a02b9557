"""The command line starts without the heavy libraries: only the commands that triage load spaCy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("spacy", "thinc", "sqlalchemy", "alembic", "pydantic", "rich", "complaint_triage.records")

_PROBE = """
import json, sys
from complaint_triage.cli import main
sys.argv = ["complaint-triage", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted({name for name in sys.modules if name.split(".")[0] in ("spacy", "thinc", "sqlalchemy", "alembic", "pydantic", "rich")}
                | ({"complaint_triage.records"} & set(sys.modules)))
sys.stderr.write("LOADED " + json.dumps({"code": code, "loaded": loaded}) + "\\n")
"""


def _loaded_by(*args: str) -> tuple[int, set[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED "))
    found = json.loads(line.removeprefix("LOADED "))
    return found["code"], set(found["loaded"]), done.stdout


def test_importing_the_command_line_loads_nothing_heavy():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    code = f"import sys, complaint_triage, complaint_triage.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["process", "--help"],
        ["report", "--help"],
        ["run", "--help"],
        ["cases", "--help"],
        ["case", "--help"],
    ],
)
def test_help_and_version_do_not_load_spacy_or_sqlalchemy(args):
    code, loaded, stdout = _loaded_by(*args)
    assert code == 0 and stdout
    assert not loaded & {"spacy", "thinc", "sqlalchemy", "alembic"}, loaded


def test_top_level_help_loads_no_pydantic_models_or_rich():
    code, loaded, stdout = _loaded_by("--help")
    assert code == 0 and "process" in stdout
    assert not loaded, loaded


def test_shell_completion_does_not_load_spacy(monkeypatch):
    monkeypatch.setenv("_COMPLAINT_TRIAGE_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "complaint-triage pro")
    monkeypatch.setenv("COMP_CWORD", "1")
    _code, loaded, stdout = _loaded_by()
    assert "process" in stdout
    assert not loaded & {"spacy", "thinc", "sqlalchemy"}, loaded


def test_case_status_choices_still_come_from_the_case_rules():
    from complaint_triage.cases import CASE_STATUSES
    from complaint_triage.cli.cases import case, cases

    status = next(p for p in case.params if p.name == "status")
    wanted = next(p for p in cases.params if p.name == "wanted")
    assert tuple(status.type.choices) == CASE_STATUSES
    assert tuple(wanted.type.choices) == ("open", "all", *CASE_STATUSES)
    assert status.type.convert("resolved", status, None) == "resolved"


def test_process_still_triages_one_message(tmp_path):
    fixture = next(iter(sorted((ROOT / "fixtures").glob("*.eml"))))
    code, loaded, stdout = _loaded_by("process", "--no-store", str(fixture))
    assert code == 0 and "spacy" in loaded
    assert json.loads(stdout.splitlines()[0])["source"].endswith(fixture.name)
