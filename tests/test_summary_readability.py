"""What the summary's readers get: a spreadsheet-ready CSV of the open cases, and `cases`/`case` showing what the summary shows."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, date, datetime

from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.report import render, summary_for_day
from complaint_triage.testing.mail import NOTICE, build_message
from tests.conftest import ROOT

LONG_OWNER = "legal-department-of-a-very-long-brand-name@zentro-brands-international-holdings.example"


def _notices(store, triager) -> None:
    first = NOTICE.replace("removed some", "removed all").replace("16509328131", "17100000001")
    second = (
        NOTICE.replace("16509328131", "")
        .replace("Complaint ID: ", "")
        .replace("legal@zentro-brands.com", LONG_OWNER)
    )
    raws = [
        build_message(first, message_id="<r1@x>", date=datetime(2026, 3, 3, 9, tzinfo=UTC)),
        build_message(second, message_id="<r2@x>", date=datetime(2026, 3, 3, 10, tzinfo=UTC)),
    ]
    ingest(
        [RawMessage(raw=raw, source=f"m{n}", source_name="seller-a") for n, raw in enumerate(raws)],
        triager,
        store,
    )


def test_the_csv_has_a_bom_and_one_row_per_open_case(fresh_store, triager):
    _notices(fresh_store, triager)
    summary = summary_for_day(fresh_store, date(2026, 3, 3), "UTC")
    text = render(summary, "csv")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["key", "account", "urgency", "status", "kind", "due", "next_step", "link"]
    assert (
        sorted(row[0] for row in rows[1:]) == sorted(case.key for case in summary.open_cases)
        and len(rows) == 3
    )
    assert all(row[1] == "seller-a" and row[6] and row[7].startswith("https://") for row in rows[1:])


def test_cases_prints_one_json_document_and_the_text_never_cuts_a_key(fresh_store, triager, tmp_path):
    _notices(fresh_store, triager)
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "{fresh_store.url}"\n', encoding="utf-8")
    run = [sys.executable, "-m", "complaint_triage.cli"]
    listed = subprocess.run(
        [*run, "cases", "--format", "json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    cases = json.loads(listed.stdout)
    assert isinstance(cases, list) and len(cases) == 2
    long_key = next(case["key"] for case in cases if LONG_OWNER in case["key"])
    table = subprocess.run(
        [*run, "cases", "--config", str(config)], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert long_key in "".join(
        line.split("│")[1].strip() for line in table.splitlines() if line.count("│") > 2
    )  # folded over lines, whole
    shown = subprocess.run(
        [*run, "case", "17100000001", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert (
        "Next steps:" in shown
        and "Links:" in shown
        and "https://www.amazon.com/dp/B0ABCDE123" in shown
        and "Account: seller-a" in shown
    )
