"""Tokenizer rules that keep identifiers whole and split CJK text into characters."""

from __future__ import annotations

import re

from spacy.language import Language
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

# Each CJK character is its own token, so patterns can match 商標 or 申立ID inside unspaced text.
_CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
_EXTRA_INFIXES = [_CJK, r":", r"\|", r"(?<=[0-9])\)", r"(?<=[A-Za-z])\((?=[0-9])"]


def _keeps_identifiers_whole(rule: str) -> bool:
    """Drop the default rules that split '112-3456789-1234567' at hyphens or 'B0ABC1234K' at a unit."""
    return not (rule.startswith(r"(?<=[0-9])[+\-\*^]") or "km|km²" in rule)


def customise_tokenizer(nlp: Language) -> Language:
    """Install the project's infix and suffix rules on a blank pipeline's tokenizer."""
    infixes = [rule for rule in nlp.Defaults.infixes if _keeps_identifiers_whole(rule)] + _EXTRA_INFIXES
    suffixes = [rule for rule in nlp.Defaults.suffixes if _keeps_identifiers_whole(rule)] + [_CJK]
    prefixes = list(nlp.Defaults.prefixes) + [_CJK, r":"]
    nlp.tokenizer.prefix_search = compile_prefix_regex(prefixes).search
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    nlp.tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    # A URL or address glued to CJK text ('メールアドレス:a@b.jp') must still be split: URLs are ASCII.
    url = re.sub(r"^\(\?[a-z]+\)", "", nlp.tokenizer.url_match.__self__.pattern)
    nlp.tokenizer.url_match = re.compile(r"(?=[\x00-\x7f]+$)" + url).match
    # English special cases split plain words ('id' -> 'i' 'd'); identifiers' labels need them whole.
    nlp.tokenizer.rules = {text: rule for text, rule in nlp.tokenizer.rules.items() if not text.isalpha()}
    return nlp


class SuffixAtEnd:
    """A suffix search that reads only the last WINDOW characters of a token.

    spaCy strips a token's suffixes one at a time and searches the whole rest of the token for each
    (the patterns end in `$`, which a regular expression finds only by trying every position), so a
    token of n characters cost n^2: each CJK character is split off as an affix, and 20,000 of them
    without a space took 36 s. No suffix rule matches more than a few characters (punctuation runs
    are cut at 40 before tokenising), so the tokens are the same. `__self__` is the compiled
    pattern, as on the bound method spaCy keeps, so the tokenizer still saves its rules.
    """

    def __init__(self, search, window: int = 64):
        self.__self__, self.window = search.__self__, window

    def __call__(self, text: str):
        return self.__self__.search(text, max(0, len(text) - self.window))


def bound_suffix_search(nlp: Language) -> Language:
    """Install SuffixAtEnd on a loaded pipeline's tokenizer."""
    if nlp.tokenizer.suffix_search is not None and not isinstance(nlp.tokenizer.suffix_search, SuffixAtEnd):
        nlp.tokenizer.suffix_search = SuffixAtEnd(nlp.tokenizer.suffix_search)
    return nlp
