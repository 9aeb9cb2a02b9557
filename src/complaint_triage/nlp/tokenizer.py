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
