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

Each figure is credited to the operator who earned it: a first response to whoever
wrote it, a resolution to whoever closed it (none when it closed by itself), a rating
to whoever had the conversation when it was closed, an SLA breach to whoever had it
then, an opened conversation to its (last) assignee. A conversation counts for its
channel, each of its tags, and the day (in the desk's time zone) on which each thing
happened. Business-hours figures leave out waits that fell wholly outside business
hours. Percentiles interpolate linearly between ranks.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from gateway.config import Config
from gateway.hours import Schedule
from storage import Repository

GroupBy = Literal["operator", "channel", "day", "tag"]
UNASSIGNED = "(no operator)"
NO_TAG = "(no tag)"

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
    #: who has it (or had it last): its "opened" count and SLA breaches
    operator: str | None
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    csat_score: int | None
    csat_rated_at: datetime | None
    faq_answered: bool
    operator_replied: bool
    #: who wrote the first reply the customer received, who closed it, who had it
    #: when it was closed (the rating is theirs)
    first_responder: str | None = None
    resolved_by: str | None = None
    csat_operator: str | None = None
    csat_comment: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class BreachFact:
    conversation_id: int
    channel: str
    operator: str | None
    at: datetime
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comment:
    """A customer's comment on their rating, for the team to read."""

    conversation_id: int
    at: datetime
    score: int
    operator: str
    text: str


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
    #: seconds, wall clock and business hours (a wait wholly outside business hours
    #: has no business-hours figure: "0s" would read as an instant answer)
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
    #: the same figures per tag (a conversation counts under each of its tags)
    by_tag: dict[str, Figures] = field(default_factory=dict)
    #: the customers' comments on their ratings, newest first
    comments: list[Comment] = field(default_factory=list)
    #: only conversations with this tag were counted
    tag: str | None = None


class _Grouping:
    """Figures for one way of grouping: ``keys`` says which groups a conversation
    counts in, for the figure being counted and the operator credited with it."""

    def __init__(
        self, keys: Callable[[Fact | BreachFact, datetime, str | None], list[str]]
    ) -> None:
        self.keys = keys
        self.groups: dict[str, Figures] = defaultdict(Figures)

    def __call__(
        self, fact: Fact | BreachFact, at: datetime, credited: str | None
    ) -> list[Figures]:
        return [self.groups[key] for key in self.keys(fact, at, credited)]


def build_report(
    facts: Iterable[Fact],
    breaches: Iterable[BreachFact],
    *,
    since: datetime,
    until: datetime,
    schedule: Schedule,
    by: GroupBy,
    names: dict[str, str] | None = None,
    tag: str | None = None,
) -> Report:
    """The figures for [since, until), in total, per group and per tag.

    Each figure counts for the operator who earned it: the first response for its
    writer, the resolution for who closed it, the rating for who had it then."""
    names = names or {}
    zone = schedule.zone

    def day(at: datetime) -> str:
        return at.astimezone(zone).date().isoformat()

    def operator(op: str | None) -> str:
        return names.get(op, op) if op else UNASSIGNED

    def grouped(fact: Fact | BreachFact, at: datetime, credited: str | None) -> list[str]:
        if by == "operator":
            return [operator(credited)]
        if by == "channel":
            return [fact.channel]
        if by == "tag":
            return list(fact.tags) or [NO_TAG]
        return [day(at)]

    def tagged(fact: Fact | BreachFact, at: datetime, credited: str | None) -> list[str]:
        return list(fact.tags)

    def inside(at: datetime | None) -> bool:
        return at is not None and since <= at < until

    total = _Grouping(lambda *_: ["total"])
    groups, tags = _Grouping(grouped), _Grouping(tagged)

    def counting(fact: Fact | BreachFact, at: datetime, credited: str | None) -> list[Figures]:
        return [*total(fact, at, credited), *groups(fact, at, credited), *tags(fact, at, credited)]

    by_hour = [0] * 24
    histogram = [0] * len(BUCKETS)
    csat_by_operator: dict[str, list[int]] = defaultdict(list)
    comments: list[Comment] = []
    for fact in facts:
        if tag is not None and tag not in fact.tags:
            continue
        if inside(fact.created_at):
            by_hour[fact.created_at.astimezone(zone).hour] += 1
            for figures in counting(fact, fact.created_at, fact.operator):
                figures.opened += 1
                if fact.faq_answered:
                    figures.faq_answered += 1
                    if fact.resolved_at is not None and not fact.operator_replied:
                        figures.solved_by_faq += 1
            if fact.first_response_at is not None:
                wall = (fact.first_response_at - fact.created_at).total_seconds()
                business = schedule.between(fact.created_at, fact.first_response_at)
                histogram[next(i for i, (top, _) in enumerate(BUCKETS) if wall < top)] += 1
                for figures in counting(fact, fact.created_at, fact.first_responder):
                    figures.first_response.append(wall)
                    if business or not wall:
                        figures.first_response_business.append(business.total_seconds())
        if inside(fact.resolved_at):
            assert fact.resolved_at is not None
            took = (fact.resolved_at - fact.created_at).total_seconds()
            took_business = schedule.between(fact.created_at, fact.resolved_at).total_seconds()
            for figures in counting(fact, fact.resolved_at, fact.resolved_by):
                figures.resolved += 1
                figures.resolution.append(took)
                if took_business or not took:
                    figures.resolution_business.append(took_business)
        if fact.csat_score is not None and inside(fact.csat_rated_at):
            assert fact.csat_rated_at is not None
            for figures in counting(fact, fact.csat_rated_at, fact.csat_operator):
                figures.csat.append(fact.csat_score)
            csat_by_operator[operator(fact.csat_operator)].append(fact.csat_score)
            if fact.csat_comment:
                comments.append(
                    Comment(
                        fact.conversation_id,
                        fact.csat_rated_at,
                        fact.csat_score,
                        operator(fact.csat_operator),
                        fact.csat_comment,
                    )
                )
    for breach in breaches:
        if not inside(breach.at) or (tag is not None and tag not in breach.tags):
            continue
        for figures in counting(breach, breach.at, breach.operator):
            figures.breaches += 1
    return Report(
        since=since,
        until=until,
        zone=zone.key,
        by=by,
        total=total.groups["total"],
        groups=dict(sorted(groups.groups.items())),
        by_hour=by_hour,
        response_histogram=histogram,
        csat_by_operator={
            name: (statistics.fmean(scores), len(scores))
            for name, scores in sorted(csat_by_operator.items())
        },
        by_tag=dict(sorted(tags.groups.items())),
        comments=sorted(comments, key=lambda c: c.at, reverse=True),
        tag=tag,
    )


# -- reading it ------------------------------------------------------------------------


async def load_report(
    repository: Repository,
    config: Config,
    *,
    since: datetime,
    until: datetime,
    by: GroupBy,
    tag: str | None = None,
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
            first_responder=c.first_responder_id,
            resolved_by=c.resolved_by_id,
            csat_operator=c.csat_operator_id,
            csat_comment=c.csat_comment,
            tags=tuple(c.tags or ()),
        )
        for c in conversations
    ]
    return build_report(
        facts,
        [
            BreachFact(b.conversation_id, channel, b.operator_id, b.breached_at, tuple(tags or ()))
            for b, channel, tags in breaches
        ],
        since=since,
        until=until,
        schedule=config.core.schedule,
        by=by,
        names={op.id: op.name for op in config.operators},
        tag=tag,
    )
