"""What the linking components produce."""

from __future__ import annotations

from typing import NamedTuple


class Identifier(NamedTuple):
    """A found value: its label, normalised value and token range.

    Values live in doc.user_data, not in Span extensions: spaCy keys extension values by
    character offsets, so two labels on the same text (an ASIN inside a store URL) would collide.
    """

    label: str
    value: object
    start: int
    end: int
