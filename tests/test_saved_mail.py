"""Every container of saved mail is read: mbox with a byte-order mark, Maildir++ folders, any file named directly."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from complaint_triage.errors import SourceError
from complaint_triage.pipeline.parse import has_mail_headers
from complaint_triage.service import SavedMailSource
from complaint_triage.settings import SourceSettings
from complaint_triage.sources.files import NO_MAIL_HEADERS, DirectorySource, MboxSource, sources_for_path
from complaint_triage.testing.mail import NOTICE, build_message

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
BOM_MBOX = REGRESSIONS / "mbox-with-utf8-bom.mbox"


def _subjects(source) -> list[str]:
    return [
        line.split(b": ", 1)[1].decode()
        for message in source.fetch_messages()
        for line in message.raw.splitlines()
        if line.startswith(b"Subject: ")
    ]


def test_an_mbox_starting_with_a_byte_order_mark_gives_every_message():
    source = sources_for_path(BOM_MBOX)
    assert isinstance(source, MboxSource)
    messages = list(source.fetch_messages())
    assert [m.source.rsplit("#", 1)[1] for m in messages] == ["1", "2"]
    assert _subjects(source) == ["First of two", "Second of two"]
    assert messages[0].raw.startswith(b"From: Orders") and not messages[0].raw.endswith(b"\n\n")


def test_mbox_reading_matches_the_standard_library(tmp_path):
    path = tmp_path / "saved.mbox"
    box = mailbox.mbox(path)
    for n in range(3):
        box.add(
            build_message(f"body {n}\n\nFrom the desk: a line that mboxo escapes\n", message_id=f"<m{n}@x>")
        )
    box.close()
    expected = [mailbox.mbox(path).get_bytes(key) for key in mailbox.mbox(path).iterkeys()]
    assert [m.raw for m in MboxSource(path).fetch_messages()] == expected


def test_maildir_plus_plus_folders_are_read(tmp_path):
    inbox = mailbox.Maildir(tmp_path / "Maildir")
    inbox.add(build_message(NOTICE, subject="in the inbox", message_id="<i@x>"))
    inbox.add_folder("Lists").add(build_message(NOTICE, subject="in a folder", message_id="<f@x>"))
    inbox.add_folder("Lists.Work").add(
        build_message(NOTICE, subject="in a nested folder", message_id="<n@x>")
    )
    assert _subjects(sources_for_path(tmp_path / "Maildir")) == [
        "in the inbox",
        "in a folder",
        "in a nested folder",
    ]


def test_a_directory_reads_mail_of_any_name_and_counts_what_it_skips(tmp_path):
    (tmp_path / "a.eml").write_bytes(build_message(NOTICE, subject="named eml", message_id="<a@x>"))
    (tmp_path / "mail_test_7").write_bytes(build_message(NOTICE, subject="no suffix", message_id="<b@x>"))
    (tmp_path / "m0001.txt").write_bytes(build_message(NOTICE, subject="txt suffix", message_id="<c@x>"))
    (tmp_path / "saved.mbox.txt").write_bytes(BOM_MBOX.read_bytes())
    (tmp_path / "expected.json").write_text('{"subject": "not mail"}')
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    source = DirectorySource(tmp_path)
    assert sorted(_subjects(source)) == [
        "First of two",
        "Second of two",
        "named eml",
        "no suffix",
        "txt suffix",
    ]
    assert source.skipped == {NO_MAIL_HEADERS: 2}


def test_a_file_named_directly_is_read_whatever_its_suffix(tmp_path):
    path = tmp_path / "notice.msg.txt"
    path.write_bytes(build_message(NOTICE, subject="pointed at", message_id="<p@x>"))
    assert _subjects(sources_for_path(path)) == ["pointed at"]


def test_a_declared_type_is_honoured_not_guessed(tmp_path):
    single = tmp_path / "starts-with-from.eml"
    single.write_bytes(
        b"From someone Mon Nov  2 10:00:00 2026\n"
        + build_message(NOTICE, subject="one message", message_id="<s@x>")
    )
    declared_eml = SavedMailSource(SourceSettings(name="saved", type="eml", path=str(single)))
    [message] = list(declared_eml.fetch_messages())
    assert message.raw.startswith(
        b"From someone"
    )  # read as the one file it was declared to be, not as an mbox
    declared_mbox = SavedMailSource(SourceSettings(name="saved", type="mbox", path=str(single)))
    [message] = list(declared_mbox.fetch_messages())
    assert not message.raw.startswith(b"From someone") and _subjects(declared_mbox) == ["one message"]


def test_a_declared_type_that_does_not_fit_the_path_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="declared mbox, but it is a directory"):
        sources_for_path(tmp_path, declared_type="mbox")
    with pytest.raises(SourceError, match="declared maildir, but it has no cur/ and new/"):
        sources_for_path(tmp_path, declared_type="maildir")


def test_a_file_holding_mail_further_in_is_not_read_as_mail(tmp_path):
    """A SQLite database or its write-ahead log beside the mail holds whole messages after binary pages."""
    (tmp_path / "a.eml").write_bytes(build_message(NOTICE, message_id="<a@x>"))
    page = (
        b"SQLite format 3\x00"
        + bytes(range(1, 9)) * 8
        + b"\r"
        + build_message(NOTICE, message_id="<in-a-page@x>")
    )
    (tmp_path / "store.db-wal").write_bytes(page)
    assert has_mail_headers(page)  # the loose test the directory used to apply
    source = DirectorySource(tmp_path)
    assert [m.source for m in source.fetch_messages()] == [str(tmp_path / "a.eml")]
    assert source.skipped == {NO_MAIL_HEADERS: 1}
