"""The web workspace against a real store filled by triaging the fixtures: sign-in, the queue, case actions, CSRF, scoping.

The fast tests drive the ASGI app in process (Starlette's TestClient); the browser tests start
it with uvicorn on a free loopback port and use headless Chromium through Playwright.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.settings import Settings
from complaint_triage.store import Store
from complaint_triage.store.users import add_user, list_users
from complaint_triage.testing.mail import NOTICE, build_message
from complaint_triage.web.auth import hash_password
from complaint_triage.web.views import case_url
from tests.conftest import CHROMIUM, ROOT, fixture_files, require_module, require_service

SECRET = "a-test-session-secret-that-is-long-enough"
HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
HOSTILE_HTML = f'<p>Listing removed.</p>{HOSTILE}<a href="javascript:window.__xss=3">click</a><form action="https://evil.example"><input name=x></form>'
HOSTILE_KEY = "complaint:19999999901"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _fill(store: Store, triager) -> None:
    """Every fixture, alternately in two seller accounts, and a hostile notice in seller-a."""
    messages = [
        RawMessage(raw=path.read_bytes(), source=str(path), source_name="seller-a" if n % 2 else "seller-b")
        for n, path in enumerate(fixture_files())
    ]
    hostile = build_message(
        NOTICE.replace("removed some", "removed all").replace("16509328131", "19999999901"),
        subject=HOSTILE,
        html=HOSTILE_HTML,
        message_id="<xss-web@x>",
    )
    messages.append(RawMessage(raw=hostile, source="xss", source_name="seller-a"))
    ingest(messages, triager, store)
    add_user(store.engine, "alice", hash_password(PASSWORDS["alice"]), "admin")
    add_user(store.engine, "bob", hash_password(PASSWORDS["bob"]), "member", ["seller-b"])


@pytest.fixture(scope="module")
def store_url(tmp_path_factory, triager):
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'store.db'}"
    store = Store(url)
    _fill(store, triager)
    store.close()
    return url


def _settings(url: str) -> Settings:
    return Settings.model_validate(
        {
            "store": {"url": url},
            "sources": [
                {"name": "seller-a", "type": "directory", "path": "fixtures"},
                {"name": "seller-b", "type": "directory", "path": "fixtures"},
            ],
        }
    )


@pytest.fixture(scope="module")
def app(store_url):
    from complaint_triage.web.app import create_app

    return create_app(_settings(store_url), SECRET)


def _client(app):
    from starlette.testclient import TestClient

    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def _signed_in(app, name: str):
    client = _client(app)
    response = client.post("/login", data={"username": name, "password": PASSWORDS[name]})
    assert response.status_code == 303, response.text
    return client, _token(client.get("/").text)


def _token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def _accounts_of_cases(client) -> set:
    return {entry["account"] for entry in client.get("/api/cases?status=all").json()}


def test_without_a_session_pages_redirect_to_login_and_the_api_answers_401(app):
    client = _client(app)
    for path in ("/", "/sources", "/summary", case_url(HOSTILE_KEY)):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert client.get("/api/cases").status_code == 401
    assert client.get(f"/api/cases/{HOSTILE_KEY}").status_code == 401
    assert client.post(f"/api/cases/{HOSTILE_KEY}/status", json={"status": "resolved"}).status_code == 401
    assert client.get("/login").status_code == 200


def test_a_wrong_password_is_refused_and_the_right_one_sets_a_locked_down_cookie(app):
    client = _client(app)
    refused = client.post("/login", data={"username": "alice", "password": "not-her-password"})
    assert (
        refused.status_code == 401
        and "Wrong user name or password" in refused.text
        and "set-cookie" not in refused.headers
    )
    assert client.post("/login", data={"username": "nobody", "password": "whatever-it-is"}).status_code == 401
    accepted = client.post(
        "/login", data={"username": "alice", "password": PASSWORDS["alice"], "next": "//evil.example/"}
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"  # never off-site after sign-in
    cookie = accepted.headers["set-cookie"]
    assert (
        "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
    )  # plain HTTP here
    assert client.get("/").status_code == 200


def test_a_forged_cookie_is_no_session(app):
    client = _client(app)
    client.cookies.set("ct_session", "eyJ1IjoiYWxpY2UiLCJjIjoieCJ9.forged.signature")
    assert client.get("/api/cases").status_code == 401


def test_a_sign_in_posted_from_another_site_is_refused(app):
    response = _client(app).post(
        "/login",
        data={"username": "alice", "password": PASSWORDS["alice"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_failed_logins_are_limited_even_for_the_right_password_afterwards(tmp_path, triager):
    from complaint_triage.web.app import create_app

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    add_user(store.engine, "carol", hash_password("carol-password"), "member")
    store.close()
    client = _client(create_app(_settings(url), SECRET))
    codes = [
        client.post("/login", data={"username": "carol", "password": f"guess-{n}"}).status_code
        for n in range(5)
    ]
    assert codes == [401] * 5
    blocked = client.post("/login", data={"username": "carol", "password": "carol-password"})
    assert blocked.status_code == 429 and "set-cookie" not in blocked.headers


def test_state_changes_need_the_csrf_token(app):
    client, token = _signed_in(app, "alice")
    path = f"/api/cases/{HOSTILE_KEY}/status"
    assert client.post(path, json={"status": "acknowledged"}).status_code == 403
    assert (
        client.post(path, json={"status": "acknowledged"}, headers={"X-CSRF-Token": "x" + token}).status_code
        == 403
    )
    assert client.post(case_url(HOSTILE_KEY) + "/note", data={"note": "no token"}).status_code == 403
    assert client.post("/logout").status_code == 403
    assert client.get(f"/api/cases/{HOSTILE_KEY}").json()["status"] == "new"  # nothing changed
    changed = client.post(
        path, json={"status": "acknowledged", "note": "seen it"}, headers={"X-CSRF-Token": token}
    )
    assert changed.status_code == 200
    body = changed.json()
    assert body["status"] == "acknowledged" and body["history"][-1] == {
        **body["history"][-1],
        "status": "acknowledged",
        "note": "seen it",
        "actor": "alice",
    }
    assert client.post(path, json={"status": "bogus"}, headers={"X-CSRF-Token": token}).status_code == 400


def test_a_note_keeps_the_status_and_assignment_is_limited_to_users_who_may_see_the_case(app):
    client, token = _signed_in(app, "alice")
    key = next(e["key"] for e in client.get("/api/cases?account=seller-a").json() if e["key"] != HOSTILE_KEY)
    before = client.get(f"/api/cases/{key}").json()
    assert (
        client.post(
            case_url(key) + "/note", data={"note": "phoned the brand", "csrf_token": token}
        ).status_code
        == 303
    )
    after = client.get(f"/api/cases/{key}").json()
    assert after["status"] == before["status"] and after["history"][-1]["note"] == "phoned the brand"
    assert (
        client.post(case_url(key) + "/assign", data={"assignee": "bob", "csrf_token": token}).status_code
        == 400
    )  # bob sees seller-b only
    assert (
        client.post(case_url(key) + "/assign", data={"assignee": "alice", "csrf_token": token}).status_code
        == 303
    )
    assert client.get(f"/api/cases/{key}").json()["assignee"] == "alice"


def test_a_member_sees_only_their_accounts_in_pages_and_api(app):
    admin, _ = _signed_in(app, "alice")
    assert _accounts_of_cases(admin) == {"seller-a", "seller-b"}
    other = next(e for e in admin.get("/api/cases?account=seller-a&status=all").json())
    member, token = _signed_in(app, "bob")
    assert _accounts_of_cases(member) == {"seller-b"}
    assert member.get("/api/cases?account=seller-a").json() == []
    for ident in (other["key"], *other["complaint_ids"][:1]):
        assert member.get(f"/api/cases/{ident}").status_code == 404
        assert member.get(case_url(ident)).status_code == 404
    assert (
        member.post(
            f"/api/cases/{other['key']}/status", json={"status": "resolved"}, headers={"X-CSRF-Token": token}
        ).status_code
        == 404
    )
    assert member.get(case_url(HOSTILE_KEY) + "/mail/0").status_code == 404
    assert (
        other["key"] not in member.get("/?status=all").text
        and "seller-a" not in member.get("/summary?date=latest").text
    )
    assert (
        member.post("/sources/replay", data={"csrf_token": token}).status_code == 403
    )  # replaying is for admins


def test_the_queue_is_ordered_overdue_then_due_soon_then_by_urgency_and_filters_hold(app):
    client, _ = _signed_in(app, "alice")
    entries = client.get("/api/cases?status=all").json()
    assert entries and all("key" in entry for entry in entries)
    bands = [0 if e["overdue"] else 1 if e["due_soon"] else 2 for e in entries]
    assert bands == sorted(bands)
    rest = [
        ("critical", "high", "medium", "low").index(e["urgency"])
        for e in entries
        if not (e["overdue"] or e["due_soon"])
    ]
    assert rest == sorted(rest)
    overdue = [e for e in entries if e["overdue"]]
    assert overdue and all(e["due"].startswith("overdue ") for e in overdue)
    assert [e["response_due"] for e in overdue] == sorted(
        e["response_due"] for e in overdue
    )  # longest overdue first
    critical = client.get("/api/cases?urgency=critical&status=all").json()
    assert critical and {e["urgency"] for e in critical} == {"critical"} and len(critical) < len(entries)
    assert {e["status"] for e in client.get("/api/cases").json()} <= {
        "new",
        "acknowledged",
    }  # the default: open cases
    assert {e["kind"] for e in client.get("/api/cases?kind=cease_and_desist&status=all").json()} == {
        "cease_and_desist"
    }
    assert all(
        e["marketplace"] == "amazon.de"
        for e in client.get("/api/cases?marketplace=amazon.de&status=all").json()
    )
    assert client.get("/api/cases?urgency=urgent").status_code == 400
    page = client.get("/?urgency=critical&status=all")
    assert page.status_code == 200 and page.text.count("data-key=") == len(critical)


def test_security_headers_and_the_sanitised_mail_frame(app):
    client, _ = _signed_in(app, "alice")
    page = client.get(case_url(HOSTILE_KEY))
    csp = page.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
    assert 'sandbox src="/cases/complaint%3A19999999901/mail/0"' in page.text
    frame = client.get(case_url(HOSTILE_KEY) + "/mail/0")
    assert frame.status_code == 200 and "sandbox" in frame.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in frame.headers["content-security-policy"]
    lowered = frame.text.lower()
    assert "<img>" in lowered or "src=" not in lowered  # the image stays, without its outside address
    assert (
        "listing removed" in lowered
        and "<script" not in lowered
        and "onerror" not in lowered
        and "javascript:" not in lowered
        and "<form" not in lowered
    )


def test_the_user_commands_and_a_removed_user_loses_their_session(store_url, app):
    def run(*args, stdin=""):
        return subprocess.run(
            [sys.executable, "-m", "complaint_triage.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COMPLAINT_TRIAGE__STORE__URL": store_url},
            cwd=ROOT,
            timeout=120,
        )

    added = run("user", "add", "dave", "--accounts", "seller-b,seller-a", stdin="dave-password\n")
    assert added.returncode == 0, added.stderr
    assert run("user", "add", "dave", stdin="dave-password\n").returncode == 2  # exists already
    assert run("user", "add", "eve", stdin="short\n").returncode == 2  # too short a password
    listed = run("user", "list").stdout
    assert "dave\tmember\tseller-a,seller-b" in listed and "alice\tadmin\tall accounts" in listed
    client = _client(app)
    assert client.post("/login", data={"username": "dave", "password": "dave-password"}).status_code == 303
    assert client.get("/api/cases").status_code == 200
    assert run("user", "remove", "dave").returncode == 0
    assert client.get("/api/cases").status_code == 401
    assert run("user", "remove", "dave").returncode == 2
    assert "dave" not in [u.username for u in list_users(Store(store_url).engine)]


def test_serve_refuses_to_start_without_a_session_secret(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMPLAINT_TRIAGE_SESSION")}
    result = subprocess.run(
        [sys.executable, "-m", "complaint_triage.cli", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2 and "session secret" in result.stderr and "Traceback" not in result.stderr


# --- in Chromium, against uvicorn -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(app):
    import uvicorn

    port = _free_port()
    instance = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    require_service(CHROMIUM.exists(), "Chromium (/usr/bin/chromium)")
    playwright_api = require_module("playwright.sync_api", "Playwright for Python")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield launched
        launched.close()


def _watched_page(browser, problems: list):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (problems.append("dialog: " + dialog.message), dialog.dismiss()))
    return page


def _sign_in(page, base: str, name: str) -> None:
    page.goto(base + "/")
    assert "/login" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_in_chromium_sign_in_filter_open_a_case_change_its_status_and_add_a_note(server, browser):
    problems: list = []
    page = _watched_page(browser, problems)
    page.goto(server + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("main") and "/login" in page.url
    problems.clear()  # the refusal itself is logged as a 401
    _sign_in(page, server, "alice")
    page.select_option("select[name=urgency]", "high")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*urgency=high.*"))
    rows = page.locator("table.queue tbody tr[data-key]")
    assert rows.count() > 0 and set(
        page.locator("table.queue tbody tr[data-key] .urgency").all_inner_texts()
    ) == {"high"}
    key = rows.first.get_attribute("data-key")
    rows.first.locator("td.key a").click()
    page.wait_for_url(server + case_url(key))
    assert page.inner_text("h1") == key
    assert page.locator("section.facts").count() == 1 and page.locator("article.mail").count() >= 1
    page.select_option("section.actions select[name=status]", "responded")
    page.fill("section.actions form:first-child input[name=note]", "answered by mail")
    page.click("section.actions form:first-child button")
    page.wait_for_url(server + case_url(key))
    assert page.inner_text("#status") == "responded"
    page.fill("section.actions form:nth-child(2) input[name=note]", "brand called back")
    page.click("section.actions form:nth-child(2) button")
    page.wait_for_url(server + case_url(key))
    notes = page.locator("section.history td.note").all_inner_texts()
    assert (
        "answered by mail" in notes
        and notes[-1] == "brand called back"
        and page.inner_text("#status") == "responded"
    )
    assert problems == []


def test_in_chromium_a_hostile_subject_and_html_stay_inert(server, browser):
    problems: list = []
    page = _watched_page(browser, problems)
    _sign_in(page, server, "alice")
    page.goto(server + case_url(HOSTILE_KEY))
    assert page.inner_text("h2.subject") == HOSTILE
    page.click("details:has(iframe) summary")
    frame = page.frame_locator("iframe")
    assert "Listing removed." in frame.locator("body").inner_text()
    assert frame.locator("script, form, [onerror]").count() == 0
    page.goto(server + "/?status=all")
    assert page.get_by_text(HOSTILE).count() >= 1
    assert page.evaluate("window.__xss") is None
    assert problems == []


def test_in_chromium_a_member_cannot_reach_another_accounts_case_and_a_post_without_token_is_refused(
    server, browser
):
    problems: list = []
    page = _watched_page(browser, problems)
    _sign_in(page, server, "bob")
    response = page.goto(server + case_url(HOSTILE_KEY))
    assert response.status == 404 and HOSTILE not in page.content()
    assert page.request.get(server + f"/api/cases/{HOSTILE_KEY}").status == 404
    own = page.request.get(server + "/api/cases?status=all").json()
    assert own and {entry["account"] for entry in own} == {"seller-b"}
    no_token = page.request.post(server + f"/api/cases/{own[0]['key']}/note", data={"note": "x"})
    assert no_token.status == 403
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    with_token = page.request.post(
        server + f"/api/cases/{own[0]['key']}/note", data={"note": "checked"}, headers={"X-CSRF-Token": token}
    )
    assert with_token.status == 200 and with_token.json()["history"][-1]["note"] == "checked"
    assert [p for p in problems if "404" not in p] == []  # the refused page itself is logged as a 404


def test_the_sources_page_shows_each_source_and_a_member_only_theirs(app):
    admin, _ = _signed_in(app, "alice")
    page = admin.get("/sources")
    assert (
        page.status_code == 200
        and "seller-a" in page.text
        and "seller-b" in page.text
        and "files: no sign-in" in page.text
    )
    member, _ = _signed_in(app, "bob")
    assert "seller-a" not in member.get("/sources").text.replace("seller-a,", "")


def test_in_chromium_the_summary_of_a_day_runs_only_its_own_script(server, browser):
    problems: list = []
    page = _watched_page(browser, problems)
    _sign_in(page, server, "alice")
    response = page.goto(server + "/summary?date=latest")
    assert response.status == 200 and "sha256-" in response.headers["content-security-policy"]
    table = page.locator("input[data-filter]").first.get_attribute(
        "data-filter"
    )  # the overdue table, at least, has rows
    total = page.locator(f"#{table} tbody tr").count()
    page.fill(f"input[data-filter='{table}']", "zzzz-no-such-text")
    assert (
        total > 0 and page.locator(f"#{table} tbody tr:not([hidden])").count() == 0
    )  # the filter script ran
    assert page.evaluate("window.__xss") is None
    assert problems == []
