"""`complaint-triage auth SOURCE`: Google's installed-app consent flow with a local redirect, and a token check for app credentials.

The test plays the browser: it reads the address the command prints, opens it at the fake
consent page of tests/gmail_server.py, and follows the redirect back to the command's loopback
server; the command then saves the refresh token. Nothing secret may appear in its output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import time

import httpx
import pytest

from complaint_triage.testing.dovecot import make_certificates
from tests.conftest import require_service
from tests.gmail_server import CLIENT_SECRET as GOOGLE_SECRET
from tests.gmail_server import GmailServer
from tests.graph_server import CLIENT_SECRET, GraphServer

CLI = [sys.executable, "-m", "complaint_triage.cli"]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    require_service(shutil.which("openssl") is not None, "openssl")
    directory = tmp_path_factory.mktemp("auth-certs")
    make_certificates(directory)
    return directory


def _config(tmp_path, source: dict) -> str:
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in source.items())
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n[[sources]]\n{lines}\n')
    return str(path)


def test_the_consent_flow_saves_the_refresh_token_mode_0600_and_prints_no_secret(certificates, tmp_path):
    with GmailServer(certificates, tmp_path) as server:
        token_file = tmp_path / "gmail-token.json"
        config = _config(
            tmp_path,
            server.source(token_file=str(token_file), client_secrets_file=str(server.client_secrets_file())),
        )
        process = subprocess.Popen(
            [*CLI, "auth", "gmail", "--config", config],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = None
            deadline = time.monotonic() + 60
            while url is None:
                assert time.monotonic() < deadline and process.poll() is None, (
                    process.stderr.read() if process.poll() is not None else "no URL"
                )
                line = process.stdout.readline()
                found = re.search(r"https://\S+", line)
                url = found.group(0) if found else None
            assert (
                url.startswith(f"{server.url}/auth?")
                and "code_challenge=" in url
                and "access_type=offline" in url
            )
            with httpx.Client(
                verify=ssl.create_default_context(cafile=server.ca_file), follow_redirects=True, timeout=10
            ) as browser:
                page = browser.get(url)
            assert page.status_code == 200 and "you can close this window" in page.text
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, err
        saved = json.loads(token_file.read_text())
        assert (
            saved["refresh_token"] in server.state.refresh_tokens
            and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        )
        assert f"gmail: the refresh token was saved to {token_file} (mode 0600)" in err
        assert (
            saved["refresh_token"] not in out + err
            and GOOGLE_SECRET not in out + err
            and "ya29." not in out + err
        )


def test_auth_of_app_credentials_gets_a_token_and_says_until_when(certificates, tmp_path):
    with GraphServer(certificates) as server:
        config = _config(tmp_path, server.source())
        env = {**os.environ, "GRAPH_CLIENT_SECRET": CLIENT_SECRET}
        done = subprocess.run(
            [*CLI, "auth", "m365", "--config", config],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert re.search(
            r"m365: a token was obtained; it is good until \d{4}-\d\d-\d\d \d\d:\d\d UTC", done.stderr
        )
        assert server.state.scopes == [f"{server.url}/.default"]
        assert (
            "graph-token-" not in done.stdout + done.stderr and CLIENT_SECRET not in done.stdout + done.stderr
        )
        env["GRAPH_CLIENT_SECRET"] = "expired"
        refused = subprocess.run(
            [*CLI, "auth", "m365", "--config", config],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert (
            refused.returncode == 1
            and "invalid_client: AADSTS7000215" in refused.stderr
            and "Traceback" not in refused.stderr
        )


def test_auth_of_an_unknown_source_is_a_usage_error(tmp_path):
    config = _config(tmp_path, {"name": "saved", "type": "directory", "path": str(tmp_path)})
    done = subprocess.run(
        [*CLI, "auth", "nope", "--config", config], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2 and "no source named 'nope'" in done.stderr
