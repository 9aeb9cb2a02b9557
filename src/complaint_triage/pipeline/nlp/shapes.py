"""Identifier shapes as regular expressions, scanned fast: a leading look-behind is checked by hand.

Python's regular expressions skip ahead to where a match can start only when a pattern begins
with a literal or a character class; a leading `(?<![\\w])` guard makes the engine try every
position of the text instead (0.2 ms per shape and message, 27 shapes). A shape of that form
whose body begins with a definite character is searched without the guard, and the guard is
tested on the character before each hit; a rejected hit resumes the search one character later,
so the matches are exactly those of the whole pattern (tests/test_extract.py compares them).
"""

from __future__ import annotations

import re

# (?flags)(?<![class])body: the guard is one character class, and the body does not start with
# an optional element (then it has no definite first character to skip ahead to).
_GUARDED = re.compile(r"^(\(\?[aiLmsux]+\))?\(\?<!(\[(?:\\.|[^\]\\])+\])\)(.+)$", re.DOTALL)
_DEFINITE_START = re.compile(r"^(?:\\[dDwWsS]|\\.|\[(?:\\.|[^\]\\])+\]|[^\\()\[\]{}?*+|^$.])(?![?*]|\{0)")


def _top_level_alternation(regex: str) -> bool:
    """Whether REGEX has a `|` outside any group (the guard would then bind its first branch only)."""
    depth, index, in_class = 0, 0, False
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 2 if regex.startswith("[]", index) else 3 if regex.startswith("[^]", index) else 1
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
        index += 1
    return False


class Shape:
    """One identifier shape: its label and its pattern, with a fast scan where the form allows."""

    def __init__(self, label: str, regex: str):
        self.label, self.pattern = label, re.compile(regex)
        self.body = self.guard = None
        found = _GUARDED.match(regex)
        if found and _DEFINITE_START.match(found.group(3)) and not _top_level_alternation(found.group(3)):
            flags = found.group(1) or ""
            self.body, self.guard = re.compile(flags + found.group(3)), re.compile(flags + found.group(2))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every match, as `pattern.finditer` would give them."""
        if self.body is None:
            return [match.span() for match in self.pattern.finditer(text)]
        found, position, size = [], 0, len(text)
        while position <= size:
            match = self.body.search(text, position)
            if match is None:
                break
            start, end = match.span()
            if start and self.guard.match(text, start - 1):
                position = start + 1
                continue
            found.append((start, end))
            position = end if end > start else start + 1
        return found

    def search(self, text: str) -> str | None:
        """The first match's text, or None."""
        if self.body is None:
            match = self.pattern.search(text)
            return match.group() if match else None
        spans = self._first(text)
        return text[spans[0] : spans[1]] if spans else None

    def _first(self, text: str) -> tuple[int, int] | None:
        position = 0
        while (match := self.body.search(text, position)) is not None:
            if not (match.start() and self.guard.match(text, match.start() - 1)):
                return match.span()
            position = match.start() + 1
        return None
