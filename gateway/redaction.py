"""Redaction: personal data the desk must not keep, masked before anything is stored
or shown to operators ([privacy] redact).

``card``: payment card numbers, 13 to 19 digits (spaces or dashes between them
allowed) that pass the Luhn check, so an order number is left alone; all but the
last four digits are masked. Any other entry is a regular expression whose matches
are replaced by ``[hidden]`` (a national id, a phone number format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CARD = "card"
HIDDEN = "[hidden]"
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(found: re.Match[str]) -> str:
    text = found.group(0)
    digits = re.sub(r"\D", "", text)
    if not luhn(digits):
        return text
    return "•••• " + digits[-4:]


@dataclass(frozen=True)
class Redacted:
    text: str
    #: a card number was among what was hidden (the customer is told once)
    card: bool
    changed: bool


def redact(text: str, rules: tuple[str, ...]) -> Redacted:
    """``text`` with what ``rules`` name masked."""
    if not rules or not text:
        return Redacted(text, False, False)
    result = text
    card = False
    if CARD in rules:
        masked = _CARD_RE.sub(_mask_card, result)
        card = masked != result
        result = masked
    for rule in rules:
        if rule != CARD:
            result = re.sub(rule, HIDDEN, result)
    return Redacted(result, card, result != text)
