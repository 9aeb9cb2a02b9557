"""XOAUTH2 built into the IMAP source: Microsoft 365 client credentials and a Google refresh token, against the real Dovecot.

The token endpoints are the local HTTPS fakes of tests/graph_server.py and tests/gmail_server.py;
they hand out the test Dovecot's password as the access token, which Dovecot's XOAUTH2 accepts.
"""

from __future__ import annotations

import shutil

import pytest

from complaint_triage.errors import SourceAuthError
from complaint_triage.service import Service, source_statuses
from complaint_triage.settings import Settings, SourceSettings
from complaint_triage.sources.imap import ImapSource
from complaint_triage.testing.dovecot import PASSWORD, make_certificates
from complaint_triage.testing.mail import sample_messages
from tests.conftest import poll, require_service
from tests.gmail_server import GmailServer
from tests.graph_server import CLIENT_ID, CLIENT_SECRET, TENANT, GraphServer


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    require_service(shutil.which("openssl") is not None, "openssl")
    directory = tmp_path_factory.mktemp("oauth-certs")
    make_certificates(directory)
    return directory


def test_microsoft_client_credentials_log_in_with_xoauth2_and_the_token_is_cached(
    mailbox, certificates, checkpoints, triager, fresh_store, monkeypatch
):  # noqa: F811
    monkeypatch.setenv("M365_SECRET", CLIENT_SECRET)
    mailbox.append(sample_messages(3, "m365-imap"))
    with GraphServer(certificates) as server:
        server.state.token_value = PASSWORD
        settings = mailbox.settings(
            password_env=None,
            oauth2_provider="microsoft",
            tenant_id=TENANT,
            client_id=CLIENT_ID,
            client_secret_env="M365_SECRET",
            authority_host=server.url,
            ca_file=str(server.ca_file),
        )
        source = ImapSource(settings, checkpoints)
        assert poll(source, triager, fresh_store).triaged == 3
        source.close()
        poll(source, triager, fresh_store)  # a second connection: MSAL's cached token, no new request
        source.close()
        assert server.state.scopes == ["https://outlook.office365.com/.default"]
        assert source.token_expires_at is not None
    assert sum("method=XOAUTH2" in line for line in mailbox.server.session_lines(mailbox.user)) == 2


def test_a_refused_microsoft_secret_is_an_auth_failure_before_any_imap_connection(
    mailbox, certificates, checkpoints, monkeypatch
):  # noqa: F811
    monkeypatch.setenv("M365_SECRET", "expired")
    with GraphServer(certificates) as server:
        settings = mailbox.settings(
            password_env=None,
            oauth2_provider="microsoft",
            tenant_id=TENANT,
            client_id=CLIENT_ID,
            client_secret_env="M365_SECRET",
            authority_host=server.url,
            ca_file=str(server.ca_file),
        )
        with pytest.raises(SourceAuthError, match="invalid_client: AADSTS7000215"):
            list(ImapSource(settings, checkpoints).fetch_messages())
    assert mailbox.server.session_lines(mailbox.user) == []


def test_a_google_refresh_token_logs_in_with_xoauth2_and_status_shows_the_expiry(
    mailbox, certificates, triager, fresh_store, tmp_path
):  # noqa: F811
    mailbox.append(sample_messages(2, "google-imap"))
    with GmailServer(certificates, tmp_path) as server:
        server.state.token_value = PASSWORD
        token_file = server.token_file()
        source = mailbox.settings(
            password_env=None,
            oauth2_provider="google",
            token_file=str(token_file),
            token_uri=f"{server.url}/token",
            ca_file=str(server.ca_file),
        )
        service = Service(Settings(sources=[source]), store=fresh_store, triager=triager)
        assert service.poll_all()[0].summary.triaged == 2
        service.close()
        assert server.state.scopes == ["https://mail.google.com/"]
    status = source_statuses(service.settings, fresh_store)[0]
    assert status.token_expires_at is not None and not status.auth_failed


def test_a_provider_without_its_keys_is_refused_in_the_config():
    with pytest.raises(ValueError, match="needs tenant_id, client_id and a client secret or certificate"):
        SourceSettings(
            name="x", type="imap", host="outlook.office365.com", username="a@b", oauth2_provider="microsoft"
        )
