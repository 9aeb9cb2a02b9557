"""A cheap screen before the spaCy pipeline: mail that cannot be a complaint skips extraction.

The screen is built from the loaded pipeline itself (the span ruler's patterns, the value
finder's shapes, the linker's rules), so it always agrees with what `models/` was built from,
whatever language packs `config/patterns/` holds. A message goes through the full pipeline when
any of these holds; only mail with none of them is screened out:

- a word or phrase of any pattern whose label can make mail a complaint or name an identifier
  that every record keeps (every KIND_ and CLAIM_ label, the ASIN, complaint ID and contact
  cues, and any label added later), matched case-insensitively and more loosely than the span
  ruler does (any spacing between a phrase's tokens);
- a value whose shape names its family without a cue (`B0…` ASINs, `/dp/` URLs, UK00… marks,
  US patents, copyright registrations, ...), so a notice that gives only numbers is read;
- a sender signal: a buyer through Amazon's relay, a look-alike of Amazon, a sender whose name
  claims Amazon from another domain, a reply that quotes an Amazon notice;
- a token pattern the screen cannot reduce to words (then every message is read in full).

Some labels do not call for the full pipeline by themselves: those that only veto or qualify
what another cue found (phone and order words; windows and dates, which count only in
complaints; newsletter and solicitation words), the cues of values that a record keeps only for
complaints (mark names, registration, patent and copyright numbers: every complaint kind also
needs a KIND_ or CLAIM_ cue, a contact cue or an ASIN, which are triggers), and the value labels
the linker attaches to cues.
Screened mail is classified like any other with the entities the screen can read exactly (the
Amazon stores it names), so its record is complete: kind `other`, urgency low, and a reason
saying why it was not read in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spacy.language import Language

from complaint_triage.pipeline import normalise
from complaint_triage.pipeline.nlp.shapes import Shape
from complaint_triage.pipeline.senders import SenderProfile
from complaint_triage.records import Entities

# Labels whose matches only veto or qualify what other cues found; see the module docstring.
QUALIFYING_LABELS = frozenset(
    {
        "CUE_VETO",
        "DEADLINE_WINDOW",
        "DEADLINE_DATE",
        "DEADLINE_NOT_SELLERS",
        "KIND_NEWSLETTER",
        "KIND_SOLICITATION",
        "LANG",  # a language pack's function words: they name the language, they are no complaint cue
        "KIND_INFORMATIONAL",  # Amazon's non-enforcement wording only ever makes mail `other`
    }
)
# Cues of the values classification empties unless the kind is a complaint (see the module docstring).
COMPLAINT_VALUE_CUES = frozenset(
    {"CUE_TRADEMARK_NAME", "CUE_REGISTRATION", "CUE_PATENT", "CUE_COPYRIGHT_REG"}
)
MARKETPLACE_LABEL = "VAL_MARKETPLACE"
SCREENED_REASON = (
    "Screened before extraction: no complaint, notice or claim wording, no identifier, an ordinary sender"
)
_TOKEN_ATTRS = ("LOWER", "ORTH", "TEXT", "NORM")
_OPTIONAL_OPS = ("?", "*", "!")
_ASCII_LETTER = re.compile(r"[a-z]")
# Runs of Latin letters: the words a set lookup finds (CJK splits per character, so it is found as a substring).
_LETTER_RUN = re.compile(r"[a-zß-öø-ÿā-ɏ]+")
_GAP = (
    "\x00"  # between a phrase's tokens in the trie; becomes \s*, any spacing (re.escape leaves it as it is)
)


@dataclass
class ScreenResult:
    """Whether a message must go through the full pipeline, and why."""

    full: bool
    reason: str


def _literals_of(token: dict) -> list[str] | None:
    """The words one token pattern accepts, lower-cased, or None when it is not a literal."""
    for attr in _TOKEN_ATTRS:
        value = token.get(attr)
        if isinstance(value, str):
            return [value.lower()]
        if isinstance(value, dict) and isinstance(value.get("IN"), list) and set(value) <= {"IN"}:
            return [str(word).lower() for word in value["IN"]]
    return None


def token_pattern_words(pattern: list[dict]) -> list[str] | None:
    """The words of the first required literal token of a token pattern (one of them must occur)."""
    for token in pattern:
        if token.get("OP") in _OPTIONAL_OPS:
            continue
        words = _literals_of(token)
        if words:
            return words
    return None


def _edge(piece: str, at_start: bool) -> str:
    """A lookaround that stops a piece starting or ending with an ASCII letter inside a longer word."""
    char = piece[0] if at_start else piece[-1]
    if not _ASCII_LETTER.match(char):
        return ""  # CJK runs and punctuation split into tokens anywhere
    return "(?<![a-z])" if at_start else "(?![a-z])"


def _trie_regex(phrases: list[str]) -> str:
    """One alternation of many escaped phrases, with shared prefixes factored (Python's re tries branches in turn)."""
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for char in phrase:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_regex(trie)


def _node_regex(node: dict) -> str:
    ends = "" in node
    branches = [re.escape(char) + _node_regex(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends else body


def _phrases_regex(phrases: list[list[str]]) -> re.Pattern:
    """The phrases (token lists) sharing a first token, any spacing between tokens, grouped by their end guard."""
    by_end: dict[str, list[str]] = {}
    for tokens in phrases:
        by_end.setdefault(_edge(tokens[-1], False), []).append(_GAP.join(tokens))
    parts = [
        "(?:" + _trie_regex(sorted(set(joined))).replace(_GAP, r"\s*") + ")" + end
        for end, joined in by_end.items()
    ]
    return re.compile("|".join(parts))


class CueIndex:
    """The phrases of the trigger patterns, found by their first word: a set lookup, then one small pattern per word present."""

    def __init__(self) -> None:
        self.by_word: dict[str, list[list[str]]] = {}  # first token made of letters -> its phrases
        self.by_literal: dict[
            str, list[list[str]]
        ] = {}  # other first tokens (CJK, digits, punctuation), found as substrings
        self.aliases: dict[
            str, set[str]
        ] = {}  # a letter run of the text -> first words the tokenizer may split out of it
        self._compiled: dict[str, re.Pattern] = {}

    def add(self, tokens: list[str]) -> None:
        """One phrase, as the pipeline's tokenizer splits it, lower-cased."""
        first = tokens[0]
        (self.by_word if _LETTER_RUN.fullmatch(first) else self.by_literal).setdefault(first, []).append(
            tokens
        )

    def alias_exceptions(self, rules: dict) -> None:
        """A tokenizer exception splits 'cannot' into 'can' 'not': 'not' is then present where the text says 'cannot'."""
        for chunk, pieces in rules.items():
            for piece in pieces:
                word = str(piece.get(65, piece.get("ORTH", ""))).lower()  # 65 is spaCy's ORTH attribute id
                if word in self.by_word and word != chunk.lower():
                    for run in _LETTER_RUN.findall(chunk.lower()):
                        self.aliases.setdefault(run, set()).add(word)

    def find(self, lowered: str) -> str | None:
        """The first phrase found in the lower-cased text, or None."""
        runs = set(_LETTER_RUN.findall(lowered))
        words = runs & self.by_word.keys()
        for run in runs & self.aliases.keys():
            words |= self.aliases[run]
        keys = [("w", word) for word in sorted(words)] + [
            ("l", literal) for literal in self.by_literal if literal in lowered
        ]
        for kind, key in keys:
            phrases = (self.by_word if kind == "w" else self.by_literal)[key]
            if kind == "w" and any(len(tokens) == 1 for tokens in phrases):
                return key  # the word itself is the phrase, and it stands alone in the text
            pattern = self._compiled.get(key) or self._compiled.setdefault(key, _phrases_regex(phrases))
            found = pattern.search(lowered)
            if found:
                return found.group()
        return None


class ComplaintScreen:
    """Compiled once per loaded pipeline: decides which messages need the spaCy pipeline."""

    reason = SCREENED_REASON

    def __init__(self, nlp: Language):
        self.read_everything = False
        self.cues = self._compile_cues(nlp)
        self.shape_patterns = self._compile_shapes(nlp)
        self.marketplace_patterns = [
            shape.pattern for shape in self._shapes(nlp) if shape.label == MARKETPLACE_LABEL
        ]

    def _compile_cues(self, nlp: Language) -> CueIndex:
        index = CueIndex()
        for row in nlp.get_pipe("span_ruler").patterns:
            if row["label"] in QUALIFYING_LABELS | COMPLAINT_VALUE_CUES or row["label"].startswith("VAL_"):
                continue
            pieces = self._pieces(nlp, row["pattern"])
            if pieces is None:
                self.read_everything = True
                continue
            for tokens in pieces:
                index.add(tokens)
        index.alias_exceptions(nlp.tokenizer.rules or {})
        return index

    @staticmethod
    def _pieces(nlp: Language, pattern) -> list[list[str]] | None:
        """Token lists, one of which must occur for the pattern to match; None when it cannot be told."""
        if isinstance(pattern, str):
            tokens = [token.lower_ for token in nlp.make_doc(pattern) if not token.is_space]
            return [tokens] if tokens else None
        words = token_pattern_words(pattern)
        return [[word] for word in words if word] if words else None

    @staticmethod
    def _shapes(nlp: Language) -> list[Shape]:
        return list(nlp.get_pipe("value_finder").shapes)

    def _compile_shapes(self, nlp: Language) -> list[Shape]:
        values = nlp.get_pipe("identifier_linker").values
        # A value that needs a cue is linked only when a cue (a trigger above) stands before it.
        return [
            shape
            for shape in self._shapes(nlp)
            if shape.label != MARKETPLACE_LABEL and values.get(shape.label, {}).get("needs_cue") is not True
        ]

    def check(self, text: str, sender: SenderProfile) -> ScreenResult:
        """Whether the message (its extraction text and its sender) needs the full pipeline."""
        if self.read_everything:
            return ScreenResult(True, "a pattern the screen cannot reduce to words")
        signal = _sender_signal(sender)
        if signal:
            return ScreenResult(True, signal)
        cue = self.cues.find(text.lower())
        if cue:
            return ScreenResult(True, f"cue {cue!r}")
        for shape in self.shape_patterns:
            value = shape.search(text)
            if value:
                return ScreenResult(True, f"identifier {value!r}")
        if not self._marketplaces_readable(text):
            return ScreenResult(True, "a store domain inside a longer word")
        return ScreenResult(False, SCREENED_REASON)

    def _marketplaces_readable(self, text: str) -> bool:
        """Every store domain starts its word, so the screen reads it as the pipeline would."""
        for pattern in self.marketplace_patterns:
            for match in pattern.finditer(text):
                start = match.start()
                word_start = max(text.rfind(space, 0, start) for space in (" ", "\n", "\t", "\r")) + 1
                if "amazon." in text[word_start:start].lower():
                    return False
        return True

    def entities(self, text: str) -> Entities:
        """What a screened message names that its record keeps: the Amazon stores."""
        markets: list[str] = []
        # In the pipeline's order: shape by shape, then by position; each store once.
        for pattern in self.marketplace_patterns:
            for match in pattern.finditer(text):
                market = normalise.marketplace(match.group())
                if market and market not in markets:
                    markets.append(market)
        return Entities(marketplaces=markets)


def _sender_signal(sender: SenderProfile) -> str:
    if sender.buyer_relay:
        return "a buyer writing through Amazon's relay"
    if sender.lookalike:
        return "a sender domain that imitates Amazon"
    if sender.claims_amazon and not sender.amazon_domain:
        return "a sender that claims to be Amazon from another domain"
    if sender.quoted_amazon_notice:
        return "a reply that quotes an Amazon notice"
    return ""
