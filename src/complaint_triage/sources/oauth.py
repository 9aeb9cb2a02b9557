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
            result = self._app.acquire_token_for_client(
                scopes=[self.settings.oauth2_scope or MICROSOFT_IMAP_SCOPE]
            )
        except requests.exceptions.RequestException as exc:
            raise TransientSourceError(
                f"{self.where}: cannot reach the token endpoint: {type(exc).__name__}"
            ) from exc
        if "access_token" not in result:
            description = (result.get("error_description") or "").strip().splitlines()
            raise SourceAuthError(
                f"{self.where}: the token endpoint refused: {result.get('error')}: {scrub(description[0] if description else '')}"
            )
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
            self._credentials = load_credentials(
                self.settings, self.where, [self.settings.oauth2_scope or GOOGLE_MAIL_SCOPE]
            )
        if not self._credentials.valid:
            self.token_expires_at = refresh_credentials(self._credentials, self.settings, self.where)
        return self._credentials.token


def token_provider(settings: SourceSettings, where: str):
    """The built-in token provider the source asks for, or None."""
    providers = {"microsoft": MicrosoftToken, "google": GoogleToken}
    return providers[settings.oauth2_provider](settings, where) if settings.oauth2_provider else None


def authorize(settings: SourceSettings) -> str:
    """Make sure the source can get a token: the installed-app consent flow for a Google token_file, else a token now.

    Returns one line for the user: where the token was saved, or until when the one obtained is good.
    Nothing secret is printed or logged.
    """
    where = f"source {settings.name!r}"
    google = settings.type == "gmail" or settings.oauth2_provider == "google"
    if google and settings.token_file and not settings.credentials_file:
        return _installed_app_flow(settings, where)
    if settings.type == "graph" or settings.oauth2_provider == "microsoft":
        provider = MicrosoftToken(settings, where)
        if settings.type == "graph":
            from complaint_triage.sources.graph import _scope

            settings = settings.model_copy(update={"oauth2_scope": _scope(settings.graph_url)})
            provider.settings = settings
    elif google:
        provider = GoogleToken(settings, where)
        if settings.type == "gmail":
            from complaint_triage.sources.gmail import MODIFY_SCOPE, READONLY_SCOPE

            provider.settings = settings.model_copy(
                update={"oauth2_scope": READONLY_SCOPE if settings.after == "keep" else MODIFY_SCOPE}
            )
    else:
        raise SourceAuthError(f"{where}: type {settings.type} has no OAuth2 token to obtain")
    provider()
    return f"{settings.name}: a token was obtained; it is good until {provider.token_expires_at:%Y-%m-%d %H:%M UTC}"


def _installed_app_flow(settings: SourceSettings, where: str) -> str:
    """Google's installed-app flow with a local redirect: the user opens the URL, consents, and the refresh token is saved."""
    from google_auth_oauthlib.flow import InstalledAppFlow

    from complaint_triage.sources.gmail import MODIFY_SCOPE, READONLY_SCOPE, save_token_file
    from complaint_triage.sources.graph import pin_verify

    if not settings.client_secrets_file:
        raise SourceAuthError(
            f"{where}: the consent flow needs client_secrets_file (the installed app's client, from the Google Cloud console)"
        )
    if settings.type == "gmail":
        scopes = [READONLY_SCOPE if settings.after == "keep" else MODIFY_SCOPE]
    else:
        scopes = [settings.oauth2_scope or GOOGLE_MAIL_SCOPE]
    try:
        flow = InstalledAppFlow.from_client_secrets_file(settings.client_secrets_file, scopes=scopes)
    except (OSError, ValueError) as exc:
        raise SourceAuthError(
            f"{where}: cannot read client_secrets_file {settings.client_secrets_file}: {exc}"
        ) from exc
    pin_verify(flow.oauth2session, settings.ca_file)
    message = "Open this address in a browser, sign in to the mailbox and allow access:\n{url}"
    credentials = flow.run_local_server(
        host="127.0.0.1",
        port=0,
        open_browser=False,
        authorization_prompt_message=message,
        success_message="complaint-triage has its token: you can close this window.",
        timeout_seconds=int(settings.timeout_seconds * 10),
        access_type="offline",
        prompt="consent",
    )
    if not credentials.refresh_token:
        raise SourceAuthError(
            f"{where}: Google returned no refresh token: remove the app's access in the account and run this again"
        )
    register_secret(credentials.token or "")
    register_secret(credentials.refresh_token)
    save_token_file(settings.token_file, credentials.to_json(strip=["token", "expiry"]))
    return f"{settings.name}: the refresh token was saved to {settings.token_file} (mode 0600)"
