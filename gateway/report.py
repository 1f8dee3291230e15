"""`gateway report`: the figures a support team is judged by, read from the database.

The definitions are meant to be honest:

- **first response**: from the customer's first message (the conversation's start) to
  the first operator reply the customer actually received (its delivery confirmed by
  the platform). Greetings, queue texts and FAQ answers are not responses. A
  conversation no operator answered has no first response time.
- **resolution**: from the start to the close, for conversations closed in the period.
- **business hours**: the same, counting only the desk's open time (``[hours]``).
- **FAQ answered**: conversations opened in the period that got an automatic FAQ
  answer; **solved by FAQ**: those of them closed without any operator reply.
- **SLA breaches**: response targets missed in the period, counted for the operator
  who had the conversation then.
- **CSAT**: the scores customers gave in the period.

A conversation counts for its operator (the last one assigned), its channel, and the
day (in the desk's time zone) on which each thing happened. Percentiles interpolate
linearly between ranks.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.config import Config
from gateway.hours import Schedule
from gateway.status import humanize, table
from storage import Repository

GroupBy = Literal["operator", "channel", "day"]
UNASSIGNED = "(unassigned)"

#: the response-time histogram's buckets: upper bounds in seconds, and labels
BUCKETS: tuple[tuple[float, str], ...] = (
    (60, "<1m"),
    (5 * 60, "1–5m"),
    (15 * 60, "5–15m"),
    (30 * 60, "15–30m"),
    (60 * 60, "30–60m"),
    (2 * 3600, "1–2h"),
    (4 * 3600, "2–4h"),
    (8 * 3600, "4–8h"),
    (24 * 3600, "8–24h"),
    (math.inf, ">24h"),
)


@dataclass(frozen=True)
class Fact:
    """One conversation, as the report needs it."""

    conversation_id: int
    channel: str
    operator: str | None
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    csat_score: int | None
    csat_rated_at: datetime | None
    faq_answered: bool
    operator_replied: bool


@dataclass(frozen=True)
class BreachFact:
    conversation_id: int
    channel: str
    operator: str | None
    at: datetime


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Figures:
    opened: int = 0
    resolved: int = 0
    #: seconds, wall clock and business hours
    first_response: list[float] = field(default_factory=list)
    first_response_business: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    resolution_business: list[float] = field(default_factory=list)
    faq_answered: int = 0
    solved_by_faq: int = 0
    breaches: int = 0
    csat: list[int] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = getattr(self, name)
        return statistics.median(values) if values else None

    def p90(self, name: str) -> float | None:
        return percentile(getattr(self, name), 0.9)

    @property
    def csat_average(self) -> float | None:
        return statistics.fmean(self.csat) if self.csat else None

    @property
    def faq_share(self) -> float | None:
        return self.faq_answered / self.opened if self.opened else None


@dataclass
class Report:
    since: datetime
    until: datetime
    zone: str
    by: GroupBy
    total: Figures
    groups: dict[str, Figures]
    #: conversations opened per hour of the day (desk time), 0-23
    by_hour: list[int]
    #: first responses (wall clock) per bucket of ``BUCKETS``
    response_histogram: list[int]
    #: CSAT average and count per operator, whatever ``by`` is
    csat_by_operator: dict[str, tuple[float, int]]


def build_report(
    facts: Iterable[Fact],
    breaches: Iterable[BreachFact],
    *,
    since: datetime,
    until: datetime,
    schedule: Schedule,
    by: GroupBy,
    names: dict[str, str] | None = None,
) -> Report:
    """The figures for [since, until), in total and per group."""
    names = names or {}
    zone = schedule.zone

    def day(at: datetime) -> str:
        return at.astimezone(zone).date().isoformat()

    def operator(op: str | None) -> str:
        return names.get(op, op) if op else UNASSIGNED

    def keys(fact: Fact, at: datetime) -> str:
        if by == "operator":
            return operator(fact.operator)
        if by == "channel":
            return fact.channel
        return day(at)

    def inside(at: datetime | None) -> bool:
        return at is not None and since <= at < until

    total = Figures()
    groups: dict[str, Figures] = defaultdict(Figures)
    by_hour = [0] * 24
    histogram = [0] * len(BUCKETS)
    csat_by_operator: dict[str, list[int]] = defaultdict(list)

    def both(key: str) -> tuple[Figures, Figures]:
        return total, groups[key]

    for fact in facts:
        if inside(fact.created_at):
            by_hour[fact.created_at.astimezone(zone).hour] += 1
            for figures in both(keys(fact, fact.created_at)):
                figures.opened += 1
                if fact.faq_answered:
                    figures.faq_answered += 1
                    if fact.resolved_at is not None and not fact.operator_replied:
                        figures.solved_by_faq += 1
            if fact.first_response_at is not None:
                wall = (fact.first_response_at - fact.created_at).total_seconds()
                business = schedule.between(fact.created_at, fact.first_response_at)
                histogram[next(i for i, (top, _) in enumerate(BUCKETS) if wall < top)] += 1
                for figures in both(keys(fact, fact.created_at)):
                    figures.first_response.append(wall)
                    figures.first_response_business.append(business.total_seconds())
        if inside(fact.resolved_at):
            assert fact.resolved_at is not None
            took = (fact.resolved_at - fact.created_at).total_seconds()
            took_business = schedule.between(fact.created_at, fact.resolved_at).total_seconds()
            for figures in both(keys(fact, fact.resolved_at)):
                figures.resolved += 1
                figures.resolution.append(took)
                figures.resolution_business.append(took_business)
        if fact.csat_score is not None and inside(fact.csat_rated_at):
            assert fact.csat_rated_at is not None
            for figures in both(keys(fact, fact.csat_rated_at)):
                figures.csat.append(fact.csat_score)
            csat_by_operator[operator(fact.operator)].append(fact.csat_score)
    for breach in breaches:
        if not inside(breach.at):
            continue
        key = (
            operator(breach.operator)
            if by == "operator"
            else breach.channel
            if by == "channel"
            else day(breach.at)
        )
        for figures in both(key):
            figures.breaches += 1
    return Report(
        since=since,
        until=until,
        zone=zone.key,
        by=by,
        total=total,
        groups=dict(sorted(groups.items())),
        by_hour=by_hour,
        response_histogram=histogram,
        csat_by_operator={
            name: (statistics.fmean(scores), len(scores))
            for name, scores in sorted(csat_by_operator.items())
        },
    )


# -- reading it ------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    return "-" if seconds is None else humanize(timedelta(seconds=round(seconds)))


def share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


COLUMNS: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("opened", lambda f: str(f.opened)),
    ("resolved", lambda f: str(f.resolved)),
    ("1st resp med", lambda f: duration(f.median("first_response"))),
    ("1st resp p90", lambda f: duration(f.p90("first_response"))),
    ("1st resp med (bh)", lambda f: duration(f.median("first_response_business"))),
    ("resolution med", lambda f: duration(f.median("resolution"))),
    ("resolution p90", lambda f: duration(f.p90("resolution"))),
    ("resolution med (bh)", lambda f: duration(f.median("resolution_business"))),
    ("FAQ answered", lambda f: share(f.faq_share)),
    ("solved by FAQ", lambda f: str(f.solved_by_faq)),
    ("SLA breaches", lambda f: str(f.breaches)),
    (
        "CSAT",
        lambda f: f"{f.csat_average:.2f} ({len(f.csat)})" if f.csat_average is not None else "-",
    ),
)


def rows(report: Report) -> list[list[str]]:
    out = [
        [name, *(column(figures) for _, column in COLUMNS)]
        for name, figures in report.groups.items()
    ]
    out.append(["total", *(column(report.total) for _, column in COLUMNS)])
    return out


def render_text(report: Report) -> str:
    zone = report.zone
    first = report.since
    last = report.until - timedelta(microseconds=1)
    lines = [
        f"Support report {local_date(first, zone)} .. {local_date(last, zone)} ({zone}), "
        f"by {report.by}",
        "",
        table([report.by, *(name for name, _ in COLUMNS)], rows(report)),
        "",
        "(bh): counted in business hours. First response: the first operator reply the "
        "customer received; automatic answers do not count.",
    ]
    return "\n".join(lines)


def local_date(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


async def load_report(
    repository: Repository,
    config: Config,
    *,
    since: datetime,
    until: datetime,
    by: GroupBy,
) -> Report:
    async with repository.transaction() as tx:
        conversations = await tx.report_conversations(since, until)
        answered_by_faq, replied = await tx.report_replies(since, until)
        breaches = await tx.report_breaches(since, until)
    facts = [
        Fact(
            conversation_id=c.id,  # type: ignore[arg-type]
            channel=c.channel,
            operator=c.assignee_id,
            created_at=c.created_at,
            first_response_at=c.first_response_at,
            resolved_at=c.resolved_at,
            csat_score=c.csat_score,
            csat_rated_at=c.csat_rated_at,
            faq_answered=c.id in answered_by_faq,
            operator_replied=c.id in replied,
        )
        for c in conversations
    ]
    return build_report(
        facts,
        [
            BreachFact(b.conversation_id, channel, b.operator_id, b.breached_at)
            for b, channel in breaches
        ],
        since=since,
        until=until,
        schedule=config.core.schedule,
        by=by,
        names={op.id: op.name for op in config.operators},
    )
