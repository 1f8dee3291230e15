"""Checks on what a text says, not on how a library words it.

Babel's CLDR data changes between releases ("Nov 30" became "November 30", "Kyiv"
became "Киев" in Russian): a test asserts the day, the hour, the zone and the
language the product chose, and leaves the exact pattern to the library.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import get_timezone_location


def _names(table: object, key: int) -> set[str]:
    """Every width and context of one weekday or month name, casefolded."""
    names: set[str] = set()
    for context in ("format", "stand-alone"):
        for width in ("abbreviated", "wide", "short"):
            try:
                names.add(str(table[context][width][key]).casefold())  # type: ignore[index]
            except KeyError:
                continue
    return {name.rstrip(".") for name in names if name}


def assert_names_the_time(text: str, at: datetime, zone: ZoneInfo, language: str) -> None:
    """``text`` names ``at`` (a local time in ``zone``) for a reader of ``language``:
    its weekday and month in that language, the day of the month, the hour and
    minute (24-hour, or 12-hour with the day period), and the zone's city."""
    locale = Locale.parse(language)
    local = at.astimezone(zone)
    said = text.casefold()
    weekdays = _names(locale.days, local.weekday())
    assert any(name in said for name in weekdays), f"no weekday of {sorted(weekdays)} in {text!r}"
    months = _names(locale.months, local.month)
    assert any(name in said for name in months), f"no month of {sorted(months)} in {text!r}"
    assert re.search(rf"(?<!\d){local.day}(?!\d)", text), f"no day {local.day} in {text!r}"
    minute = f"{local.minute:02d}"
    on_24 = re.search(rf"(?<!\d)0?{local.hour}[:.]{minute}(?!\d)", text)
    twelve = local.hour % 12 or 12
    period = str(locale.day_periods["format"]["abbreviated"]["am" if local.hour < 12 else "pm"])
    on_12 = re.search(rf"(?<!\d){twelve}[:.]{minute}(?!\d)", text) and period.casefold() in said
    assert on_24 or on_12, f"no {local:%H:%M} in {text!r}"
    cities = {get_timezone_location(zone, locale=locale, return_city=True), zone.key.split("/")[-1]}
    assert any(city in text for city in cities), f"no city of {sorted(cities)} in {text!r}"
