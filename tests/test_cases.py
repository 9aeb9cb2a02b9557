"""Cases: grouping by complaint ID or ASIN and owner, closing by retraction, reopening, statuses with history, re-processing."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from complaint_triage.errors import CaseError
from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.report.summary import summary_for_day
from complaint_triage.store.case_links import load_cases, set_status
from complaint_triage.testing.mail import NOTICE, build_message

RETRACTION = """Dear Amazon Notice Team,

On behalf of our client we filed complaint {cid} from this address. The complaint was made in
error, and we hereby retract it in full.

Complaint ID: {cid}
ASINs: {asin}

Sincerely,
legal@zentro-brands.com
"""

LETTER = """Dear Seller,

We represent Zentro Brands, owner of the ZENTRO trademark (U.S. Reg. No. 6,123,456). Your listing
for ASIN {asin} sells counterfeit goods bearing our client's mark. We demand that you cease and
desist immediately and confirm in writing within 30 days, failing which we will file a lawsuit.

Holloway & Crane LLP
enforcement@holloway-crane.example
"""


def _id(short: str) -> str:
    """A complaint ID of the length Amazon prints."""
    return "1650000" + short.zfill(4)


def _notice(cid: str, asin: str = "B0ABCDE123") -> str:
    return NOTICE.replace("16509328131", _id(cid)).replace("B0ABCDE123", asin)


def _save(store, triager, *messages: tuple[str, bytes]) -> None:
    ingest(
        [RawMessage(raw=raw, source=name, source_name="seller-a") for name, raw in messages], triager, store
    )


def _cases(store) -> dict:
    return {case.key: case for case in load_cases(store.engine, {r.message_id: r for r in store.records()})}


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, 10, 0, tzinfo=timezone.utc)


def test_a_reminder_joins_the_case_and_a_retraction_closes_it(fresh_store, triager):
    _save(
        fresh_store,
        triager,
        ("n1", build_message(_notice("111"), message_id="<n1@x>", date=_at(2))),
        (
            "n2",
            build_message(
                _notice("111"), subject="Reminder: Notice: Policy Warning", message_id="<n2@x>", date=_at(4)
            ),
        ),
        ("n3", build_message(_notice("222", "B0ZZZZZ999"), message_id="<n3@x>", date=_at(4))),
    )
    cases = _cases(fresh_store)
    assert set(cases) == {f"complaint:{_id('111')}", f"complaint:{_id('222')}"}
    assert cases[f"complaint:{_id('111')}"].message_ids == ["<n1@x>", "<n2@x>"]
    assert cases[f"complaint:{_id('111')}"].status == "new"

    _save(
        fresh_store,
        triager,
        (
            "r",
            build_message(
                RETRACTION.format(cid=_id("111"), asin="B0ABCDE123"),
                subject="Retraction of complaint 111",
                sender="Zentro Legal <legal@zentro-brands.com>",
                message_id="<r@x>",
                date=_at(6),
            ),
        ),
    )
    cases = _cases(fresh_store)
    assert cases[f"complaint:{_id('111')}"].status == "resolved"
    assert "closed by the retraction" in cases[f"complaint:{_id('111')}"].history[-1].note
    assert cases[f"complaint:{_id('222')}"].status == "new"  # a retraction closes only its own case


def test_without_a_complaint_id_one_case_per_asin_and_owner(fresh_store, triager):
    letter = LETTER.format(asin="B0CCCCC111, B0CCCCC222")
    _save(
        fresh_store,
        triager,
        (
            "l",
            build_message(
                letter,
                subject="Trademark infringement",
                sender="Holloway & Crane <enforcement@holloway-crane.example>",
                message_id="<l@x>",
            ),
        ),
    )
    keys = set(_cases(fresh_store))
    assert keys == {
        "asin:B0CCCCC111:enforcement@holloway-crane.example",
        "asin:B0CCCCC222:enforcement@holloway-crane.example",
    }


def test_a_reply_without_identifiers_joins_its_thread(fresh_store, triager):
    _save(fresh_store, triager, ("n", build_message(_notice("333"), message_id="<n@x>", date=_at(2))))
    reply = build_message(
        "Thanks, we have removed the listing and sent our invoices.",
        subject="Re: Notice: Policy Warning",
        sender="Ops <ops@shop.example>",
        message_id="<reply@x>",
        date=_at(3),
        headers={"In-Reply-To": "<n@x>", "References": "<n@x>"},
    )
    _save(fresh_store, triager, ("reply", reply))
    assert _cases(fresh_store)[f"complaint:{_id('333')}"].message_ids == ["<n@x>", "<reply@x>"]


def test_status_history_and_reopening_by_newer_mail_only(fresh_store, triager):
    _save(fresh_store, triager, ("n", build_message(_notice("444"), message_id="<n@x>", date=_at(2))))
    set_status(fresh_store.engine, _id("444"), "responded", "appeal sent with invoices")
    set_status(fresh_store.engine, f"complaint:{_id('444')}", "resolved", "listing back")
    case = _cases(fresh_store)[f"complaint:{_id('444')}"]
    assert [(e.status, e.actor) for e in case.history] == [
        ("new", "mail"),
        ("responded", "cli"),
        ("resolved", "cli"),
    ]
    assert case.history[1].note == "appeal sent with invoices"

    _save(
        fresh_store,
        triager,
        (
            "n-again",
            build_message(
                _notice("444"),
                subject="Second notice",
                message_id="<n2@x>",
                date=datetime(2020, 1, 1, tzinfo=timezone.utc),
            ),
        ),
    )
    assert (
        _cases(fresh_store)[f"complaint:{_id('444')}"].status == "resolved"
    )  # older than the closing: a backfill does not reopen

    _save(
        fresh_store,
        triager,
        (
            "n-new",
            build_message(
                _notice("444"),
                subject="Third notice",
                message_id="<n3@x>",
                date=datetime.now(timezone.utc) + timedelta(minutes=5),
            ),
        ),
    )
    case = _cases(fresh_store)[f"complaint:{_id('444')}"]
    assert case.status == "new" and "reopened" in case.history[-1].note


def test_reprocessing_adds_no_history(fresh_store, triager):
    raw = build_message(_notice("555"), message_id="<n@x>")
    for _ in range(3):
        _save(fresh_store, triager, ("n", raw))
    case = _cases(fresh_store)[f"complaint:{_id('555')}"]
    assert len(case.history) == 1 and case.message_ids == ["<n@x>"]


def test_unknown_case_and_status_are_clear_errors(fresh_store, triager):
    _save(fresh_store, triager, ("n", build_message(_notice("666"), message_id="<n@x>")))
    with pytest.raises(CaseError, match="no case"):
        set_status(fresh_store.engine, _id("999"), "responded")
    with pytest.raises(CaseError, match="unknown status"):
        set_status(fresh_store.engine, _id("666"), "done")


def test_one_notice_with_several_complaint_ids_is_answered_once(fresh_store, triager):
    body = _notice("777").replace(
        f"Complaint ID: {_id('777')}", f"Complaint ID: {_id('777')}\nComplaint ID: {_id('778')}"
    )
    _save(fresh_store, triager, ("n", build_message(body, message_id="<n@x>")))
    assert set(_cases(fresh_store)) == {f"complaint:{_id('777')}", f"complaint:{_id('778')}"}
    changed = set_status(fresh_store.engine, _id("777"), "acknowledged")
    assert changed == [f"complaint:{_id('777')}", f"complaint:{_id('778')}"]
    summary = summary_for_day(fresh_store, date(2026, 3, 3), "UTC")
    assert [(c.key, c.also) for c in summary.urgent_cases] == [
        (f"complaint:{_id('777')}", [f"complaint:{_id('778')}"])
    ]


def test_summary_escalates_repeat_complainants_asins_and_overdue_cases(fresh_store, triager):
    notices = [
        (
            f"n{i}",
            build_message(
                _notice(f"90{i}", "B0REPEAT01" if i < 2 else f"B0OTHER00{i}"),
                message_id=f"<n{i}@x>",
                date=_at(1 + i),
            ),
        )
        for i in range(3)
    ]
    _save(fresh_store, triager, *notices)
    set_status(fresh_store.engine, _id("902"), "responded")
    summary = summary_for_day(fresh_store, date(2026, 3, 20), "UTC")
    found = {(e.kind, e.subject): e.count for e in summary.escalations}
    assert found[("repeat_complainant", "legal@zentro-brands.com")] == 3
    assert found[("asin_under_attack", "B0REPEAT01")] == 2
    assert ("asin_under_attack", "B0OTHER002") not in found
    overdue = {e.subject for e in summary.escalations if e.kind == "overdue_case"}
    assert overdue == {
        f"complaint:{_id('900')}",
        f"complaint:{_id('901')}",
    }  # the responded one is not overdue
    assert [c.key for c in summary.overdue] == [f"complaint:{_id('900')}", f"complaint:{_id('901')}"]
    assert {
        e.kind for e in summary_for_day(fresh_store, date(2026, 6, 1), "UTC").repeat_escalations
    } == set()  # outside the 30-day window


def test_summary_has_a_section_per_source_and_a_trend(fresh_store, triager):
    ingest(
        [
            RawMessage(
                raw=build_message(_notice("801"), message_id="<a@x>"), source="a", source_name="seller-a"
            ),
            RawMessage(
                raw=build_message(_notice("802"), message_id="<b@x>"), source="b", source_name="seller-b"
            ),
            RawMessage(
                raw=build_message(_notice("803"), message_id="<c@x>", date=_at(1)),
                source="c",
                source_name="seller-b",
            ),
        ],
        triager,
        fresh_store,
    )
    summary = summary_for_day(fresh_store, date(2026, 3, 3), "UTC")
    assert [s.source for s in summary.sections] == ["seller-a", "seller-b"]
    assert [[c.key for c in s.urgent_cases] for s in summary.sections] == [
        [f"complaint:{_id('801')}"],
        [f"complaint:{_id('802')}"],
    ]
    assert summary.trend["kind"]["ip_complaint"].day == 2
    assert summary.trend["kind"]["ip_complaint"].previous_7_days == 1
    assert summary.sections[1].trend["kind"]["ip_complaint"].previous_7_days == 1


def test_case_command_sets_status_and_prints_history(tmp_path, triager):
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    mail = tmp_path / "n.eml"
    mail.write_bytes(build_message(_notice("2345"), message_id="<n@x>"))
    cli = [sys.executable, "-m", "complaint_triage.cli"]
    subprocess.run([*cli, "process", str(mail), "--config", str(config)], check=True, capture_output=True)
    done = subprocess.run(
        [*cli, "case", _id("2345"), "--status", "responded", "--note", "POA sent", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "responded" in done.stdout and "POA sent" in done.stdout
    missing = subprocess.run(
        [*cli, "case", _id("999"), "--config", str(config)], capture_output=True, text=True
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no case" in missing.stderr
    listed = subprocess.run(
        [*cli, "cases", "--status", "all", "--format", "json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"status": "responded"' in listed.stdout
