"""Pipeline components that turn the span ruler's candidates and cues into identifiers.

Registered with spaCy on import, so `spacy.load(models/...)` finds them; `extract` imports this
module before loading the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy
from spacy.language import Language
from spacy.tokens import Doc, Span

from complaint_triage.pipeline import normalise
from complaint_triage.pipeline.nlp.deadlines import deadline_value
from complaint_triage.pipeline.nlp.identifier import Identifier
from complaint_triage.pipeline.nlp.shapes import Shape
from complaint_triage.pipeline.nlp.trademarks import find_trademarks

CANDIDATES = "candidates"
IDENTIFIERS = "identifiers"
DOC_TEXT = "text"  # Doc.user_data key of the Doc's text, computed (or given) once
FAMILY_LABELS = {
    "asin": "ASIN",
    "complaint_id": "COMPLAINT_ID",
    "registration": "REGISTRATION_NUMBER",
    "patent": "PATENT_NUMBER",
    "copyright": "COPYRIGHT_REGISTRATION",
}
FAMILY_OF_LABEL = {label: family for family, label in FAMILY_LABELS.items()}


@dataclass
class Anchor:
    """A cue or a linked value that the next value may attach to."""

    family: str
    end: int
    chained: bool


def words_between(doc: Doc, start: int, end: int, cap: int | None = None) -> int:
    """How many word tokens (not punctuation or white space) lie in doc[start:end], counted up to CAP + 1 at most."""
    # Callers only compare with a limit: counting past it walked every token between distant spans.
    count = 0
    for index in range(start, end):
        token = doc[index]
        if not (token.is_punct or token.is_space):
            count += 1
            if cap is not None and count > cap:
                break
    return count


def doc_text(doc: Doc) -> str:
    """The Doc's text, computed once (Doc.text joins every token on each access)."""
    if DOC_TEXT not in doc.user_data:
        doc.user_data[DOC_TEXT] = doc.text
    return doc.user_data[DOC_TEXT]


def lines_between(doc: Doc, start: int, end: int) -> int:
    """How many line breaks lie between the token before `start` and the token at `end`."""
    if end <= 0 or start >= len(doc):
        return 0
    begin = doc[start - 1].idx + len(doc[start - 1]) if start > 0 else 0
    text = doc_text(doc)
    stop = doc[end].idx if end < len(doc) else len(text)
    return text.count("\n", begin, stop)


class IdentifierLinker:
    """Keeps the values whose shape or nearby cue says what they are, normalised."""

    def __init__(self, linking: dict):
        self.linking = linking
        self.values: dict[str, dict] = linking["values"]
        self.cues: dict[str, str] = linking["cues"]
        self.priority = {label: index for index, label in enumerate(self.values)}

    def __call__(self, doc: Doc) -> Doc:
        spans = doc.spans.get(CANDIDATES, [])
        cues = sorted((s for s in spans if s.label_ in self.cues), key=lambda s: (s.end, s.start))
        vetoes = [s for s in spans if s.label_ == "CUE_VETO"]
        found = self._link(doc, cues, vetoes, self._value_groups(spans))
        found += self._emails(doc, spans)
        found += self._marketplaces(spans)
        found += self._deadlines(doc, spans)
        found += find_trademarks(doc, spans)
        found.sort(key=lambda item: item.start)
        doc.user_data[IDENTIFIERS] = found
        doc.spans[IDENTIFIERS] = [Span(doc, item.start, item.end, label=item.label) for item in found]
        return doc

    def _value_groups(self, spans) -> list[list[Span]]:
        """Value candidates grouped by position: longest first, then by priority; no overlaps."""
        by_place: dict[tuple[int, int], list[Span]] = {}
        for span in spans:
            if span.label_ in self.values:
                by_place.setdefault((span.start, span.end), []).append(span)
        taken: set[int] = set()
        groups = []
        for (start, end), group in sorted(
            by_place.items(), key=lambda item: (item[0][0] - item[0][1], item[0][0])
        ):
            if taken.intersection(range(start, end)):
                continue
            taken.update(range(start, end))
            groups.append(sorted(group, key=lambda s: self.priority[s.label_]))
        return sorted(groups, key=lambda g: g[0].start)

    def _link(
        self, doc: Doc, cues: list[Span], vetoes: list[Span], groups: list[list[Span]]
    ) -> list[Identifier]:
        found: list[Identifier] = []
        anchors: list[Anchor] = []
        cue_index = 0
        for group in groups:
            while cue_index < len(cues) and cues[cue_index].end <= group[0].start:
                anchors.append(Anchor(self.cues[cues[cue_index].label_], cues[cue_index].end, False))
                cue_index += 1
            if self._vetoed(doc, group[0], vetoes):
                continue
            linked = self._link_group(doc, group, anchors)
            if linked is not None:
                found.append(linked)
                anchors.append(Anchor(FAMILY_OF_LABEL[linked.label], linked.end, True))
        return found

    def _vetoed(self, doc: Doc, value: Span, vetoes: list[Span]) -> bool:
        limit = self.linking["veto_tokens"]
        # The line test first: a text search, where counting the words between is a walk over every token
        # (a 1 MB list mail with hundreds of vetoes and values took 6 s).
        return any(
            v.end <= value.start
            and lines_between(doc, v.end, value.start) == 0
            and words_between(doc, v.end, value.start, limit) <= limit
            for v in vetoes
        )

    def _link_group(self, doc: Doc, group: list[Span], anchors: list[Anchor]) -> Identifier | None:
        for candidate in group:
            rule = self.values[candidate.label_]
            family = self._family(doc, candidate, rule, anchors)
            if family is None:
                continue
            value = self._normalise(family, candidate)
            if value is not None:
                return Identifier(FAMILY_LABELS[family], value, candidate.start, candidate.end)
        return None

    def _family(self, doc: Doc, candidate: Span, rule: dict, anchors: list[Anchor]) -> str | None:
        families = rule["families"]
        nearest = self._nearest_anchor(doc, candidate, families, anchors)
        if nearest is not None:
            return nearest
        if not rule["needs_cue"]:
            return rule.get("default", families[0])
        return None

    def _nearest_anchor(
        self, doc: Doc, candidate: Span, families: list[str], anchors: list[Anchor]
    ) -> str | None:
        for anchor in reversed(anchors):
            limit = self.linking["chain_window_tokens" if anchor.chained else "window_tokens"]
            line_limit = self.linking["chain_window_lines" if anchor.chained else "window_lines"]
            if (
                words_between(doc, anchor.end, candidate.start, limit) > limit
                or lines_between(doc, anchor.end, candidate.start) > line_limit
            ):
                return None
            if anchor.family in families and self._digits_fit(anchor.family, candidate):
                return anchor.family
        return None

    def _digits_fit(self, family: str, candidate: Span) -> bool:
        bounds = self.linking["digits"].get(family)
        if bounds is None or candidate.label_ not in {"VAL_NUMBER", "VAL_COMMA_NUMBER"}:
            return True
        return bounds[0] <= len(normalise.digits_only(candidate.text)) <= bounds[1]

    @staticmethod
    def _normalise(family: str, candidate: Span) -> str | None:
        label, text = candidate.label_, candidate.text.strip(".,;:()[]<>\"'")
        if family == "asin":
            return normalise.asin(text)
        if family == "complaint_id":
            return normalise.digits_only(text)
        if family == "registration":
            return normalise.registration_number(label, text)
        if family == "patent":
            return normalise.patent_number(label, text)
        return normalise.copyright_registration(text)

    def _emails(self, doc: Doc, spans) -> list[Identifier]:
        contacts = [s for s in spans if s.label_ == "CUE_CONTACT"]
        found = []
        for span in spans:
            if span.label_ != "VAL_EMAIL":
                continue
            near_contact = any(
                c.end <= span.start
                and lines_between(doc, c.end, span.start) <= 4
                and words_between(doc, c.end, span.start, 25) <= 25
                for c in contacts
            )
            label = "RIGHTS_OWNER_EMAIL" if near_contact else "EMAIL"
            found.append(Identifier(label, span.text.lower().strip("."), span.start, span.end))
        return found

    @staticmethod
    def _marketplaces(spans) -> list[Identifier]:
        found = []
        for span in spans:
            value = normalise.marketplace(span.text) if span.label_ == "VAL_MARKETPLACE" else None
            if value:
                found.append(Identifier("MARKETPLACE", value, span.start, span.end))
        return found

    @staticmethod
    def _deadlines(doc: Doc, spans) -> list[Identifier]:
        vetoes = [s for s in spans if s.label_ == "DEADLINE_NOT_SELLERS"]
        found = []
        for span in spans:
            if span.label_ not in {"DEADLINE_WINDOW", "DEADLINE_DATE"}:
                continue
            if any(_same_clause(doc, veto, span) for veto in vetoes):
                continue
            value = deadline_value(span)
            if value is not None and not any(f.start < span.end and span.start < f.end for f in found):
                found.append(Identifier("DEADLINE", value, span.start, span.end))
        return found


_SENTENCE_END = {".", "!", "?", "。", ";"}


def _same_clause(doc: Doc, veto: Span, span: Span) -> bool:
    """A veto phrase in the same sentence as a deadline, close before or after it, cancels it."""
    first, second = (veto, span) if veto.end <= span.start else (span, veto)
    if first.end > second.start:
        return True
    between = doc[first.end : second.start]
    if lines_between(doc, first.end, second.start) or any(t.text in _SENTENCE_END for t in between):
        return False
    limit = 12 if first is veto else 14
    return words_between(doc, first.end, second.start, limit) <= limit


class ValueFinder:
    """Finds identifier-shaped values with regular expressions over the text (one pass per shape).

    Token-level REGEX patterns would make spaCy's matcher test every shape against every token;
    scanning the text once per shape and aligning the hits to tokens is an order of magnitude faster.
    """

    def __init__(self, shapes: list[dict]):
        self.shapes = [Shape(shape["label"], shape["regex"]) for shape in shapes]

    def __call__(self, doc: Doc) -> Doc:
        starts = doc.to_array("IDX")
        text = doc_text(doc)
        found = []
        for shape in self.shapes:
            for start, end in shape.spans(text):
                first = int(numpy.searchsorted(starts, start, side="right")) - 1
                last = int(numpy.searchsorted(starts, end, side="left"))
                if 0 <= first < last:
                    found.append(Span(doc, first, last, label=shape.label))
        doc.spans[CANDIDATES] = list(doc.spans.get(CANDIDATES, [])) + found
        return doc


@Language.factory("value_finder", default_config={"shapes": []})
def make_value_finder(nlp: Language, name: str, shapes: list[dict]) -> ValueFinder:
    """spaCy factory for the value finder; `shapes` come from config/patterns/values.jsonl."""
    return ValueFinder(shapes)


@Language.factory("identifier_linker", default_config={"linking": {}})
def make_identifier_linker(nlp: Language, name: str, linking: dict) -> IdentifierLinker:
    """spaCy factory for the identifier linker; `linking` comes from config/patterns/linking.toml."""
    return IdentifierLinker(linking)
