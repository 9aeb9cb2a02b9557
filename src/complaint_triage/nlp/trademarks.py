"""Asserted trademark names: the words after a trademark cue, or a name marked ® / ™."""

from __future__ import annotations

import re

from spacy.tokens import Doc, Span

from complaint_triage import normalise

# Words that end a mark or show that what follows a cue is prose, not a name.
_STOP = {
    "infringement", "infringements", "infringing", "infringe", "infringes", "notice", "complaint", "complaints", "rights", "right", "owner", "owners",
    "policy", "violation", "violations", "registration", "registered", "number", "no", "office", "law", "claim", "claims", "holder", "type",
    "the", "a", "an", "your", "our", "their", "its", "this", "that", "these", "those", "of", "in", "on", "for", "by", "to", "and", "or", "is", "are",
    "was", "has", "have", "with", "which", "who", "as", "under", "from", "at", "all", "any", "such", "use", "used", "using", "name", "names",
    "information", "details", "contact", "registrations", "application", "applications", "reg", "serial", "class", "classes", "word", "mark",
    "marks", "trademark", "trademarks", "owned", "belongs", "protected", "issue", "issues", "terms", "term", "if", "we", "you", "it", "not",
    "und", "der", "die", "das", "des", "ist", "von", "eine", "einer", "le", "la", "les", "du", "de", "des", "et", "est", "el", "los", "las",
    "del", "y", "es", "il", "lo", "gli", "di", "e", "è", "dei", "marke", "marque", "marca", "marchio", "amazon", "seller", "sellers",
    "inhaber", "titulaire", "titular", "titolare", "nummer", "numéro", "número", "numero", "registrierung", "enregistrement", "registro",
    "registrazione", "verletzung", "contrefaçon", "infracción", "violazione", "products", "product", "listing", "listings", "asin", "asins",
}
_BREAK = {",", ";", "(", ")", "[", "]", ".", "!", "?", "/", "|", "·", "•", "–", "—", "、", "。", "(", ")"}
_QUOTES = {'"', "“", "”", "„", "«", "»", "'", "‘", "’", "「", "」", "『", "』"}
_SYMBOLS = {"®", "™", "℠"}
_MAX_WORDS = 5


def _looks_like_mark(words: list[str]) -> bool:
    if not words or len(words) > _MAX_WORDS:
        return False
    first = words[0]
    if first.lower() in _STOP or not (first[0].isupper() or first[0].isdigit() or re.match(r"[\u3040-\u30ff\u4e00-\u9fff]", first)):
        return False
    return any(re.search(r"\w", w) for w in words) and words[-1].lower() not in _STOP


def _quoted_after(doc: Doc, start: int) -> tuple[list[str], int] | None:
    """A mark in quotes right after the cue: 'trademark "ZENTRO"'."""
    index = start
    while index < len(doc) and doc[index].text in {":", "-"} | _SYMBOLS:
        index += 1
    if index >= len(doc) or doc[index].text not in _QUOTES:
        return None
    words = []
    for token in doc[index + 1 : index + 2 + _MAX_WORDS]:
        if token.text in _QUOTES:
            return words, token.i + 1
        if token.is_space or "\n" in token.text_with_ws[len(token.text):]:
            words.append(token.text)
            return None
        words.append(token.text)
    return None


def _words_after(doc: Doc, start: int) -> list[str]:
    """The name written after a cue like 'following trademark:', up to the end of its line or a break."""
    index = start
    while index < len(doc) and (doc[index].text in {":", "-"} | _QUOTES | _SYMBOLS or doc[index].is_space):
        if doc[index].is_space and doc[index].text.count("\n") > 1:
            return []
        index += 1
    words: list[str] = []
    for token in doc[index : index + _MAX_WORDS + 2]:
        if token.is_space or token.text in _BREAK or token.text in _QUOTES:
            break
        if token.text in _SYMBOLS:
            break
        if words and token.lower_ in _STOP:
            break
        words.append(token.text)
        if "\n" in token.whitespace_ or "\n" in (doc[token.i + 1].text if token.i + 1 < len(doc) else ""):
            break
    return words


def _marked_before(doc: Doc, symbol_index: int) -> list[str]:
    """Capitalised words right before ® / ™: 'ZENTRO LABS®'."""
    words: list[str] = []
    index = symbol_index - 1
    while index >= 0 and len(words) < 3:
        token = doc[index]
        if token.is_space or token.text in _BREAK or token.text in _QUOTES or "\n" in token.whitespace_ and words:
            break
        if not (token.text[:1].isupper() or token.text[:1].isdigit()) or token.lower_ in _STOP:
            break
        words.insert(0, token.text)
        index -= 1
    return words


def find_trademarks(doc: Doc, spans) -> list[Span]:
    """TRADEMARK spans for the marks a message asserts by name."""
    found: dict[str, Span] = {}
    cues = [s for s in spans if s.label_ == "CUE_TRADEMARK_NAME"]
    for cue in sorted(cues, key=lambda s: (s.start, -len(s))):
        quoted = _quoted_after(doc, cue.end)
        words = quoted[0] if quoted else _words_after(doc, cue.end)
        if quoted or _looks_like_mark(words):
            _add(found, doc, cue.start, cue.end, normalise.mark_name(" ".join(words)))
    for token in doc:
        if token.text in _SYMBOLS:
            words = _marked_before(doc, token.i)
            if _looks_like_mark(words):
                _add(found, doc, token.i - len(words), token.i, normalise.mark_name(" ".join(words)))
    return list(found.values())


def _add(found: dict[str, Span], doc: Doc, start: int, end: int, name: str) -> None:
    if not name or name.casefold() in (key.casefold() for key in found):
        return
    span = Span(doc, start, end, label="TRADEMARK")
    span._.value = name
    found[name] = span
