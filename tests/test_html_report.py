"""The HTML summary in a real headless Chromium: renders, shows the critical section, runs no message text."""

from __future__ import annotations

import re
from datetime import date

import pytest

from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.report import render, summary_for_day
from complaint_triage.testing.mail import NOTICE, build_message
from tests.conftest import CHROMIUM, HOSTILE, ROOT, fixture_files, require_module, require_service

ARTIFACTS = ROOT / "test-artifacts"
DAY = date(2026, 3, 3)


def _on_day(raw: bytes) -> bytes:
    """The same message, dated on the test day (so one day is full of fixtures)."""
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw[:20000] else raw.partition(b"\n\n")
    head = re.sub(rb"(?mi)^Date:.*(\r?\n[ \t].*)*$", b"Date: Tue, 3 Mar 2026 09:00:00 +0000", head)
    return head + sep + body


@pytest.fixture(scope="module")
def summary_html(tmp_path_factory):
    from complaint_triage.pipeline.triage import default_triager
    from complaint_triage.store import Store

    store = Store(f"sqlite:///{tmp_path_factory.mktemp('html') / 'store.db'}")
    messages = [
        RawMessage(
            raw=_on_day(path.read_bytes()), source=str(path), source_name="seller-a" if n % 2 else "seller-b"
        )
        for n, path in enumerate(fixture_files())
    ]
    messages.append(
        RawMessage(
            raw=build_message(
                NOTICE.replace("removed some", "removed all"), subject=HOSTILE, message_id="<xss@x>"
            ),
            source="xss",
            source_name="seller-a",
        )
    )
    ingest(messages, default_triager("UTC"), store)
    summary = summary_for_day(store, DAY, "UTC")
    return render(summary, "html")


def test_message_text_is_escaped_in_the_markup(summary_html):
    assert HOSTILE not in summary_html
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in summary_html


def test_renders_in_chromium_without_errors_or_injected_script(summary_html, tmp_path):
    require_service(CHROMIUM.exists(), "Chromium (/usr/bin/chromium)")
    playwright_api = require_module("playwright.sync_api", "Playwright for Python")
    page_file = tmp_path / "summary.html"
    page_file.write_text(summary_html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors, dialogs = [], []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        assert page.locator("#critical article").count() >= 5
        assert page.locator("#critical").get_by_text(HOSTILE, exact=False).count() == 1
        assert page.evaluate("window.__xss") is None
        assert page.locator("section.source").count() == 2  # a section per seller account
        assert (
            page.locator("article.card").count() == page.locator("#critical article").count()
        )  # each case's card once, not again per account
        assert (
            page.locator("section.source li").count() >= page.locator("#critical article").count()
        )  # the accounts list their cases by key
        cards = page.locator("#critical article")
        assert all(
            "Account: seller-" in text for text in cards.all_inner_texts()
        )  # the account on every card
        assert page.locator("#critical a[href^='https://']").count() > 0  # lookup links are clickable
        headings = page.locator("body > section > h2").all_inner_texts()
        assert headings.index("Overdue") < headings.index("Critical and high cases") and headings.index(
            "Due in the next 3 days"
        ) < headings.index("Critical and high cases")
        assert re.fullmatch(
            r"overdue \d+ days?|due today|due in \d+ days?",
            page.locator("td[data-label=Due] strong").first.inner_text(),
        )
        page.screenshot(path=str(ARTIFACTS / "summary-desktop.png"), full_page=False)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "summary-phone.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no table wider than a phone
        page.fill("input[data-filter='others-table']", "newsletter")
        browser.close()
    assert errors == [] and dialogs == []
