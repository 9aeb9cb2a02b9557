"""The pure triage pipeline: raw bytes -> parse -> extract -> classify -> advise -> TriageRecord."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

from spacy.language import Language

from complaint_triage.attachments.reading import ReadAttachment
from complaint_triage.errors import TriageError
from complaint_triage.pipeline.advise import (
    attachment_check,
    lookup_links,
    make_checks,
    next_steps,
    response_due,
    review_reasons,
    seller_central_url,
)
from complaint_triage.pipeline.classify import COMPLAINT_KINDS, classify
from complaint_triage.pipeline.domain import DomainTables, load_domain
from complaint_triage.pipeline.extract import extract, extraction_text
from complaint_triage.pipeline.headers import client_headers, header_text
from complaint_triage.pipeline.nlp.build import load_pipeline
from complaint_triage.pipeline.parse import (
    message_identity,
    normalise_text,
    parse_date_header,
    parse_email,
    usable_identity,
)
from complaint_triage.pipeline.review import raise_for_review, review
from complaint_triage.pipeline.screen import ComplaintScreen
from complaint_triage.pipeline.senders import SenderProfile, profile_sender
from complaint_triage.records import Attachment, Entities, ParsedEmail, TriageRecord
from complaint_triage.settings import AttachmentSettings

# Identifier lists the schema fills for complaints only.
_COMPLAINT_ONLY = ("trademarks", "registration_numbers", "patent_numbers", "copyright_registrations")
MAX_REFERENCES = 20  # the newest ones; enough to find the thread a reply belongs to
# The line above each attachment's text: not a quote intro, not a forward separator, so the body's
# quoting and forward rules see the body alone, and the letter sits between the own and the quoted text.
ATTACHMENT_MARKER = "[attachment {index}: {type} text]"
AttachmentReader = Callable[[list[Attachment]], list[ReadAttachment]]


class Triager:
    """Holds the loaded pipeline and tables; triages one message at a time, without I/O of its own.

    Attachments are read by READ_ATTACHMENTS (default: the sandboxed reader, a child process).
    """

    def __init__(
        self,
        nlp: Language,
        tables: DomainTables,
        timezone: str = "UTC",
        read_attachments: AttachmentReader | None = None,
        screen: bool = True,
    ):
        self.nlp, self.tables, self.zone = nlp, tables, ZoneInfo(timezone)
        self.screen = ComplaintScreen(nlp) if screen else None
        self.read_attachments = read_attachments or default_attachment_reader(AttachmentSettings())

    def triage_bytes(
        self, raw: bytes, source: str = "<bytes>", source_name: str | None = None
    ) -> TriageRecord:
        """Triage raw bytes; a failure at any step becomes a record with `error` set."""
        try:
            parsed = parse_email(raw)
            return self.triage_parsed(parsed, source=source, source_name=source_name)
        except TriageError as exc:
            return failed_record(raw, source, source_name, str(exc))
        except Exception as exc:  # a bug must not lose the message or stop the batch
            return failed_record(raw, source, source_name, f"internal error: {type(exc).__name__}: {exc}")

    def notice_day(self, parsed: ParsedEmail) -> date | None:
        """The day the notice was sent, in the configured timezone."""
        moment = parsed.notice_date or parsed.date
        return moment.astimezone(self.zone).date() if moment else None

    def triage_parsed(self, parsed: ParsedEmail, source: str, source_name: str | None = None) -> TriageRecord:
        """Read the attachments, then extract, classify and advise on a parsed message."""
        read = self.read_attachments(parsed.attachments) if parsed.attachments else []
        parsed = with_attachment_text(parsed, read)
        day = self.notice_day(parsed)
        sender = profile_sender(parsed, self.tables.senders)
        text = extraction_text(parsed)
        screened = self.screen is not None and not self.screen.check(text, sender).full
        entities = self.screen.entities(text) if screened else extract(parsed, self.nlp, day, text)
        record = self.record_from(parsed, entities, day, source, source_name, sender, read)
        if screened:
            record.urgency_reasons.append(self.screen.reason)
        return record

    def record_from(
        self,
        parsed: ParsedEmail,
        entities: Entities,
        day: date | None,
        source: str,
        source_name: str | None,
        sender: SenderProfile | None = None,
        read: list[ReadAttachment] = (),
    ) -> TriageRecord:
        """Assemble the record from the extraction of one message."""
        sender = sender or profile_sender(parsed, self.tables.senders)
        verdict = classify(parsed, entities, sender, self.tables)
        attachments = [item.record for item in read]
        codes = review(parsed, entities, sender, verdict)
        checks = make_checks(verdict, parsed, entities, sender, self.tables)
        checks += filter(None, [attachment_check(attachments)])
        # Why a person should read it: the rules could not decide, or an attached letter could not be read.
        unreadable = review_reasons(verdict, parsed, entities, attachments)
        codes = [
            code for code in codes if not (unreadable and code == "attached_letter")
        ]  # the specific one says more
        review_texts = [self.tables.urgency.review[code] for code in codes] + unreadable
        verdict = raise_for_review(verdict, review_texts, self.tables)  # design.md: at least medium
        due = response_due(verdict, day, self.tables)
        steps = next_steps(
            verdict, entities, checks, due, self.tables, seller_central_url(verdict, self.tables)
        )
        if review_texts:  # the reader's first step is to read it
            steps = [f"Read this message yourself: {review_texts[0]}"] + steps
        complaint_only = {
            field: getattr(entities, field) if verdict.kind in COMPLAINT_KINDS else []
            for field in _COMPLAINT_ONLY
        }
        return TriageRecord(
            message_id=parsed.message_id,
            source=source,
            source_name=source_name,
            received_at=parsed.date,
            **{"from": _display_from(parsed)},
            subject=parsed.subject,
            is_complaint=verdict.is_complaint,
            kind=verdict.kind,
            claim_types=verdict.claim_types,
            asins=entities.asins,
            complaint_ids=entities.complaint_ids,
            rights_owner_emails=verdict.rights_owner_emails,
            marketplace=verdict.marketplace,
            urgency=verdict.urgency,
            urgency_reasons=verdict.urgency_reasons,
            deadline_days=verdict.deadline_days,
            response_due=due,
            next_steps=steps,
            checks=checks,
            links=lookup_links(verdict, entities, self.tables),
            needs_review=bool(review_texts),
            review_reasons=review_texts,
            attachments=attachments,
            forwarded_by=parsed.forwarded_by,
            in_reply_to=parsed.in_reply_to
            if parsed.in_reply_to and usable_identity(parsed.in_reply_to)
            else None,
            references=[ref for ref in parsed.references if usable_identity(ref)][-MAX_REFERENCES:],
            **complaint_only,
        )


def with_attachment_text(parsed: ParsedEmail, read: list[ReadAttachment]) -> ParsedEmail:
    """The parsed email with the text of its read attachments, each under its marker line."""
    sections = [
        ATTACHMENT_MARKER.format(index=index, type=item.record.type)
        + "\n"
        + normalise_text(item.text).strip()
        for index, item in enumerate(read, 1)
        if item.text.strip()
    ]
    return parsed.model_copy(update={"attachment_text": "\n\n".join(sections)}) if sections else parsed


@lru_cache(maxsize=4)
def default_attachment_reader(limits: AttachmentSettings) -> AttachmentReader:
    """The sandboxed reader (one child process, started at the first attachment), shared per set of limits."""
    from complaint_triage.attachments.sandbox import SandboxedReader

    return SandboxedReader(limits)


def _display_from(parsed: ParsedEmail) -> str:
    if parsed.from_name and parsed.from_address:
        return f"{parsed.from_name} <{parsed.from_address}>"
    return parsed.from_address or parsed.from_name


def failed_record(raw: bytes, source: str, source_name: str | None, reason: str) -> TriageRecord:
    """A record for a message that could not be triaged, with whatever headers can still be read."""
    headers = _best_effort_headers(raw)
    return TriageRecord(
        message_id=message_identity(raw, headers.get("message-id")),
        source=source,
        source_name=source_name,
        received_at=parse_date_header(headers.get("date")),
        **{"from": headers.get("from", "")},
        subject=headers.get("subject", ""),
        urgency_reasons=["Could not be triaged: read it by hand"],
        error=reason.splitlines()[0] if reason else "unknown error",
    )


def _best_effort_headers(raw: bytes) -> dict[str, str]:
    try:
        message = email.message_from_bytes(raw[:262144], policy=email.policy.compat32)
        found = {
            name: str(message.get(name, "")).strip() for name in ("message-id", "date") if message.get(name)
        }
        shown = client_headers(
            message
        )  # From and Subject as a record shows them: decoded, no lone surrogates
        found.update(
            {
                name: " ".join(header_text(shown, name).split())
                for name in ("from", "subject")
                if message.get(name)
            }
        )
        return found
    except Exception:  # the headers are as broken as the rest
        return {}


def default_triager(
    timezone: str = "UTC",
    model_path: str | None = None,
    domain_dir: str | None = None,
    attachments: AttachmentSettings | None = None,
) -> Triager:
    """A Triager with the shipped pipeline and domain tables, reading attachments under the given limits."""
    return _cached_triager(timezone, model_path, domain_dir, attachments or AttachmentSettings())


@lru_cache(maxsize=1)
def _cached_triager(
    timezone: str, model_path: str | None, domain_dir: str | None, attachments: AttachmentSettings
) -> Triager:
    return Triager(
        load_pipeline(model_path),
        load_domain(domain_dir),
        timezone,
        read_attachments=default_attachment_reader(attachments),
    )
