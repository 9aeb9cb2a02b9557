"""Extraction: identifiers found, normalised, and look-alike numbers kept out."""

from __future__ import annotations

from complaint_triage.pipeline.parse import parse_email
from complaint_triage.testing.mail import NOTICE, build_message


def _record(triager, body, **kwargs):
    return triager.triage_bytes(build_message(body, **kwargs)).to_json_dict()


def test_standard_notice_fields(triager):
    record = _record(triager, NOTICE)
    assert record["asins"] == ["B0ABCDE123"]
    assert record["trademarks"] == ["ZENTRO"]
    assert record["registration_numbers"] == ["6123456"]
    assert record["complaint_ids"] == ["16509328131"]
    assert record["rights_owner_emails"] == ["legal@zentro-brands.com"]


def test_order_ids_phones_zips_and_dates_never_become_identifiers(triager):
    body = NOTICE + (
        "\nThe rights owner made a test buy, order 112-3456789-1234567 (digital order D01-7654321-1234567).\n"
        "Call them at +1 206-555-0147 or 2065550147. Address: 500 Main St, Austin, TX 78701; Arlington, VA 22202.\n"
        "Date: 2026-03-01. Amazon Pay S01-1234567-7654321. Tracking TBA123456789000.\n"
    )
    record = _record(triager, body)
    identifiers = set().union(
        *(
            record[f]
            for f in (
                "asins",
                "registration_numbers",
                "patent_numbers",
                "copyright_registrations",
                "complaint_ids",
            )
        )
    )
    assert identifiers == {"B0ABCDE123", "6123456", "16509328131"}


def test_patent_and_copyright_numbers_normalised(triager):
    body = (
        "We removed your listing. The rights owner believes the items infringe their patent: U.S. Patent No. 11,234,567 B2,\n"
        "and design patent US D987,654 as well as EP 3 456 789 B1 and publication US 2023/0123456 A1.\n"
        "Copyright registration VA 1-234-567 and VAu 598-764 and TX0009876543.\n"
        "These are the rights owner's contact details: ip@owner.example\nASIN: B0ABCDE123\nComplaint ID: 16509328131\n"
    )
    record = _record(triager, body)
    assert record["patent_numbers"] == ["US11234567", "USD987654", "EP3456789", "US20230123456"]
    assert record["copyright_registrations"] == ["VA0001234567", "VAU000598764", "TX0009876543"]
    assert "design" in record["claim_types"] and "patent" in record["claim_types"]


def test_registration_formats(triager):
    body = (
        "We removed some of your listings after a report from a rights owner (trademark infringement).\n"
        "Registration numbers: serial no. 97/123,456; UK00003123456; EUTM No. 018123456; DPMA 30 2019 123 456.7;\n"
        "Canada TMA1187654; 商標登録第1234567号\nASIN: B0ABCDE123\n"
    )
    record = _record(triager, body)
    assert record["registration_numbers"] == [
        "97123456",
        "UK00003123456",
        "018123456",
        "302019123456",
        "TMA1187654",
        "1234567",
    ]


def test_full_width_japanese_notice(triager):
    body = "出品者様\n権利者から商標権侵害の申し立てを受けたため、出品を削除しました。\nＡＳＩＮ：Ｂ０ＣＸ１２３４５Ｋ\n申立ＩＤ：１６５０９３２８１３１\n"
    record = _record(triager, body, sender="Amazon.co.jp <seller-notification@amazon.co.jp>")
    assert record["asins"] == ["B0CX12345K"]
    assert record["complaint_ids"] == ["16509328131"]
    assert record["marketplace"] == "amazon.co.jp"


def test_several_asins_in_a_table_listed_once_each_in_order(triager):
    html = (
        "<p>We removed some of your listings because we received a report from a rights owner.</p><table>"
        "<tr><th>ASIN</th><th>Title</th><th>Complaint ID</th></tr>"
        "<tr><td>B0AAAAA111</td><td>Blue mug</td><td>16500000001</td></tr>"
        "<tr><td>B0BBBBB222</td><td>Red mug</td><td>16500000002</td></tr>"
        "<tr><td>B0AAAAA111</td><td>Blue mug</td><td>16500000001</td></tr></table>"
        "<p>Infringement type: Copyright</p>"
    )
    record = triager.triage_bytes(build_message(html=html)).to_json_dict()
    assert record["asins"] == ["B0AAAAA111", "B0BBBBB222"]
    assert record["complaint_ids"] == ["16500000001", "16500000002"]


def test_quoted_copy_of_a_notice_counts_once(triager):
    quoted = "\n".join("> " + line for line in NOTICE.splitlines())
    body = (
        "Dear team, we are the authorised distributor; invoices attached.\n\nOn Mon, Mar 2, 2026 Amazon <notice-dispute@amazon.com> wrote:\n"
        + quoted
        + "\n"
        + quoted
    )
    record = _record(
        triager,
        body,
        subject="Re: Notice: Policy Warning",
        sender="Kim <kim@shop.example>",
        to="notice-dispute@amazon.com",
    )
    assert record["kind"] == "ip_complaint"
    assert record["complaint_ids"] == ["16509328131"] and record["asins"] == ["B0ABCDE123"]
    assert record["rights_owner_emails"] == ["legal@zentro-brands.com"]


def test_trademark_marked_with_registered_sign(triager):
    body = "We removed your listing after a report from a rights owner.\nYour listing uses the registered trademark KALORA® without permission.\nASIN: B0ABCDE123\n"
    assert _record(triager, body)["trademarks"] == ["KALORA"]


def test_only_a_number_gives_no_trademark_name(triager):
    body = "We removed your listing after a report from a rights owner alleging trademark infringement.\nTrademark number: 6,123,456\nASIN: B0ABCDE123\n"
    record = _record(triager, body)
    assert record["trademarks"] == [] and record["registration_numbers"] == ["6123456"]


def test_lowercase_asin_is_upper_cased(triager):
    assert _record(
        triager,
        "We removed your listing after a report from a rights owner (trademark infringement). asin: b0abcde123",
    )["asins"] == ["B0ABCDE123"]


def test_parse_keeps_text_for_extraction():
    assert "16509328131" in parse_email(build_message(NOTICE)).full_text


def test_fast_shape_scans_find_exactly_what_the_patterns_find():
    """The value finder's hand-checked look-behind gives the same matches as the whole pattern."""
    import json

    from complaint_triage.pipeline.extract import extraction_text
    from complaint_triage.pipeline.nlp.shapes import Shape
    from complaint_triage.pipeline.parse import parse_email
    from complaint_triage.resources import config_dir
    from tests.conftest import fixture_files

    rows = [
        json.loads(line)
        for line in (config_dir() / "patterns" / "values.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    shapes = [Shape(row["label"], row["regex"]) for row in rows]
    assert sum(shape.body is not None for shape in shapes) >= 10  # most shapes take the fast path
    texts = [extraction_text(parse_email(path.read_bytes())) for path in fixture_files()]
    texts += [
        "AB0B0CDEFGHIJ B0ABCDEFGH",
        "xU.S. 1,234,567 B1 U.S. 11,234,567",
        "#1234567 ##12345678 a-1234567 1234567.",
        "\nB0ABCDEFGH\n",
        "UK00003123456UK00003123456 UK00003123456",
        "TMA1187654,TMA 1,187,654",
        "D987,654 xD987,654 US D987,654",
    ]
    for shape in shapes:
        for text in texts:
            assert shape.spans(text) == [m.span() for m in shape.pattern.finditer(text)], (
                shape.label,
                text[:60],
            )
            first = shape.pattern.search(text)
            assert shape.search(text) == (first.group() if first else None)


def test_mark_after_a_colon_cue_and_a_table_s_spaces(triager):
    # 'Varumärke:' is one cue with its colon (no bare-word cue in the Swedish pack)
    body = NOTICE.replace(
        "following trademark: ZENTRO", "following trademark below.\nVarumärke:          ZENTRO      "
    )
    assert _record(triager, body)["trademarks"] == ["ZENTRO"]


def test_a_number_s_label_is_not_read_as_a_mark(triager):
    body = NOTICE.replace("Trademark number: 6,123,456", "Trademark registration number: TMA1,145,862 (CIPO)")
    assert _record(triager, body)["trademarks"] == ["ZENTRO"]


def test_japanese_mark_kept_whole_and_cut_at_a_full_width_bracket(triager):
    sender = "Amazon.co.jp <seller-notification@amazon.co.jp>"
    body = "出品者様\n権利者から商標権侵害の申し立てを受けたため、出品を削除しました。\n商標:ソラミズ\nASIN:B0CX12345K\n"
    assert _record(triager, body, sender=sender)["trademarks"] == ["ソラミズ"]
    body = body.replace("商標:ソラミズ", "商標:MIZUKAZE(登録第6543210号)")
    assert _record(triager, body, sender=sender)["trademarks"] == ["MIZUKAZE"]
