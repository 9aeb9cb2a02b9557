"""The pure triage pipeline: raw bytes -> parse -> extract -> classify -> advise -> TriageRecord."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

from spacy.language import Language

from complaint_triage.pipeline.advise import lookup_links, make_checks, next_steps, response_due, seller_central_url
from complaint_triage.pipeline.classify import COMPLAINT_KINDS, classify
from complaint_triage.pipeline.domain import DomainTables, load_domain
from complaint_triage.errors import TriageError
from complaint_triage.pipeline.extract import extract
from complaint_triage.records import Entities, ParsedEmail, TriageRecord
from complaint_triage.pipeline.nlp.build import load_pipeline
from complaint_triage.pipeline.review import raise_for_review, review
from complaint_triage.pipeline.parse import message_identity, parse_date_header, parse_email, usable_identity
from complaint_triage.pipeline.senders import profile_sender

# Identifier lists the schema fills for complaints only.
_COMPLAINT_ONLY = ("trademarks", "registration_numbers", "patent_numbers", "copyright_registrations")
MAX_REFERENCES = 20  # the newest ones; enough to find the thread a reply belongs to


class Triager:
    """Holds the loaded pipeline and tables; triages one message at a time, without I/O."""

    def __init__(self, nlp: Language, tables: DomainTables, timezone: str = "UTC"):
        self.nlp, self.tables, self.zone = nlp, tables, ZoneInfo(timezone)

    def triage_bytes(self, raw: bytes, source: str = "<bytes>", source_name: str | None = None) -> TriageRecord:
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
        """Extract, classify and advise on a parsed message."""
        day = self.notice_day(parsed)
        entities = extract(parsed, self.nlp, day)
        return self.record_from(parsed, entities, day, source, source_name)

    def record_from(self, parsed: ParsedEmail, entities: Entities, day: date | None, source: str, source_name: str | None) -> TriageRecord:
        """Assemble the record from the extraction of one message."""
        sender = profile_sender(parsed, self.tables.senders)
        verdict = classify(parsed, entities, sender, self.tables)
        reasons = review(parsed, entities, sender, verdict)
        verdict = raise_for_review(verdict, reasons, self.tables)
        checks = make_checks(verdict, parsed, entities, sender, self.tables)
        due = response_due(verdict, day, self.tables)
        steps = next_steps(verdict, entities, checks, due, self.tables, seller_central_url(verdict, self.tables))
        review_texts = [self.tables.urgency.review[code] for code in reasons]
        if review_texts:  # the reader's first step is to read it
            steps = [f"Read this message yourself: {review_texts[0]}"] + steps
        complaint_only = {field: getattr(entities, field) if verdict.kind in COMPLAINT_KINDS else [] for field in _COMPLAINT_ONLY}
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
            needs_review=bool(reasons),
            review_reasons=review_texts,
            forwarded_by=parsed.forwarded_by,
            in_reply_to=parsed.in_reply_to if parsed.in_reply_to and usable_identity(parsed.in_reply_to) else None,
            references=[ref for ref in parsed.references if usable_identity(ref)][-MAX_REFERENCES:],
            **complaint_only,
        )


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
        return {name: str(message.get(name, "")).strip() for name in ("message-id", "date", "from", "subject") if message.get(name)}
    except Exception:  # the headers are as broken as the rest
        return {}


@lru_cache(maxsize=1)
def default_triager(timezone: str = "UTC", model_path: str | None = None, domain_dir: str | None = None) -> Triager:
    """A Triager with the shipped pipeline and domain tables."""
    return Triager(load_pipeline(model_path), load_domain(domain_dir), timezone)
