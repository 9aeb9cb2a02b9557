"""The workspace app (Starlette): sign-in, the queue, case pages and their actions, sources, summaries, and the JSON API.

Plain server-rendered pages and forms, no script at all: the Content-Security-Policy forbids
every script, so nothing a message carries can run. Every state-changing request carries the
session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import contextlib
import functools
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from complaint_triage.settings import Settings
from complaint_triage.store import Store
from complaint_triage.store.users import User, get_user, list_users
from complaint_triage.web import auth
from complaint_triage.web.views import (
    STATUS_CHOICES,
    CaseView,
    FilterError,
    Filters,
    case_url,
    queue,
    visible_case,
)

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"


class Workspace:
    """What every request needs: the store, the settings, the session signer and the templates."""

    def __init__(self, settings: Settings, secret: str, secure_cookies: bool = False):
        self.settings, self.zone = settings, settings.schedule.timezone
        self.store = Store(settings.store.url)
        self.sessions = auth.Sessions(secret)
        self.secure_cookies = secure_cookies
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(case_url=case_url, statuses=STATUS_CHOICES[2:])
        self.templates.filters["local"] = functools.partial(_local_time, ZoneInfo(self.zone))

    def page(self, request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        """Render a template with the signed-in user and the CSRF token."""
        context.setdefault("user", request.state.user if hasattr(request.state, "user") else None)
        session = getattr(request.state, "session", None)
        html = self.templates.get_template(name).render(
            csrf_token=session.csrf_token if session else "", request=request, **context
        )
        return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _local_time(zone: ZoneInfo, moment) -> str:
    """A stored moment (UTC; SQLite keeps no offset) in the configured timezone."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _workspace(request: Request) -> Workspace:
    return request.app.state.workspace


async def _signed_in(request: Request) -> User | None:
    """The user the session cookie names, read again from the store (a removed user is signed out at once)."""
    workspace = _workspace(request)
    session = workspace.sessions.read(request.cookies.get(auth.SESSION_COOKIE))
    if session is None:
        return None
    user = await run_in_threadpool(get_user, workspace.store, session.username)
    if user is not None:
        request.state.user, request.state.session = user, session
    return user


async def _sent_token(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header or request.headers.get("content-type", "").startswith("application/json"):
        return header
    form = await request.form()
    value = form.get("csrf_token")
    return value if isinstance(value, str) else None


def page(handler=None, *, changes_state: bool = False, admin: bool = False):
    """A page: without a session, a redirect to /login; a POST without the session's CSRF token, 403."""
    if handler is None:
        return functools.partial(page, changes_state=changes_state, admin=admin)

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        user = await _signed_in(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?" + _next_query(target), status_code=303)
        if changes_state and not auth.token_matches(request.state.session, await _sent_token(request)):
            return _workspace(request).page(
                request,
                "error.html",
                403,
                message="This form has expired or did not come from this site: reload the page and try again.",
            )
        if admin and not user.is_admin:
            return _workspace(request).page(request, "error.html", 403, message="Only an admin may do this.")
        return await handler(request, user)

    return wrapper


def api(handler=None, *, changes_state: bool = False):
    """An API endpoint: without a session, 401; a POST without the X-CSRF-Token header, 403."""
    if handler is None:
        return functools.partial(api, changes_state=changes_state)

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        user = await _signed_in(request)
        if user is None:
            return JSONResponse({"error": "not signed in"}, status_code=401)
        if changes_state and not auth.token_matches(request.state.session, await _sent_token(request)):
            return JSONResponse({"error": "missing or wrong CSRF token (send X-CSRF-Token)"}, status_code=403)
        return await handler(request, user)

    return wrapper


def _next_query(target: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": target})


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never //host or a scheme) is followed after sign-in."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# --- sign-in ---------------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    """The sign-in form."""
    if await _signed_in(request):
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _workspace(request).page(request, "login.html", next=_safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """Check the name and password; too many failures from a name or an address are refused for a while."""
    workspace = _workspace(request)
    if not _same_origin(request):
        return workspace.page(
            request, "login.html", 403, error="Sign-in from another site is refused.", next="/"
        )
    form = await request.form()
    username, password = str(form.get("username") or "").strip().lower(), str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or ""))
    address = request.client.host if request.client else "unknown"
    store = workspace.store
    if await run_in_threadpool(auth.login_blocked, store, username, address):
        return workspace.page(
            request,
            "login.html",
            429,
            error="Too many failed sign-ins: wait a quarter of an hour.",
            next=target,
        )
    user = await run_in_threadpool(get_user, store, username)
    if not await run_in_threadpool(auth.password_matches, user.password_hash if user else None, password):
        await run_in_threadpool(auth.note_failed_login, store, username, address)
        return workspace.page(
            request, "login.html", 401, error="Wrong user name or password.", next=target, username=username
        )
    await run_in_threadpool(auth.note_login, store, username)
    cookie, _session = workspace.sessions.issue(user.username)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, cookie)
    return response


def _same_origin(request: Request) -> bool:
    """A browser sends Origin with a POST: a sign-in posted from another site (login CSRF) is refused; clients without one pass."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


def _set_cookie(request: Request, response: Response, value: str) -> None:
    secure = _workspace(request).secure_cookies or request.url.scheme == "https"
    response.set_cookie(
        auth.SESSION_COOKIE,
        value,
        max_age=auth.SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


@page(changes_state=True)
async def logout(request: Request, user: User) -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


# --- pages -----------------------------------------------------------------------------------


@page
async def queue_page(request: Request, user: User) -> Response:
    """The queue: overdue first, then due soon, then by urgency; filters in the URL."""
    from complaint_triage.records import KINDS, URGENCIES
    from complaint_triage.web.views import accounts_of

    workspace = _workspace(request)
    try:
        filters = Filters.from_query(request.query_params)
    except FilterError as exc:
        return workspace.page(request, "error.html", 400, message=str(exc))
    entries = await run_in_threadpool(queue, workspace.store, user, filters, workspace.zone)
    accounts = await run_in_threadpool(accounts_of, workspace.store, user)
    return workspace.page(
        request,
        "queue.html",
        entries=entries,
        filters=filters,
        urgencies=URGENCIES,
        kinds=KINDS,
        status_choices=STATUS_CHOICES,
        accounts=accounts,
    )


async def _case_or_404(request: Request, user: User) -> CaseView | Response:
    workspace = _workspace(request)
    view = await run_in_threadpool(
        visible_case, workspace.store, user, request.path_params["key"], workspace.zone
    )
    if view is None:
        return workspace.page(
            request, "error.html", 404, message="No such case (or not one of your accounts)."
        )
    return view


@page
async def case_page(request: Request, user: User) -> Response:
    """One case: facts, checks, reasons, next steps, links, its mail, history and notes, and the actions."""
    view = await _case_or_404(request, user)
    if isinstance(view, Response):
        return view
    people = await run_in_threadpool(list_users, _workspace(request).store)
    return _workspace(request).page(
        request,
        "case.html",
        view=view,
        case=view.entry.case,
        entry=view.entry,
        people=[p.username for p in people if p.may_see(view.entry.case.source_name)],
    )


@page
async def mail_html_page(request: Request, user: User) -> Response:
    """A message's HTML body, sanitised, for the sandboxed frame on its case page (its own CSP: no script, no outside requests)."""
    from complaint_triage.web.views import mail_html

    view = await _case_or_404(request, user)
    if isinstance(view, Response):
        return view
    html = await run_in_threadpool(
        mail_html, _workspace(request).store, view, int(request.path_params["index"])
    )
    if html is None:
        return Response("no HTML body", status_code=404, media_type="text/plain")
    headers = {
        "Content-Security-Policy": MAIL_CSP,
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(f'<!doctype html><meta charset="utf-8"><base target="_blank">{html}', headers=headers)


def _form_text(form, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@page(changes_state=True)
async def case_action(request: Request, user: User) -> Response:
    """Change the status, add a note or assign the case; then back to its page."""
    from complaint_triage.web import actions

    view = await _case_or_404(request, user)
    if isinstance(view, Response):
        return view
    form = await request.form()
    fields = {name: _form_text(form, name) for name in ("status", "note", "assignee")}
    problem = await run_in_threadpool(
        actions.apply,
        _workspace(request).store,
        user,
        view.entry.case.key,
        request.path_params["action"],
        fields,
    )
    if problem:
        return _workspace(request).page(request, "error.html", 400, message=problem)
    return RedirectResponse(case_url(view.entry.case.key), status_code=303)


@page
async def sources_page(request: Request, user: User) -> Response:
    """Each source the user may see: last poll, last error, how it signs in, and the stored failures."""
    from complaint_triage.web.actions import source_views

    workspace = _workspace(request)
    sources, failures = await run_in_threadpool(source_views, workspace.store, workspace.settings, user)
    return workspace.page(
        request,
        "sources.html",
        sources=sources,
        failures=failures,
        replayed=request.query_params.get("replayed"),
    )


@page(changes_state=True, admin=True)
async def replay(request: Request, user: User) -> Response:
    """Triage the stored failures again (admins only)."""
    from complaint_triage.web.actions import replay_failures

    workspace = _workspace(request)
    summary = await run_in_threadpool(replay_failures, workspace.store, workspace.settings)
    return RedirectResponse(
        f"/sources?replayed={summary.triaged}+triaged,+{summary.failed}+failed", status_code=303
    )


@page
async def summary_page(request: Request, user: User) -> Response:
    """The daily summary of any day (?date=YYYY-MM-DD, default yesterday), of the accounts the user may see."""
    from complaint_triage.web.actions import summary_html

    workspace = _workspace(request)
    html = await run_in_threadpool(
        summary_html, workspace.store, workspace.settings, user, request.query_params.get("date")
    )
    if html is None:
        return workspace.page(request, "error.html", 400, message="date must be YYYY-MM-DD")
    return HTMLResponse(
        html, headers={"Cache-Control": "no-store", "Content-Security-Policy": _summary_policy(html)}
    )


def _summary_policy(html: str) -> str:
    """The summary page's CSP: only its own sorting script may run, named by its hash (message text in it is escaped, so it can add none)."""
    import base64
    import hashlib
    import re

    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in scripts[-1:]
    )
    return f"default-src 'none'; script-src {hashes or chr(39) + 'none' + chr(39)}; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


# --- the JSON API ----------------------------------------------------------------------------


@api
async def api_cases(request: Request, user: User) -> Response:
    """`GET /api/cases`: the queue as JSON, with the page's filters."""
    workspace = _workspace(request)
    try:
        filters = Filters.from_query(request.query_params)
    except FilterError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    entries = await run_in_threadpool(queue, workspace.store, user, filters, workspace.zone)
    return JSONResponse([entry.to_json() for entry in entries])


@api
async def api_case(request: Request, user: User) -> Response:
    """`GET /api/cases/{key}`: one case with its history and its messages' records."""
    workspace = _workspace(request)
    view = await run_in_threadpool(
        visible_case, workspace.store, user, request.path_params["key"], workspace.zone
    )
    if view is None:
        return JSONResponse({"error": "no such case"}, status_code=404)
    return JSONResponse(view.to_json())


@api(changes_state=True)
async def api_case_action(request: Request, user: User) -> Response:
    """`POST /api/cases/{key}/status|note|assign` with a JSON body: {"status", "note"}, {"note"} or {"assignee"}."""
    from complaint_triage.web import actions

    workspace = _workspace(request)
    view = await run_in_threadpool(
        visible_case, workspace.store, user, request.path_params["key"], workspace.zone
    )
    if view is None:
        return JSONResponse({"error": "no such case"}, status_code=404)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    fields = {name: str(body.get(name) or "").strip()[:5000] for name in ("status", "note", "assignee")}
    problem = await run_in_threadpool(
        actions.apply, workspace.store, user, view.entry.case.key, request.path_params["action"], fields
    )
    if problem:
        return JSONResponse({"error": problem}, status_code=400)
    view = await run_in_threadpool(visible_case, workspace.store, user, view.entry.case.key, workspace.zone)
    return JSONResponse(view.to_json())


# --- the application -------------------------------------------------------------------------


class SecurityHeaders:
    """Adds the security headers to every response that has not set its own policy (the mail frame has)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"same-origin",
                    b"cross-origin-opener-policy": b"same-origin",
                }
                headers += [(name, value) for name, value in extra.items() if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def routes() -> list:
    """Every page and API endpoint."""
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", queue_page, methods=["GET"]),
        Route("/cases/{key:path}/mail/{index:int}", mail_html_page, methods=["GET"]),
        Route("/cases/{key:path}/{action:str}", case_action, methods=["POST"]),
        Route("/cases/{key:path}", case_page, methods=["GET"]),
        Route("/sources", sources_page, methods=["GET"]),
        Route("/sources/replay", replay, methods=["POST"]),
        Route("/summary", summary_page, methods=["GET"]),
        Route("/api/cases", api_cases, methods=["GET"]),
        Route("/api/cases/{key:path}/{action:str}", api_case_action, methods=["POST"]),
        Route("/api/cases/{key:path}", api_case, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(settings: Settings, secret: str, secure_cookies: bool = False):
    """The ASGI application on the configured store (wrapped in the security headers)."""
    workspace = Workspace(settings, secret, secure_cookies)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        workspace.store.close()

    app = Starlette(routes=routes(), lifespan=lifespan)
    app.state.workspace = workspace
    return SecurityHeaders(app)
