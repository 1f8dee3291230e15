"""`gateway status`: the live picture an admin wants at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.config import Config
from gateway.privacy import retention_cutoffs
from storage import ConversationStatus, Repository
from storage.types import utcnow

OPEN_ORDER = ("new", "queued", "assigned", "waiting_customer", "snoozed")


@dataclass(frozen=True)
class OperatorLine:
    id: str
    name: str
    presence: str
    load: int
    max_chats: int
    on_shift: bool = True


@dataclass(frozen=True)
class Status:
    open_by_status: dict[str, int]
    queue_length: int
    oldest_wait: timedelta | None
    operators: list[OperatorLine]
    outbox: dict[tuple[str, str], int]
    #: "open" or "closed, opens Mon, Nov 30, 9:00 AM (Kyiv)"
    desk: str = "open"
    deadlines: int = 0
    #: deadlines already due: more than a few means no gateway is ticking
    overdue: int = 0
    next_deadline: tuple[str, timedelta] | None = None
    #: roles one process at a time holds: (role, holder, held for, last seen ago)
    roles: tuple[tuple[str, str, timedelta, timedelta], ...] = ()
    #: retention ([privacy]): days kept (messages, files; 0: until erased), and what
    #: is past them now (messages, files), which the next ticks purge
    retention: tuple[int, int] = (0, 0)
    purgeable: tuple[int, int] = (0, 0)


async def collect_status(repository: Repository, config: Config) -> Status:
    async with repository.transaction() as tx:
        counts = await tx.count_by_status()
        queue = await tx.queue(limit=1)
        states = await tx.operator_states()
        loads = await tx.loads()
        outbox = await tx.outbox_counts()
        now = utcnow()
        pending, overdue, upcoming = await tx.deadline_summary(now)
        holders = await tx.role_holders()
        cutoffs = retention_cutoffs(config)
        purgeable = await tx.purge_old(*cutoffs, dry=True) if any(cutoffs) else (0, 0)
    schedule = config.core.schedule
    desk = "open"
    if not schedule.is_open(now):
        when = schedule.opening_words(now, config.gateway.default_language, never="never")
        desk = f"closed, opens {when}"
    oldest: datetime | None = queue[0].queued_at if queue else None
    operators = [
        OperatorLine(
            id=op.id,
            name=op.name,
            presence=str(states[op.id].presence) if op.id in states else "unknown",
            load=loads.get(op.id, 0),
            max_chats=config.core.max_chats(op),
            on_shift=config.core.on_shift(op, now),
        )
        for op in config.operators
    ]
    return Status(
        open_by_status={s: counts.get(s, 0) for s in OPEN_ORDER},
        queue_length=counts.get(ConversationStatus.QUEUED, 0),
        oldest_wait=(utcnow() - oldest) if oldest else None,
        operators=operators,
        outbox=outbox,
        desk=desk,
        deadlines=pending,
        overdue=overdue,
        next_deadline=(upcoming.kind, upcoming.due_at - now) if upcoming else None,
        roles=tuple(
            (h.name, h.holder, now - h.since, max(timedelta(0), now - h.seen_at)) for h in holders
        ),
        retention=(config.core.privacy.keep_messages_days, config.core.privacy.keep_files_days),
        purgeable=purgeable,
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, rule, *body])


def humanize(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def render_status(status: Status) -> str:
    parts = [
        f"Desk: {status.desk}",
        "",
        "Open conversations",
        table(["status", "count"], [[s, str(n)] for s, n in status.open_by_status.items()]),
    ]
    wait = humanize(status.oldest_wait) if status.oldest_wait else "-"
    parts.append(f"\nQueue: {status.queue_length} waiting, oldest for {wait}")
    parts.append("\nOperators")
    if status.operators:
        parts.append(
            table(
                ["id", "name", "presence", "shift", "load"],
                [
                    [
                        o.id,
                        o.name,
                        o.presence,
                        "on" if o.on_shift else "off",
                        f"{o.load}/{o.max_chats}",
                    ]
                    for o in status.operators
                ],
            )
        )
    else:
        parts.append("(none configured: add [[operators]] to the config)")
    line = f"\nDeadlines: {status.deadlines} pending"
    if status.next_deadline:
        kind, left = status.next_deadline
        line += f", next {kind} in {humanize(left)}"
    if status.overdue:
        line += f"; {status.overdue} overdue (is a gateway running?)"
    parts.append(line)
    parts.append(retention_line(status))
    if status.roles:
        parts.append("\nRoles (one process each)")
        parts.append(
            table(
                ["role", "held by", "for", "last seen"],
                [
                    [role, holder, humanize(held), f"{humanize(seen)} ago"]
                    for role, holder, held, seen in status.roles
                ],
            )
        )
    parts.append("\nOutbox")
    if status.outbox:
        parts.append(
            table(
                ["destination", "state", "rows"],
                [[d, s, str(n)] for (d, s), n in sorted(status.outbox.items())],
            )
        )
    else:
        parts.append("(everything delivered)")
    return "\n".join(parts)


def retention_line(status: Status) -> str:
    """What [privacy] keeps, and what the next ticks will purge (a dry run)."""
    days_messages, days_files = status.retention
    if not days_messages and not days_files:
        return "Retention: messages and files are kept until erased ([privacy])"
    kept = ", ".join(
        f"{what} {days} days"
        for what, days in (("messages", days_messages), ("files", days_files))
        if days
    )
    messages, files = status.purgeable
    return (
        f"Retention: {kept}; past that now, purged on the next ticks: the words of "
        f"{messages} message(s), {files} file(s)"
    )
