"""Splitting long texts for platforms with a length limit: split, never cut."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most ``limit`` characters, broken at the gentlest boundary found.

    Paragraphs first, then lines, then sentences, then words; only a single word
    longer than the limit is broken inside. Joining the parts with the whitespace
    they were split at gives the text back.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = _best_cut(window, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _best_cut(window: str, limit: int) -> int:
    """Where to cut inside ``window`` (of ``limit + 1`` characters)."""
    floor = limit // 3  # a boundary too early makes many tiny parts: look further
    for pattern in ("\n\n", "\n"):
        at = window.rfind(pattern, 0, limit)
        if at >= floor:
            return at + len(pattern)
    ends = [m.end() for m in _SENTENCE_END.finditer(window[:limit])]
    if ends and ends[-1] >= floor:
        return ends[-1]
    at = window.rfind(" ", 0, limit)
    if at >= floor:
        return at + 1
    return limit
