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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import and_, func, inspect, or_
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import statements as sql
from storage.database import Database
from storage.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Deadline,
    Direction,
    InboundEvent,
    Message,
    MessageRef,
    OperatorState,
    Presence,
    SlaBreach,
    WorkspaceThread,
    build,
)
from storage.outbox_queue import OutboxQueue
from storage.session import GatewaySession
from storage.tally import Tally, load_part, queue_part
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


class Transaction(OutboxQueue):
    """One unit of work (``UnitOfWork``) and the queries the core makes in it (the
    outbox's in ``OutboxQueue``). Obtain it from ``Repository.transaction()``."""

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

    # -- customers --------------------------------------------------------------

    async def identity(
        self, channel: str, external_id: str
    ) -> tuple[CustomerIdentity, Customer] | None:
        """The identity and its customer, locked: two messages of one customer must
        not both open a conversation."""
        created = self._new_identities.get((channel, external_id))
        if created is not None:
            return created
        known, found = self._take(("identity", channel, external_id))
        if known:
            return found
        result = await self.session.exec(
            sql.IDENTITY, params={"channel": channel, "external_id": external_id}
        )
        return result.first()

    def add_customer(self, customer: Customer, identity: CustomerIdentity) -> None:
        """A new customer (its id from ``new_id``) and the identity they wrote from:
        a second message of theirs in this transaction finds them here."""
        assert customer.id is not None
        self.add(customer, identity)
        self.new_customers.add(customer.id)
        self._new_identities[(identity.channel, identity.external_id)] = (identity, customer)

    async def customer_identity(self, customer_id: int, channel: str) -> CustomerIdentity | None:
        if (customer_id, channel) in self._identities:
            return self._identities[(customer_id, channel)]
        result = await self.session.exec(
            select(CustomerIdentity).where(
                CustomerIdentity.customer_id == customer_id, CustomerIdentity.channel == channel
            )
        )
        return result.first()

    async def customer(self, customer_id: int) -> Customer:
        # one already loaded in this transaction is as it is now: no query
        customer = await self.session.get(Customer, customer_id)
        if customer is None:
            raise LookupError(f"no customer {customer_id}")
        return customer

    async def preload_cards(self, conversation_ids: Iterable[int]) -> None:
        """What the header cards of these conversations show, in one statement: the
        conversations, their customers and the identities they wrote from. A batch
        of new conversations' headers asked for them three statements each."""
        ids = sorted(set(conversation_ids))
        if not ids:
            return
        found = (await self.session.exec(sql.CARDS_IN, params={"ids": ids})).all()
        for conversation, customer, identity in found:
            key = (conversation.customer_id, conversation.channel)
            if self._identities.get(key) is None:
                self._identities[key] = identity  # the oldest first (None: none)
            # the session holds what it loaded weakly: held here, ``conversation``
            # and ``customer`` find them in it for the rest of the transaction
            self._held.extend((conversation, customer))

    # -- conversations ----------------------------------------------------------

    async def conversation(
        self, conversation_id: int, *, lock: bool = False
    ) -> Conversation | None:
        if not lock:
            # one already loaded in this transaction is as it is now: no query
            return await self.session.get(Conversation, conversation_id)
        return (
            await self.session.exec(sql.CONVERSATION_LOCKED, params={"id": conversation_id})
        ).first()

    async def latest_conversation(
        self, customer_id: int, channel: str, chat_id: str
    ) -> Conversation | None:
        if customer_id in self.new_customers:
            return self._opened.get((customer_id, channel, chat_id))
        known, found = self._take(("latest", customer_id, channel, chat_id))
        if known:
            return found
        result = await self.session.exec(
            sql.LATEST_CONVERSATION,
            params={"customer_id": customer_id, "channel": channel, "chat_id": chat_id},
        )
        return result.first()

    def opened(self, conversation: Conversation) -> None:
        """A new conversation (its id from ``new_id``), written with the flush: the
        latest of its chat."""
        assert conversation.id is not None
        self.add(conversation)
        key = (conversation.customer_id, conversation.channel, conversation.chat_id)
        self._opened[key] = conversation

    async def last_assignee(self, customer_id: int, since: datetime) -> str | None:
        """Who last helped this customer, if their conversation ended after ``since``."""
        if customer_id in self.new_customers:
            return None
        result = await self.session.exec(
            select(Conversation.assignee_id)
            .where(
                Conversation.customer_id == customer_id,
                col(Conversation.status).in_(FINISHED_STATUSES),
                col(Conversation.assignee_id).is_not(None),
                col(Conversation.resolved_at) >= since,
            )
            .order_by(col(Conversation.resolved_at).desc())
            .limit(1)
        )
        return result.first()

    async def queue(self, limit: int | None = None) -> Sequence[Conversation]:
        stmt = (
            select(Conversation)
            .where(Conversation.status == ConversationStatus.QUEUED)
            .order_by(col(Conversation.queued_at), col(Conversation.id))
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.session.exec(stmt)).all()

    async def queue_position(self, conversation: Conversation) -> int:
        """1 for the head of the queue.

        The queue is counted once per transaction (``Tally``); a conversation queued
        after everything the count saw (a new one: the usual case) is placed by it.
        One queued earlier is counted for itself."""
        me = queue_part(inspect(conversation).dict)
        assert me is not None and me[0] is not None
        if self._queue is None:
            await self.session.flush()
            count, last = (await self.session.exec(sql.QUEUE_SUMMARY)).one()
            self._queue = (int(count), last, Tally(self.session, queue_part))
        count, last, tally = self._queue
        if last is not None and me[0] <= last:
            return await self._queue_position_counted(conversation)
        ahead = count
        for before, now in tally.changes():
            # everything the count saw was queued before this one
            ahead -= before is not None
            ahead += now is not None and now < me  # type: ignore[operator]
        return ahead + 1

    async def _queue_position_counted(self, conversation: Conversation) -> int:
        ahead = await self.session.exec(
            select(func.count())
            .select_from(Conversation)
            .where(
                Conversation.status == ConversationStatus.QUEUED,
                or_(
                    col(Conversation.queued_at) < conversation.queued_at,
                    and_(
                        col(Conversation.queued_at) == conversation.queued_at,
                        col(Conversation.id) < conversation.id,
                    ),
                ),
            )
        )
        return int(ahead.one()) + 1

    async def loads(self) -> dict[str, int]:
        """Active conversations per operator: the capacity that routing counts. Read
        once per transaction, then kept up to date with its changes (``Tally``)."""
        if self._loads is None:
            await self.session.flush()
            result = await self.session.exec(sql.LOADS)
            counted = {operator_id: int(n) for operator_id, n in result.all() if operator_id}
            self._loads = (counted, Tally(self.session, load_part))
        counted, tally = self._loads
        loads = dict(counted)
        for before, now in tally.changes():
            if before is not None:
                loads[cast(str, before)] -= 1
            if now is not None:
                loads[cast(str, now)] = loads.get(cast(str, now), 0) + 1
        return {operator_id: n for operator_id, n in loads.items() if n}

    # -- workspace threads ------------------------------------------------------

    async def thread(self, conversation_id: int, workspace: str) -> WorkspaceThread | None:
        if (conversation_id, workspace) in self._threads:
            return self._threads[(conversation_id, workspace)]
        if self._opened_threads:
            await self._write_pending()
        result = await self.session.exec(
            sql.THREAD, params={"conversation_id": conversation_id, "workspace": workspace}
        )
        return result.first()

    async def threads_of(
        self, places: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], WorkspaceThread]:
        """``thread`` for many (conversation id, workspace) pairs in one query; a pair
        with no thread yet is left out."""
        wanted = set(places)
        if not wanted:
            return {}
        if self._new_threads or self._opened_threads:
            await self._write_pending()
        result = await self.session.exec(
            sql.THREADS_IN,
            params={
                "conversation_ids": sorted({conversation_id for conversation_id, _ in wanted}),
                "workspaces": sorted({workspace for _, workspace in wanted}),
            },
        )
        found = {(t.conversation_id, t.workspace): t for t in result.all()}
        # kept for ``thread``: nobody else writes a thread of ours meanwhile (the
        # unique constraint would stop them at commit)
        for key in wanted:
            self._threads[key] = found.get(key)
        return {key: thread for key, thread in found.items() if key in wanted}

    async def conversation_by_thread(self, workspace: str, thread_ref: str) -> Conversation | None:
        if self._new_threads:
            await self._write_pending()
        result = await self.session.exec(
            select(Conversation)
            .join(WorkspaceThread, col(WorkspaceThread.conversation_id) == Conversation.id)
            .where(WorkspaceThread.workspace == workspace, WorkspaceThread.thread_ref == thread_ref)
        )
        return result.first()

    def thread_opened(
        self, conversation_id: int, workspace: str, thread_ref: str, header_ref: str | None
    ) -> None:
        """A thread the platform has just made, recorded with the transaction's other
        pending rows in one upsert (no read: this runs once per new conversation,
        beside the delivery's own record)."""
        self._threads.pop((conversation_id, workspace), None)  # read again if asked
        self._opened_threads.append(
            {
                "conversation_id": conversation_id,
                "workspace": workspace,
                "thread_ref": thread_ref,
                "header_ref": header_ref,
                "header_card": None,
            }
        )

    async def save_thread(
        self,
        conversation_id: int,
        workspace: str,
        thread_ref: str | None,
        header_ref: str | None,
        header_card: dict[str, Any] | None,
    ) -> None:
        """Record where the thread is and what its header shows now. A new thread is
        written with the transaction's other pending rows: as an ORM object it took
        a statement for its id and a flush of its own."""
        key = (conversation_id, workspace)
        existing = await self.thread(conversation_id, workspace)
        if existing is None:
            if thread_ref is None:
                return
            existing = self._threads[key] = build(
                WorkspaceThread,
                conversation_id=conversation_id,
                workspace=workspace,
                thread_ref=thread_ref,
            )
            self._new_threads.add(key)
        existing.thread_ref = thread_ref or existing.thread_ref
        existing.header_ref = header_ref or existing.header_ref
        existing.header_card = header_card
        if key not in self._new_threads:
            self.session.add(existing)
            self._threads[key] = existing

    # -- messages ---------------------------------------------------------------

    async def add_message(self, message: Message) -> None:
        """Give a new message its id now and write it with the transaction's other
        pending rows: a batch's messages go in one executemany, not a statement
        each (SQLAlchemy spends ~100 µs on a statement, SQLite ~10 µs on a row).

        Changes made to ``message`` before it is written are written with it; after,
        it is in the session as if it had been read, and changes are updates."""
        message.id = await self.new_id(Message)
        self._messages.append(message)
        self.new_messages.add(message.id)

    async def message(self, message_id: int) -> Message | None:
        await self._write_pending()
        return await self.session.get(Message, message_id)

    async def message_by_ref(self, place: str, chat_id: str, external_id: str) -> Message | None:
        await self._write_pending()
        result = await self.session.exec(
            sql.MESSAGE_BY_REF,
            params={"place": place, "chat_id": chat_id, "external_id": external_id},
        )
        return result.first()

    async def refs(self, message_id: int, place: str, side: str) -> Sequence[MessageRef]:
        await self._write_pending()
        result = await self.session.exec(
            sql.REFS, params={"message_id": message_id, "place": place, "side": side}
        )
        return result.all()

    async def refs_of(
        self, message_ids: Sequence[int], place: str, side: str
    ) -> dict[int, list[Any]]:
        """``refs`` of many messages in one query: message id -> its refs, in order,
        each with ``chat_id`` and ``external_id`` (rows, not entities)."""
        await self._write_pending()
        result = await self.session.exec(
            sql.REFS_OF, params={"message_ids": list(message_ids), "place": place, "side": side}
        )
        found: dict[int, list[Any]] = {}
        for ref in cast(Sequence[Any], result.all()):
            found.setdefault(ref.message_id, []).append(ref)
        return found

    async def add_refs(
        self, message_id: int, place: str, side: str, chat_id: str, external_ids: Iterable[str]
    ) -> None:
        """One statement for all: a ref already known (the same platform message seen
        twice) is kept as it is."""
        await self.add_ref_rows(
            {
                "message_id": message_id,
                "place": place,
                "side": side,
                "chat_id": chat_id,
                "external_id": external_id,
            }
            for external_id in dict.fromkeys(external_ids)
        )

    async def add_ref_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Refs of many messages (dicts of ``MessageRef``'s columns); one already
        known (the same platform message seen twice) is kept as it is. They are
        written with the transaction's other pending rows (``_write_pending``)."""
        self._refs.extend(rows)

    async def message_by_external_id(self, place: str, external_id: str) -> Message | None:
        """A message by an id that is unique on its platform alone (an email Message-ID)."""
        await self._write_pending()
        result = await self.session.exec(
            select(Message)
            .join(MessageRef, col(MessageRef.message_id) == Message.id)
            .where(MessageRef.place == place, MessageRef.external_id == external_id)
            .limit(1)
        )
        return result.first()

    async def conversation_refs(
        self, conversation_id: int, place: str, chat_id: str, limit: int = 20
    ) -> list[tuple[str, str]]:
        """Platform ids of a conversation's messages in one chat, with each message's
        direction, oldest first (the last ``limit``): what a reply there refers to."""
        await self._write_pending()
        result = await self.session.exec(
            select(MessageRef.external_id, Message.direction)
            .join(Message, col(Message.id) == MessageRef.message_id)
            .where(
                Message.conversation_id == conversation_id,
                MessageRef.place == place,
                MessageRef.chat_id == chat_id,
                MessageRef.side == "customer",
            )
            .order_by(col(MessageRef.id).desc())
            .limit(limit)
        )
        return [(ref, str(direction)) for ref, direction in reversed(result.all())]

    async def count_authored(self, conversation_id: int, author_prefix: str) -> int:
        """Messages in a conversation whose author_id starts with ``author_prefix``."""
        result = await self.session.exec(
            select(func.count()).where(
                Message.conversation_id == conversation_id,
                col(Message.author_id).startswith(author_prefix),
            )
        )
        return int(result.one())

    async def messages(self, conversation_id: int) -> Sequence[Message]:
        result = await self.session.exec(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.id))
        )
        return result.all()

    # -- operators --------------------------------------------------------------

    async def operator_states(self, *, lock: bool = False) -> dict[str, OperatorState]:
        """All operator states; locked, they serialise assignment across processes.
        Read once per transaction (routing a burst's new conversations asked for them
        a few times each)."""
        if self._states is not None and (self._states[1] or not lock):
            return dict(self._states[0])
        stmt = select(OperatorState).order_by(col(OperatorState.operator_id))
        if lock:
            stmt = stmt.with_for_update()
        states = {row.operator_id: row for row in (await self.session.exec(stmt)).all()}
        self._states = (states, lock)
        return dict(states)

    async def ensure_operators(self, operator_ids: Iterable[str], initial: Presence) -> None:
        existing = await self.operator_states()
        for operator_id in operator_ids:
            if operator_id not in existing:
                self.session.add(OperatorState(operator_id=operator_id, presence=initial))
                self._states = None

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
    ) -> Sequence[tuple[SlaBreach, str]]:
        result = await self.session.exec(
            select(SlaBreach, Conversation.channel)
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
