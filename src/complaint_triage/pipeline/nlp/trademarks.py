"""Asserted trademark names: the words after a trademark cue, or a name marked ® / ™."""

from __future__ import annotations

import re

from spacy.tokens import Doc

from complaint_triage.pipeline import normalise
from complaint_triage.pipeline.nlp.identifier import Identifier

# Words that end a mark or show that what follows a cue is prose, not a name.
_STOP = {
    "infringement",
    "infringements",
    "infringing",
    "infringe",
    "infringes",
    "notice",
    "complaint",
    "complaints",
    "rights",
    "right",
    "owner",
    "owners",
    "policy",
    "violation",
    "violations",
    "registration",
    "registered",
    "number",
    "no",
    "office",
    "law",
    "claim",
    "claims",
    "holder",
    "type",
    "the",
    "a",
    "an",
    "your",
    "our",
    "their",
    "its",
    "this",
    "that",
    "these",
    "those",
    "of",
    "in",
    "on",
    "for",
    "by",
    "to",
    "and",
    "or",
    "is",
    "are",
    "was",
    "has",
    "have",
    "with",
    "which",
    "who",
    "as",
    "under",
    "from",
    "at",
    "all",
    "any",
    "such",
    "use",
    "used",
    "using",
    "name",
    "names",
    "information",
    "details",
    "contact",
    "registrations",
    "application",
    "applications",
    "reg",
    "serial",
    "class",
    "classes",
    "word",
    "mark",
    "marks",
    "trademark",
    "trademarks",
    "owned",
    "belongs",
    "protected",
    "issue",
    "issues",
    "terms",
    "term",
    "if",
    "we",
    "you",
    "it",
    "not",
    "und",
    "der",
    "die",
    "das",
    "des",
    "ist",
    "von",
    "eine",
    "einer",
    "le",
    "la",
    "les",
    "du",
    "de",
    "des",
    "et",
    "est",
    "el",
    "los",
    "las",
    "del",
    "y",
    "es",
    "il",
    "lo",
    "gli",
    "di",
    "e",
    "è",
    "dei",
    "marke",
    "marque",
    "marca",
    "marchio",
    "amazon",
    "seller",
    "sellers",
    "inhaber",
    "titulaire",
    "titular",
    "titolare",
    "nummer",
    "numéro",
    "número",
    "numero",
    "registrierung",
    "enregistrement",
    "registro",
    "registrazione",
    "verletzung",
    "contrefaçon",
    "infracción",
    "violazione",
    "products",
    "product",
    "listing",
    "listings",
    "asin",
    "asins",
    "eu",
    "uk",
    "us",
    "usa",
    "ip",
    "dmca",
    "eutm",
    "euipo",
    "uspto",
    "ukipo",
    "dpma",
    "llc",
    "inc",
    "ltd",
    "gmbh",
    "tm",
    "id",
    "nr",
    "notice",
    "policy",
    "warning",
    "title",
    "infringement",
    "type",
    "nos",
    "see",
    "below",
    "above",
    "following",
    "sin",
    "en",
    "con",
    "por",
    "para",
    "sans",
    "senza",
    "ohne",
}
_BREAK = {",", ";", "(", ")", "[", "]", ".", "!", "?", "/", "|", "·", "•", "–", "—", "、", "。", "(", ")"}
_QUOTES = {'"', "“", "”", "„", "«", "»", "'", "‘", "’", "「", "」", "『", "』"}
_SYMBOLS = {"®", "™", "℠"}
_MAX_WORDS = 5
_GENERIC_CUES = {"trademark", "trade mark", "mark", "marke", "word mark", "the mark", "the trademark", "name"}
# 'the PEBBLE & PINE name' names a mark; what follows a bare 'Name:' is a person, an account or a host in system mail.
_BACKWARD_ONLY_CUES = {"name"}
_IDENTIFIER_LIKE = re.compile(r"\d{4,}|^\d[\d,./-]*$|^\D{0,4}\d{1,3}(?:[,.]\d{3})+$")  # 'TMA1,145,862'
_BREAK_INSIDE = re.compile("[" + re.escape("".join(sorted(_BREAK - {".", "/", "-"}))) + "]")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _looks_like_mark(words: list[str]) -> bool:
    if not words or len(words) > _MAX_WORDS:
        return False
    first = words[0]
    if first.lower() in _STOP or not (
        first[0].isupper() or first[0].isdigit() or re.match(r"[\u3040-\u30ff\u4e00-\u9fff]", first)
    ):
        return False
    if any(_IDENTIFIER_LIKE.search(w) for w in words):
        return False
    return any(re.search(r"\w", w) for w in words) and words[-1].lower() not in _STOP


def _quoted_after(doc: Doc, start: int) -> tuple[list[str], int] | None:
    """A mark in quotes right after the cue: 'trademark "ZENTRO"'."""
    index = start
    while index < len(doc) and doc[index].text in {":", "-"} | _SYMBOLS:
        index += 1
    if index >= len(doc) or doc[index].text not in _QUOTES:
        return None
    words: list[str] = []
    for token in doc[index + 1 : index + 2 + _MAX_WORDS]:
        if token.text in _QUOTES:
            return (words, token.i + 1) if words else None
        if token.is_space:
            return None
        words.append(token.text)
        if "\n" in token.whitespace_:
            return None
    return None


def _skip_to_name(doc: Doc, start: int) -> int | None:
    """Where the name after a cue starts; None when the cue ends its line without a colon.

    Also skips a short verb before a colon, as German puts it: 'die folgende Marke verletzen: VELMORA'.
    """
    index = start
    # 'Varumärke:' carries its colon; a table's run of spaces after it still leads to the name.
    after_colon = index > 0 and doc[index - 1].text.endswith(":")
    if index < len(doc) and (doc[index].text == ":" or after_colon):
        index += 1 if doc[index].text == ":" else 0
        while index < len(doc) and doc[index].is_space and doc[index].text.count("\n") <= 1:
            index += 1
        return index
    if index < len(doc) and (doc[index].is_space or "\n" in doc[index - 1].whitespace_):
        return None
    for offset in range(1, 4):
        probe = index + offset
        between = doc[index:probe]
        # 'Trademark registration number: TMA…' labels a number, not a name
        if (
            probe < len(doc)
            and doc[probe].text == ":"
            and all(t.is_lower and t.lower_ not in _STOP for t in between)
        ):
            return probe + 1
    return index


def _words_after(doc: Doc, start: int) -> list[str]:
    """The name written after a cue like 'following trademark:', up to the end of its line or a break."""
    index = _skip_to_name(doc, start)
    if index is None:
        return []
    while index < len(doc) and doc[index].text in {"-"} | _QUOTES | _SYMBOLS:
        index += 1
    words: list[str] = []
    for token in doc[index : index + _MAX_WORDS + 2]:
        if token.is_space or token.text in _BREAK or token.text in _QUOTES or token.text in _SYMBOLS:
            break
        if words and token.text == "-" and doc[token.i - 1].whitespace_:
            break  # 'NAME - office registration no.': a spaced hyphen ends the name, a joined one is part of it
        if words and token.lower_ in _STOP:
            break
        head = _BREAK_INSIDE.split(token.text, maxsplit=1)[0]
        if head != token.text:  # 'MIZUKAZE(登録第…号)': a full-width bracket joins no space to the name
            words += [head] if head else []
            break
        words.append(token.text)
        if "\n" in token.whitespace_ or (token.i + 1 < len(doc) and doc[token.i + 1].is_space):
            break
    return words


def _capitals_before(doc: Doc, cue_start: int) -> list[str]:
    """An all-capitals name right before a generic cue: 'its ZEPHRAWAVE trademark', 'the NIMBLEROOT mark'."""
    words: list[str] = []
    index = cue_start - 1
    while index >= 0 and len(words) < 4:
        token = doc[index]
        if token.text == "&" and words:
            words.insert(0, token.text)
        elif token.is_upper and token.is_alpha and len(token.text) >= 3 and token.lower_ not in _STOP:
            words.insert(0, token.text)
        else:
            break
        if "\n" in (doc[index - 1].whitespace_ if index > 0 else ""):
            break
        index -= 1
    return words if words and words[0] != "&" else []


def _marked_before(doc: Doc, symbol_index: int) -> list[str]:
    """Capitalised words right before ® / ™: 'ZENTRO LABS®'."""
    words: list[str] = []
    index = symbol_index - 1
    while index >= 0 and len(words) < 3:
        token = doc[index]
        if (
            token.is_space
            or token.text in _BREAK
            or token.text in _QUOTES
            or "\n" in token.whitespace_
            and words
        ):
            break
        if not token.text[:1].isupper() or token.lower_ in _STOP:
            break
        words.insert(0, token.text)
        index -= 1
    return words


def find_trademarks(doc: Doc, spans) -> list[Identifier]:
    """TRADEMARK identifiers for the marks a message asserts by name."""
    found: dict[str, Identifier] = {}
    cues = [s for s in spans if s.label_ == "CUE_TRADEMARK_NAME"]
    for cue in sorted(cues, key=lambda s: (s.start, -len(s))):
        forward = cue.text.lower() not in _BACKWARD_ONLY_CUES
        quoted = _quoted_after(doc, cue.end) if forward else None
        words = (quoted[0] if quoted else _words_after(doc, cue.end)) if forward else []
        if quoted or (forward and _looks_like_mark(words)):
            _add(found, doc, cue.start, cue.end, normalise.mark_name(_join(words)))
        elif cue.text.lower() in _GENERIC_CUES and (before := _capitals_before(doc, cue.start)):
            _add(found, doc, cue.start - len(before), cue.start, normalise.mark_name(_join(before)))
    for token in doc:
        if token.text in _SYMBOLS:
            words = _marked_before(doc, token.i)
            if _looks_like_mark(words):
                _add(found, doc, token.i - len(words), token.i, normalise.mark_name(_join(words)))
    return list(found.values())


def _add(found: dict[str, Identifier], doc: Doc, start: int, end: int, name: str) -> None:
    if not name or name.casefold() in (key.casefold() for key in found):
        return
    found[name] = Identifier("TRADEMARK", name, start, end)


def _join(words: list[str]) -> str:
    """The name's words as written: Japanese characters (one token each) join without spaces."""
    text = ""
    for word in words:
        glued = text and _CJK.match(word) and _CJK.match(text[-1])
        text += word if glued or not text else " " + word
    return text
