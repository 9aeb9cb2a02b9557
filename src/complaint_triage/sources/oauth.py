"""OAuth2 access tokens for IMAP (XOAUTH2) without a helper command: Microsoft 365 by client credentials, Google by token.

Microsoft: the app registration's client secret or certificate (MSAL; the tenant's service
principal needs the IMAP.AccessAsApp permission and a mailbox permission in Exchange), scope
`https://outlook.office365.com/.default`. Google: the authorised-user token_file of an installed
app (its refresh token rotated and saved like the Gmail source's), or a service account acting as
the IMAP user, scope `https://mail.google.com/`. The providers cache the token until it nears
expiry; `token_expires_at` is what `status` shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from complaint_triage.errors import SourceAuthError, TransientSourceError
from complaint_triage.logs import register_secret, scrub
from complaint_triage.settings import SourceSettings

MICROSOFT_IMAP_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_MAIL_SCOPE = "https://mail.google.com/"


class MicrosoftToken:
    """App-only tokens for Exchange Online's IMAP, from MSAL (which caches them)."""

    def __init__(self, settings: SourceSettings, where: str):
        self.settings, self.where = settings, where
        self.token_expires_at: datetime | None = None
        self._app = None

    def __call__(self) -> str:
        """A valid access token."""
        import requests

        from complaint_triage.sources.graph import _confidential_client

        if self._app is None:
            self._app = _confidential_client(self.settings, self.where)
        try:
            result = self._app.acquire_token_for_client(scopes=[self.settings.oauth2_scope or MICROSOFT_IMAP_SCOPE])
        except requests.exceptions.RequestException as exc:
            raise TransientSourceError(f"{self.where}: cannot reach the token endpoint: {type(exc).__name__}") from exc
        if "access_token" not in result:
            description = (result.get("error_description") or "").strip().splitlines()
            raise SourceAuthError(f"{self.where}: the token endpoint refused: {result.get('error')}: {scrub(description[0] if description else '')}")
        register_secret(result["access_token"])
        self.token_expires_at = datetime.now(UTC) + timedelta(seconds=int(result.get("expires_in", 0)))
        return result["access_token"]


class GoogleToken:
    """Tokens for Gmail's IMAP from an installed app's refresh token or a service account (google-auth)."""

    def __init__(self, settings: SourceSettings, where: str):
        self.settings, self.where = settings, where
        self.token_expires_at: datetime | None = None
        self._credentials = None

    def __call__(self) -> str:
        """A valid access token, refreshed when it has expired."""
        from complaint_triage.sources.gmail import load_credentials, refresh_credentials

        if self._credentials is None:
            self._credentials = load_credentials(self.settings, self.where, [self.settings.oauth2_scope or GOOGLE_MAIL_SCOPE])
        if not self._credentials.valid:
            self.token_expires_at = refresh_credentials(self._credentials, self.settings, self.where)
        return self._credentials.token


def token_provider(settings: SourceSettings, where: str):
    """The built-in token provider the source asks for, or None."""
    providers = {"microsoft": MicrosoftToken, "google": GoogleToken}
    return providers[settings.oauth2_provider](settings, where) if settings.oauth2_provider else None
