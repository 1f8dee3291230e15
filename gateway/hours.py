"""Opening hours: a weekly schedule in a time zone, with holidays.

One type serves the support desk's business hours and each operator's shifts.
Times are wall-clock times in the schedule's zone, so "09:00" stays 09:00 across a
daylight-saving change; every instant handed in or out is aware UTC. Business time
(``add``, ``between``) is real elapsed time inside the open intervals: an interval
that spans a clock change is an hour shorter or longer, as the people working it
experience it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time, get_timezone_location

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
#: how far ahead an opening is looked for (a schedule whose every day for this long
#: is a holiday is treated as never opening again)
HORIZON_DAYS = 800

_INTERVAL_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_RANGE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")


class ScheduleError(ValueError):
    """A schedule an admin wrote that cannot be read; ``key`` is where in it."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(reason)


def parse_days(spec: str) -> list[int]:
    """``mon-fri`` / ``sat,sun`` / ``fri-mon`` (wrapping) -> weekday numbers (Monday 0)."""
    days: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{part!r} is not a day or a range of days (use e.g. mon-fri, sat)")
        start = DAYS.index(first)
        end = DAYS.index(last) if last else start
        span = (end - start) % 7
        days.extend((start + offset) % 7 for offset in range(span + 1))
    return days


def parse_intervals(spec: str) -> list[tuple[int, int]]:
    """``09:00-13:00, 14:00-18:00`` -> minutes of the day. An end before its start
    runs past midnight (``22:00-06:00``); ``24:00`` is the end of the day."""
    if spec.strip().lower() == "closed":
        return []
    out = []
    for part in spec.split(","):
        match = _INTERVAL_RE.match(part.strip())
        if match is None:
            raise ValueError(f"{part.strip()!r} is not a time range (use e.g. 09:00-18:00)")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r} has a time that does not exist")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end == start:
            raise ValueError(f"{part.strip()!r} is empty (for a whole day write 00:00-24:00)")
        if end < start:
            end += MINUTES_PER_DAY
        out.append((start, end))
    return sorted(out)


def parse_holidays(values: Sequence[str]) -> frozenset[date]:
    """``2026-12-25`` or a range ``2026-12-24..2026-12-26`` (both ends included)."""
    days: set[date] = set()
    for value in values:
        text = value.strip()
        match = _RANGE_RE.match(text)
        try:
            if match:
                first, last = (date.fromisoformat(g) for g in match.groups())
            else:
                first = last = date.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date (use 2026-12-25, or 2026-12-24..2026-12-26)"
            ) from None
        if last < first or (last - first).days > 366:
            raise ValueError(f"{value!r} is not a range of at most a year, first to last")
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return frozenset(days)


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    #: weekday (Monday 0) -> open intervals in minutes from that day's midnight
    week: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    always: bool = False

    @classmethod
    def parse(
        cls,
        zone: str,
        week: Mapping[str, str] | None,
        holidays: Sequence[str] = (),
        *,
        always: bool = False,
    ) -> Schedule:
        """Build from config values; a ``ScheduleError`` names the key at fault."""
        days: dict[int, tuple[tuple[int, int], ...]] = {}
        named: dict[int, str] = {}
        for spec, intervals in (week or {}).items():
            try:
                numbers = parse_days(spec)
            except ValueError as exc:
                raise ScheduleError(spec, str(exc)) from None
            try:
                parsed = tuple(parse_intervals(intervals))
            except ValueError as exc:
                raise ScheduleError(spec, str(exc)) from None
            for number in numbers:
                if number in named:
                    raise ScheduleError(
                        spec, f"{DAYS[number]} is already given by {named[number]!r}"
                    )
                named[number] = spec
                days[number] = parsed
        try:
            off = parse_holidays(holidays)
        except ValueError as exc:
            raise ScheduleError("holidays", str(exc)) from None
        if not always and not any(days.values()):
            raise ScheduleError("", "no day has opening hours")
        return cls(ZoneInfo(zone), days, off, always)

    @classmethod
    def around_the_clock(cls, zone: str = "UTC") -> Schedule:
        return cls(ZoneInfo(zone), always=True)

    # -- the intervals themselves ---------------------------------------------------

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals starting on local ``day``, as UTC instants."""
        if day in self.holidays:
            return []
        out = []
        for start, end in self.week.get(day.weekday(), ()):
            out.append((self._instant(day, start), self._instant(day, end)))
        return out

    def _instant(self, day: date, minutes: int) -> datetime:
        days, minutes = divmod(minutes, MINUTES_PER_DAY)
        local = datetime.combine(day + timedelta(days=days), time(minutes // 60, minutes % 60))
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that end after ``at``, in order, overlapping ones merged."""
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        pending: tuple[datetime, datetime] | None = None
        for offset in range(HORIZON_DAYS):
            for start, end in self.day_intervals(day + timedelta(days=offset)):
                if end <= at:
                    continue
                if pending is None:
                    pending = (start, end)
                elif start <= pending[1]:
                    pending = (pending[0], max(pending[1], end))
                else:
                    yield pending
                    pending = (start, end)
        if pending is not None:
            yield pending

    # -- questions -------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        if self.always:
            return True
        first = next(self.intervals_from(at), None)
        return first is not None and first[0] <= at < first[1]

    def next_opening(self, at: datetime) -> datetime | None:
        """When it is next open: ``at`` itself when open now; None if never again."""
        if self.always:
            return at
        first = next(self.intervals_from(at), None)
        if first is None:
            return None
        return max(first[0], at)

    def opening_words(
        self, at: datetime, language: str | None, default: str = "en", *, never: str = "?"
    ) -> str:
        """The next opening as a person reads it, in their language; ``never`` if none."""
        opens = self.next_opening(at)
        return describe(opens, self.zone, language, default) if opens else never

    def add(self, start: datetime, amount: timedelta) -> datetime | None:
        """The instant ``amount`` of open time after ``start``; None if the schedule
        never has that much open time again."""
        if self.always:
            return start + amount
        left = amount
        for begin, end in self.intervals_from(start):
            begin = max(begin, start)
            if end - begin >= left:
                return begin + left
            left -= end - begin
        return None

    def between(self, first: datetime, last: datetime) -> timedelta:
        """Open time from ``first`` to ``last``."""
        if last <= first:
            return timedelta(0)
        if self.always:
            return last - first
        total = timedelta(0)
        for begin, end in self.intervals_from(first):
            if begin >= last:
                break
            total += min(end, last) - max(begin, first)
        return total


def describe(at: datetime, zone: ZoneInfo, language: str | None, default: str = "en") -> str:
    """An instant as a customer reads it, in their language: weekday, date, time and
    the zone's city ("Mon, Nov 23, 9:00 AM (Kyiv)"; "пн, 23 нояб., 09:00 (Kyiv)")."""
    locale = None
    for candidate in (language, default, "en"):
        if not candidate:
            continue
        try:
            locale = Locale.parse(candidate.replace("-", "_"))
            break
        except (UnknownLocaleError, ValueError):
            continue
    assert locale is not None
    local = at.astimezone(zone)
    day = format_skeleton("MMMMEEEEd", local, tzinfo=zone, locale=locale)
    clock = format_time(local, "short", tzinfo=zone, locale=locale)
    pattern = str(locale.datetime_formats.get("medium", "{1}, {0}"))
    city = get_timezone_location(zone, locale=locale, return_city=True)
    return f"{pattern.replace('{1}', day).replace('{0}', clock)} ({city})"
