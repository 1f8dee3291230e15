"""Deadlines (what is due when, and a summary for health checks) and the reports'
queries over a period. Part of ``Transaction`` (storage/repository.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import col, select

from storage.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Conversation,
    Deadline,
    Direction,
    Message,
    SlaBreach,
)
from storage.unit import UnitOfWork


class DeadlineQueries(UnitOfWork):
    # -- reports ----------------------------------------------------------------

    @staticmethod
    def _touching(since: datetime, until: datetime) -> Any:
        """Conversations that opened, closed or were rated in [since, until)."""
        return or_(
            and_(col(Conversation.created_at) >= since, col(Conversation.created_at) < until),
            and_(col(Conversation.resolved_at) >= since, col(Conversation.resolved_at) < until),
            and_(col(Conversation.csat_rated_at) >= since, col(Conversation.csat_rated_at) < until),
        )

    async def report_conversations(
        self, since: datetime, until: datetime
    ) -> Sequence[Conversation]:
        result = await self.session.exec(
            select(Conversation).where(self._touching(since, until)).order_by(col(Conversation.id))
        )
        return result.all()

    async def report_replies(self, since: datetime, until: datetime) -> tuple[set[int], set[int]]:
        """Of the conversations in the period: those an FAQ answer went to, and those
        an operator replied in."""
        result = await self.session.exec(
            select(Message.conversation_id, Message.direction, Message.author_id)
            .join(Conversation, col(Conversation.id) == Message.conversation_id)
            .where(
                self._touching(since, until),
                or_(
                    col(Message.direction) == Direction.OUT,
                    and_(
                        col(Message.direction) == Direction.AUTO,
                        col(Message.author_id).startswith("faq:"),
                        # the suggestion list and the "a person will answer" text
                        col(Message.author_id).not_in(("faq:person", "faq:?")),
                    ),
                ),
            )
            .distinct()
        )
        faq: set[int] = set()
        replied: set[int] = set()
        for conversation_id, direction, _ in result.all():
            (replied if direction == Direction.OUT else faq).add(conversation_id)
        return faq, replied

    async def report_breaches(
        self, since: datetime, until: datetime
    ) -> Sequence[tuple[SlaBreach, str, Sequence[str]]]:
        """The breaches in the period, with their conversation's channel and tags."""
        result = await self.session.exec(
            select(SlaBreach, Conversation.channel, Conversation.tags)
            .join(Conversation, col(Conversation.id) == SlaBreach.conversation_id)
            .where(col(SlaBreach.breached_at) >= since, col(SlaBreach.breached_at) < until)
            .order_by(col(SlaBreach.id))
        )
        return result.all()

    # -- deadlines ---------------------------------------------------------------

    async def deadlines(self, conversation_id: int) -> dict[str, Deadline]:
        """A conversation's pending deadlines by kind."""
        return (await self.deadlines_of([conversation_id]))[conversation_id]

    async def deadlines_of(self, conversation_ids: Iterable[int]) -> dict[int, dict[str, Deadline]]:
        """Pending deadlines by conversation and kind (one query for many)."""
        wanted = list(conversation_ids)
        found: dict[int, dict[str, Deadline]] = {i: {} for i in wanted}
        if wanted:
            await self._write_pending()
            result = await self.session.exec(
                select(Deadline).where(col(Deadline.conversation_id).in_(wanted))
            )
            for row in result.all():
                found[row.conversation_id][row.kind] = row
        return found

    async def delete(self, row: object) -> None:
        await self.session.delete(row)

    def add_deadline(self, conversation_id: int, kind: str, due_at: datetime) -> None:
        """A new deadline row, written with the transaction's other pending rows: as
        an ORM object, each cost a statement of its own (SQLite's RETURNING of its
        id is row by row), and nothing here needs its id."""
        self._deadlines.append({"conversation_id": conversation_id, "kind": kind, "due_at": due_at})

    async def next_due_deadline(self, now: datetime) -> Deadline | None:
        """The oldest deadline due by ``now`` that no other process holds (locked;
        SKIP LOCKED lets several gateway processes tick at once)."""
        await self._write_pending()
        result = await self.session.exec(
            select(Deadline)
            .where(col(Deadline.due_at) <= now)
            .order_by(col(Deadline.due_at), col(Deadline.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return result.first()

    async def open_conversations_of(self, operator_id: str) -> Sequence[Conversation]:
        result = await self.session.exec(
            select(Conversation).where(
                Conversation.assignee_id == operator_id,
                col(Conversation.status).in_(ACTIVE_STATUSES),
            )
        )
        return result.all()

    async def open_conversations(self, *, after: int, limit: int) -> Sequence[Conversation]:
        """Conversations not finished, by id after ``after`` (for a pass over all)."""
        result = await self.session.exec(
            select(Conversation)
            .where(
                col(Conversation.status).not_in(FINISHED_STATUSES),
                col(Conversation.id) > after,
            )
            .order_by(col(Conversation.id))
            .limit(limit)
        )
        return result.all()

    async def deadline_summary(self, now: datetime) -> tuple[int, int, Deadline | None]:
        await self._write_pending()
        """Pending deadlines, how many of them are overdue, and the next one ahead."""
        pending = (await self.session.exec(select(func.count()).select_from(Deadline))).one()
        overdue = (
            await self.session.exec(
                select(func.count()).select_from(Deadline).where(col(Deadline.due_at) <= now)
            )
        ).one()
        upcoming = (
            await self.session.exec(
                select(Deadline)
                .where(col(Deadline.due_at) > now)
                .order_by(col(Deadline.due_at))
                .limit(1)
            )
        ).first()
        return int(pending), int(overdue), upcoming
