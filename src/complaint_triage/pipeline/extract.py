"""ParsedEmail -> Entities: run the spaCy pipeline and collect normalised values."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from spacy.language import Language
from spacy.tokens import Doc

from complaint_triage.errors import ExtractionError
from complaint_triage.pipeline.nlp.components import CANDIDATES, DOC_TEXT, IDENTIFIERS
from complaint_triage.pipeline.parse import normalise_text
from complaint_triage.records import Entities, ParsedEmail

# Notices are short; a 10 MB body is a newsletter or an attack, and what matters is near the top.
MAX_TEXT_CHARS = 200_000
# Each language pack's function words carry this label and the pack's language code as their id.
LANGUAGE_LABEL = "LANG"
_LISTS = {
    "ASIN": "asins",
    "TRADEMARK": "trademarks",
    "REGISTRATION_NUMBER": "registration_numbers",
    "PATENT_NUMBER": "patent_numbers",
    "COPYRIGHT_REGISTRATION": "copyright_registrations",
    "COMPLAINT_ID": "complaint_ids",
    "RIGHTS_OWNER_EMAIL": "contact_emails",
    "EMAIL": "emails",
    "MARKETPLACE": "marketplaces",
}


# spaCy's tokenizer strips a token's suffixes one at a time, searching the rest of the token each
# time: 100k punctuation characters without a space (hostile mail) took hours, and 6,000
# underscores (a word character to regular expressions, a suffix to the tokenizer) 4.6 s.
_PUNCTUATION_RUN = re.compile(r"(?:[^\w\s]|_){40}")
# It also copies the rest of the token at every step: 20,000 CJK characters without a space (each
# its own token) took 36 s, 0.85 s with the suffix search bounded (nlp/tokenizer.py). No real
# token is longer than this: base64 or a run of kanji that long is cut, and its pieces tokenised.
MAX_SPAN_CHARS = 1000
_LONG_SPAN = re.compile(r"\S{%d}" % MAX_SPAN_CHARS)
_WRAPPED = re.compile(r"(?<=[^\s.:;!?。:)\]])[ \t]*\n[ \t]*(?=[a-zà-ÿ0-9(])")


def unwrap_lines(text: str) -> str:
    """Join hard-wrapped prose ('...en un plazo de' / '72 horas') so phrases span the break.

    Only a line that ends mid-sentence, followed by one that starts in lower case or with a
    digit, is joined: field lines ('Trademark: X' / 'Complaint ID: Y') stay apart.
    """
    return _WRAPPED.sub(" ", text)


def break_punctuation_runs(text: str) -> str:
    """A space after every 40 punctuation, symbol or underscore characters in a row (no identifier or cue is that long)."""
    return _PUNCTUATION_RUN.sub(r"\g<0> ", text)


def break_long_spans(text: str) -> str:
    """A space after every MAX_SPAN_CHARS characters without one."""
    return _LONG_SPAN.sub(r"\g<0> ", text)


def extraction_text(parsed: ParsedEmail) -> str:
    """What the pipeline reads: subject, own text, then the quoted copy, unwrapped and capped in size."""
    text = parsed.full_text[:MAX_TEXT_CHARS]
    if (
        parsed.subject
    ):  # the body is NFKC already; the subject is kept as the mail shows it and matched normalised
        text = normalise_text(parsed.subject) + text[len(parsed.subject) :]
    return break_long_spans(break_punctuation_runs(unwrap_lines(text)))


def entities_from_doc(doc: Doc, notice_day: date | None) -> Entities:
    """Collect the linker's identifiers and the cue counts from a processed Doc."""
    collected: dict[str, list] = {field: [] for field in _LISTS.values()}
    days: list[int] = []
    for found in doc.user_data.get(IDENTIFIERS, []):
        if found.label == "DEADLINE":
            window = _days(found.value, notice_day)
            if window is not None:
                days.append(window)
        elif found.label in _LISTS:
            values = collected[_LISTS[found.label]]
            if found.value not in values:
                values.append(found.value)
    cues = Counter(
        span.label_ for span in doc.spans[CANDIDATES] if span.label_.startswith(("CLAIM_", "KIND_", "CUE_"))
    )
    classes = sorted(
        {
            int(t.text)
            for s in doc.spans[CANDIDATES]
            if s.label_ == "VAL_NICE_CLASS"
            for t in s
            if t.text.isdigit() and 1 <= int(t.text) <= 45
        }
    )
    collected["emails"] = [e for e in collected["emails"] if e not in collected["contact_emails"]]
    # Every pack pattern is evidence of its language, but "ASIN" reads the same in all of them.
    languages = Counter(span.id_ for span in doc.spans[CANDIDATES] if span.id_ and span.label_ != "CUE_ASIN")
    words = sum(1 for token in doc if token.is_alpha)
    return Entities(
        **collected,
        deadline_days=days,
        nice_classes=classes,
        cues=dict(cues),
        languages=dict(languages),
        words=words,
    )


def _days(value: dict, notice_day: date | None) -> int | None:
    if "days" in value:
        return value["days"]
    if notice_day is None:
        return None
    delta = (date.fromisoformat(value["date"]) - notice_day).days
    return delta if 0 < delta <= 366 else None


def extract(
    parsed: ParsedEmail, nlp: Language, notice_day: date | None = None, text: str | None = None
) -> Entities:
    """Run the pipeline over a parsed email (`text`: its extraction_text, when the caller has it already)."""
    try:
        # The memory zone frees the strings each message adds to the vocabulary (new ASINs, IDs),
        # so a worker's memory stays flat over a year of mail.
        text = text if text is not None else extraction_text(parsed)
        with nlp.memory_zone():
            doc = nlp.make_doc(text)
            # The components read the text often; Doc.text would join every token again (4% of triage).
            doc.user_data[DOC_TEXT] = text
            return entities_from_doc(nlp(doc), notice_day)
    except Exception as exc:  # a pipeline failure on one message must not stop the batch
        raise ExtractionError(f"extraction failed: {type(exc).__name__}: {exc}") from exc
