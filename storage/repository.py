"""The async repository: every query the core makes, in one place.

The core opens a ``Transaction`` (one database transaction, committed on exit) and
calls the methods below on it; it never writes SQL itself. Methods that take row
locks do so with ``FOR UPDATE``, which PostgreSQL honours and SQLite does not need
(every SQLite transaction here starts with ``BEGIN IMMEDIATE`` and so holds the
database's single write lock).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import statements as sql
from storage.chat_queries import ChatQueries
from storage.conversation_queries import ConversationQueries
from storage.database import Database
from storage.deadline_queries import DeadlineQueries
from storage.history_queries import HistoryQueries
from storage.message_queries import MessageQueries
from storage.models import (
    InboundEvent,
    RoleHolder,
)
from storage.outbox_queue import OutboxQueue
from storage.privacy_queries import PrivacyQueries
from storage.session import GatewaySession
from storage.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")


#: PostgreSQL SQLSTATEs after which the whole transaction may simply be run again.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def is_retryable(exc: BaseException) -> bool:
    """A conflict with a concurrent transaction, not a bug: running again will do."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return sqlstate in _RETRYABLE_SQLSTATES
    return False


def is_database_failure(exc: BaseException) -> bool:
    """The database refused or failed a statement: the transaction cannot go on
    (PostgreSQL aborts it), unlike an error in the code around it."""
    return isinstance(exc, SQLAlchemyError)


class Transaction(
    OutboxQueue,
    ConversationQueries,
    MessageQueries,
    DeadlineQueries,
    HistoryQueries,
    PrivacyQueries,
    ChatQueries,
):
    """One unit of work (``UnitOfWork``) and the queries the core makes in it, by
    the records they are about (the outbox's, conversations', messages', deadlines'
    and reports'), and the inbound dedupe keys. Obtain it from
    ``Repository.transaction()``."""

    # -- inbound dedupe ---------------------------------------------------------

    async def find_event(self, channel: str, event_id: str) -> InboundEvent | None:
        pending = self._events.get((channel, event_id))
        if pending is not None:
            return InboundEvent(**pending)
        known, event = self._take(("event", channel, event_id))
        if known:
            return event
        result = await self.session.exec(
            sql.FIND_EVENT, params={"channel": channel, "event_id": event_id}
        )
        return result.first()

    def record_event(
        self,
        channel: str,
        event_id: str,
        conversation_id: int | None = None,
        message_id: int | None = None,
    ) -> None:
        """The dedupe key, written with the transaction: a concurrent twin (another
        process) conflicts on its unique index at commit, and its retry finds it."""
        self._events[(channel, event_id)] = {
            "channel": channel,
            "event_id": event_id,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "received_at": utcnow(),
        }

    # -- roles ---------------------------------------------------------------------

    async def role_holders(self) -> Sequence[RoleHolder]:
        """Who holds each role one process at a time has (``storage.leadership``)."""
        result = await self.session.exec(select(RoleHolder).order_by(col(RoleHolder.name)))
        return result.all()


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db
        # SQLite has one writer at a time. Queueing our own transactions here, instead
        # of letting them collide on the file lock, spares each loser SQLite's
        # busy-handler sleeps; other processes still wait on the busy timeout.
        self._sqlite_writer = asyncio.Lock() if db.is_sqlite else None

    async def ping(self) -> None:
        """A round trip to the database (raises when it does not answer)."""
        async with AsyncSession(self.db.engine) as session:
            await session.exec(select(1))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._sqlite_writer is None:
            async with self._session() as tx:
                yield tx
            return
        async with self._sqlite_writer, self._session() as tx:
            yield tx

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Transaction]:
        async with AsyncSession(
            self.db.engine, expire_on_commit=False, sync_session_class=GatewaySession
        ) as session:
            async with session.begin():
                tx = Transaction(session)
                yield tx
                await tx.finish()

    async def run(
        self,
        work: Callable[[Transaction], Awaitable[T]],
        *,
        attempts: int = 8,
        after_commit: Callable[[Transaction], None] | None = None,
    ) -> T:
        """Run ``work`` in a transaction, again from scratch after a conflict.

        ``work`` must be safe to repeat: it reads everything it decides on inside
        the transaction, so a second run sees what the concurrent winner committed
        (for example an inbound dedupe key, and returns early).
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as tx:
                    result = await work(tx)
            except Exception as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                log.debug("transaction conflict, retrying (attempt %d): %s", attempt, exc)
                await asyncio.sleep(random.uniform(0.001, 0.01) * attempt)
                continue
            if after_commit is not None:
                after_commit(tx)
            return result
        raise AssertionError("unreachable")
