"""A wheel built from the repo works from another directory: config and pipeline travel inside it."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from complaint_triage.testing.mail import NOTICE, build_message
from tests.conftest import ROOT


def test_wheel_runs_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    wheel = next(dist.glob("complaint_triage-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # The dependencies come from the test environment; the package itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "n.eml").write_bytes(build_message(NOTICE))
    result = subprocess.run(
        [str(env_dir / "bin" / "complaint-triage"), "process", "n.eml", "--no-store"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["kind"] == "ip_complaint" and record["asins"] == ["B0ABCDE123"]
    located = subprocess.check_output(
        [
            str(python),
            "-c",
            "from complaint_triage.resources import model_dir, config_dir; print(model_dir()); print(config_dir())",
        ],
        cwd=elsewhere,
        text=True,
    )
    assert all(str(env_dir) in line and "_data" in line for line in located.splitlines())
    script = str(env_dir / "bin" / "complaint-triage")
    rebuilt = subprocess.run(
        [script, "build-model"], cwd=elsewhere, capture_output=True, text=True, timeout=120
    )
    assert (
        rebuilt.returncode == 2 and "never rebuilt in place" in rebuilt.stderr
    )  # the installed pipeline is left alone
    started = subprocess.run(
        [script, "init", "site"], cwd=elsewhere, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0 and (elsewhere / "site" / "complaint-triage.toml").is_file()
    polled = subprocess.run(
        [script, "run", "--once", "--config", "site/complaint-triage.toml"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert polled.returncode == 0, (
        polled.stderr
    )  # the starting config polls nothing, and says so without failing
    assert (elsewhere / "site" / "var" / "complaint-triage.db").is_file()
