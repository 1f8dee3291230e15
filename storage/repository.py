"""The async repository: every query the core makes, in one place.

The core opens a ``Transaction`` (one database transaction, committed on exit) and
calls the methods below on it; it never writes SQL itself. Methods that take row
locks do so with ``FOR UPDATE``, which PostgreSQL honours and SQLite does not need
(every SQLite transaction here starts with ``BEGIN IMMEDIATE`` and so holds the
database's single write lock).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import and_, func, inspect, or_, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
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
    OutboxRow,
    OutboxStatus,
    Presence,
    QueuedRow,
    SlaBreach,
    WorkspaceThread,
    build,
)
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


def _by_first(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for first, second in keys:
        grouped.setdefault(first, []).append(second)
    return grouped


class Transaction:
    """One unit of work. Obtain it from ``Repository.transaction()``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        #: ids of the messages inserted here (``add_message``): nothing outside this
        #: transaction can refer to them yet, so their copies need no lookup for a
        #: twin (``enqueue``)
        self.new_messages: set[int] = set()
        #: ids of the customers created here: they have no past conversations, so
        #: nothing need be read to find who last helped them (``last_assignee``) or
        #: their latest conversation: it is one opened here, or none
        #: (``latest_conversation``, ``opened``)
        self.new_customers: set[int] = set()
        self._opened: dict[tuple[int, str, str], Conversation] = {}
        self._new_identities: dict[tuple[str, str], tuple[CustomerIdentity, Customer]] = {}
        #: outbox dedupe keys written here (a twin in this transaction is not in the
        #: database yet when the rows are still unflushed)
        self._enqueued: set[str] = set()
        #: outbox rows and inbound dedupe keys not written yet: they go in one
        #: statement each (``_write_pending``), before anything reads their table
        #: and at commit; ORM objects would cost more to build than to store
        self._outbox: list[dict[str, Any]] = []
        self._events: dict[tuple[str, str], dict[str, Any]] = {}
        self._refs: list[dict[str, Any]] = []
        self._deadlines: list[dict[str, Any]] = []
        #: threads the platforms have just made (``thread_opened``)
        self._opened_threads: list[dict[str, Any]] = []
        #: outbox rows recorded sent here: one executemany, like the rows above
        self._sent: list[dict[str, Any]] = []
        #: outbox rows given back to the queue unsent (``hand_back``)
        self._handed_back: list[dict[str, Any]] = []
        #: conversations changed here, by id: the row ``sql.TOUCH`` writes (``touch``)
        self._touched: dict[int, dict[str, Any]] = {}
        #: outbox rows claimed here and not written yet, with their one lease's end
        #: (``_mark_claimed``)
        self._claims: tuple[datetime, list[int]] | None = None
        #: messages given their ids but not written yet (``add_message``)
        self._messages: list[Message] = []
        #: per table, the ids this transaction may still give, and how many blocks
        #: it took from PostgreSQL's sequence (``new_id``)
        self._ids: dict[type, tuple[Iterator[int], int]] = {}
        #: the operator states read here (the rows stay in the session, so what this
        #: transaction changes in them shows), and whether they were read locked
        self._states: tuple[dict[str, OperatorState], bool] | None = None
        #: the operators' loads and the queue, read once here (``loads``,
        #: ``queue_position``): what was read, and how to correct it since
        self._loads: tuple[dict[str, int], Tally] | None = None
        #: threads and customers' identities read for a batch of deliveries
        #: (``threads_of``, ``preload_cards``); None: known to have none
        self._threads: dict[tuple[int, str], WorkspaceThread | None] = {}
        #: threads recorded here and not written yet: their objects in ``_threads``
        #: are outside the session, written from their attributes with the other
        #: pending rows (as ``_messages`` are)
        self._new_threads: set[tuple[int, str]] = set()
        self._identities: dict[tuple[int, str], CustomerIdentity | None] = {}
        self._held: list[object] = []
        self._queue: tuple[int, datetime | None, Tally] | None = None
        #: conversations whose header card was queued here (True: the card that opens
        #: its thread): cards are rendered when sent, so one row per transaction does
        #: (``Relay.header``)
        self.headers: dict[int, bool] = {}
        #: destinations given new outbox rows here: their workers are woken on commit
        self.touched: set[str] = set()
        #: conversations changed here: their deadlines are planned again before commit
        self.changed: dict[int, Conversation] = {}
        #: conversations whose deadlines must be planned again, whatever changed
        self.replanned: set[int] = set()
        #: conversation id -> the plan inputs its deadlines were planned for here
        self.planned: dict[int, tuple[object, ...]] = {}
        #: deadlines acted on here, (conversation id, kind): never planned due again
        self.fired: set[tuple[int, str]] = set()
        #: answers read ahead for a batch of inbound events (``preload``), each given
        #: out once: the unit that asks may change what a second asking would see
        self._ahead: dict[tuple[Any, ...], Any] = {}

    def add(self, *rows: object) -> None:
        self.session.add_all(rows)
        for row in rows:
            # what was read ahead about a conversation, an identity or the operators
            # is stale once another one for the same key is added
            if isinstance(row, OperatorState):
                if self._states is None or self._states[0].get(row.operator_id) is not row:
                    self._states = None  # a new row: read them all again
            elif isinstance(row, CustomerIdentity):
                self._ahead.pop(("identity", row.channel, row.external_id), None)
                self._identities.pop((row.customer_id, row.channel), None)
            elif isinstance(row, Conversation) and self._ahead:
                self._ahead.pop(("latest", row.customer_id, row.channel, row.chat_id), None)

    def touch(self, conversation: Conversation, *, customer_wrote: datetime | None = None) -> None:
        """Record a change to a conversation (its deadlines follow before commit);
        ``customer_wrote``: its customer's newest message was written then.

        Its ``updated_at`` (and ``last_customer_message_at``) is written with the
        pending rows, one UPDATE for all: as an ORM change, every customer message
        made its conversation a row for the unit of work to diff and write (about
        22 µs each), which most often was the conversation's only change."""
        now = utcnow()
        if conversation.id is None:
            conversation.updated_at = now
            if customer_wrote is not None:
                conversation.last_customer_message_at = customer_wrote
        else:
            row = self._touched.setdefault(conversation.id, {"row_id": conversation.id})
            row["updated_at"] = now
            set_committed_value(conversation, "updated_at", now)
            if customer_wrote is not None:
                row["last_customer_message_at"] = customer_wrote
                set_committed_value(conversation, "last_customer_message_at", customer_wrote)
        if conversation not in self.session:
            # adding one the session holds already walks its relationships for nothing
            self.session.add(conversation)
        if conversation.id is not None:
            self.changed[conversation.id] = conversation

    def replan(self, conversation: Conversation) -> None:
        """Plan a conversation's deadlines again before commit: something they depend
        on changed that the conversation's own attributes do not show (its
        operator's presence, a deadline acted on, the config)."""
        if conversation.id is not None:
            self.changed[conversation.id] = conversation
            self.replanned.add(conversation.id)

    async def flush(self) -> None:
        """Write the session's changes. The pending rows (messages, outbox, refs,
        deadlines, dedupe keys, sent marks) wait: a flush per message wrote them one
        by one; they go at commit, in one statement each, or before anything reads
        their tables."""
        await self.session.flush()

    def _rows_pending(self) -> bool:
        """Whether rows other than claim marks wait to be written."""
        return bool(
            self._messages
            or self._deadlines
            or self._refs
            or self._outbox
            or self._events
            or self._sent
            or self._handed_back
            or self._new_threads
            or self._opened_threads
            or self._touched
        )

    async def _write_pending(self) -> None:
        """Each table's pending rows in one executemany (a statement built once: a
        multi-row VALUES would be compiled anew for each number of rows). The
        session's own new rows go first: these point to them (a message to its new
        conversation)."""
        if self._claims is not None:
            # first: a row claimed and then changed here is written in that order
            (lease_until, ids), self._claims = self._claims, None
            await self.session.exec(
                sql.MARK_CLAIMED,
                params={"ids": ids, "lease_until": lease_until},
            )
        if not self._rows_pending():
            return
        await self.session.flush()
        connection = await self.session.connection()
        if self._messages:
            # first: the refs below, and later messages' replies, point to these
            messages, self._messages = self._messages, []
            await sql.INSERT_MESSAGES.run(
                connection,
                [{name: getattr(m, name) for name in sql.MESSAGE_COLUMNS} for m in messages],
            )
            for message in messages:
                # in the session as if read: later changes to it are updates
                make_transient_to_detached(message)
                self.session.add(message)
        # out of the cache: read again if asked, a change is then an update of the row
        threads = [self._threads.pop(key) for key in self._new_threads]
        self._new_threads = set()
        batches = (
            (
                sql.INSERT_THREADS,
                [{name: getattr(t, name) for name in sql.THREAD_COLUMNS} for t in threads],
            ),
            (sql.INSERT_DEADLINES, self._deadlines),
            (sql.INSERT_REFS[connection.dialect.name], self._refs),
            (sql.OPEN_THREADS[connection.dialect.name], self._opened_threads),
            (sql.INSERT_OUTBOX, self._outbox),
            (sql.INSERT_EVENTS, list(self._events.values())),
            (sql.MARK_SENT, self._sent),
            (sql.HAND_BACK, self._handed_back),
            (sql.TOUCH, list(self._touched.values())),
        )
        self._deadlines, self._refs, self._outbox, self._events = [], [], [], {}
        self._opened_threads = []
        self._sent, self._handed_back, self._touched = [], [], {}
        for statement, rows in batches:
            await statement.run(connection, rows)

    async def finish(self) -> None:
        """Write what is still pending; the transaction then commits."""
        await self._write_pending()

    # -- reading ahead for a batch ------------------------------------------------

    async def preload(
        self,
        events: Iterable[tuple[str, str]],
        identities: Iterable[tuple[str, str]],
        chats: Iterable[tuple[str, str, str]],
    ) -> None:
        """Read, in a few statements, what a batch of inbound events will each ask
        for: their dedupe keys, their senders' identities (locked, as ``identity``
        locks them), and the latest conversation of each (sender, channel, chat).

        A statement costs SQLAlchemy far more than the database's work for one row,
        and a poll of 100 updates asked these three questions 100 times each. Each
        answer is given out once (``_take``); a second asking reads the database,
        which by then holds what the first asker wrote.
        """
        event_keys = set(events)
        for channel, ids in _by_first(event_keys).items():
            found = await self.session.exec(
                sql.EVENTS_IN, params={"channel": channel, "event_ids": ids}
            )
            have = {row.event_id: row for row in found}
            for event_id in ids:
                self._ahead[("event", channel, event_id)] = have.get(event_id)
        senders = set(identities)
        customers: dict[tuple[str, str], int] = {}
        for channel, ids in _by_first(senders).items():
            pairs = await self.session.exec(
                sql.IDENTITIES_IN, params={"channel": channel, "external_ids": ids}
            )
            known_pairs = {
                identity.external_id: (identity, customer) for identity, customer in pairs
            }
            for external_id in ids:
                known = known_pairs.get(external_id)
                self._ahead[("identity", channel, external_id)] = known
                if known is not None and known[1].id is not None:
                    customers[(channel, external_id)] = known[1].id
        chats = set(chats)
        wanted = {
            (customers[(channel, sender)], channel, chat_id)
            for channel, sender, chat_id in chats
            if (channel, sender) in customers
        }
        # chats with no open conversation: each will likely open one
        opening = len(chats) - len(wanted)
        if wanted:
            conversations = await self.session.exec(
                sql.LATEST_CONVERSATIONS_OF,
                params={"customer_ids": sorted({key[0] for key in wanted})},
            )
            latest = {(c.customer_id, c.channel, c.chat_id): c for c in conversations}
            for key in wanted:
                self._ahead[("latest", *key)] = latest.get(key)
                if latest.get(key) is None or latest[key].status in FINISHED_STATUSES:
                    opening += 1
        await self._reserve_ids(Conversation, opening)
        # every event stores a message at least; each unknown sender is a customer
        await self._reserve_ids(Message, len(event_keys))
        await self._reserve_ids(Customer, len(senders) - len(customers))
        await self._reserve_ids(CustomerIdentity, len(senders) - len(customers))

    @property
    def _dialect(self) -> str:
        bind = self.session.bind
        assert bind is not None, "a session bound to the engine"
        return bind.dialect.name

    async def _reserve_ids(self, model: type, count: int) -> None:
        """Take ``count`` ids from PostgreSQL's sequence in one statement, for the rows
        a batch will likely add (``new_id`` gives them first): conversations take
        theirs one by one otherwise, a round trip each. One left unused (a batch
        whose message reopened a conversation after all) is a gap in the numbers,
        as a rolled-back insert's is. SQLite needs none: its next id is one read."""
        if count < 1 or self._dialect == "sqlite":
            return
        ids, blocks = self._ids.get(model, (iter(()), 0))
        taken = await self._sequence_ids(model, count)
        self._ids[model] = (itertools.chain(ids, taken), blocks)

    async def _sequence_ids(self, model: type, count: int) -> list[int]:
        """``count`` ids from PostgreSQL's sequence of ``model``'s table, in order."""
        # (a Core statement would flush the session first: SQLAlchemy does so for
        # every one; nothing needs writing for an id)
        with self.session.no_autoflush:
            result = await self.session.exec(
                sql.NEXT_IDS[model],  # type: ignore[call-overload]
                params={"count": count},
            )
            return sorted(row[0] for row in result.all())

    def _take(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        if key in self._ahead:
            return True, self._ahead.pop(key)
        return False, None

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

    async def new_id(self, model: type) -> int:
        """An id for a new row of ``model``'s table (a message, conversation,
        customer or identity), given before the row is written:
        rows that point to it can be built at once, and a batch's new rows all go
        in the commit's flush, each table's in one executemany, with every change
        made to them meanwhile, instead of a flush (an INSERT, then an UPDATE per
        change) for each.

        Every new row of these tables must take its id here: on SQLite the next id
        is the table's largest plus one, and a row written without one would take
        an id given out here."""
        ids, blocks = self._ids.get(model, (iter(()), 0))
        given = next(ids, None)
        if given is None:
            if self._dialect == "sqlite":
                # the write lock is held: nobody else adds a row before commit (no
                # autoflush: nothing needs writing for an id)
                with self.session.no_autoflush:
                    last = (await self.session.exec(sql.LAST_IDS[model])).one()  # type: ignore[call-overload]
                ids = itertools.count(last[0] + 1)
            else:
                sizes = sql.ID_BLOCKS[model]
                ids = iter(await self._sequence_ids(model, sizes[min(blocks, len(sizes) - 1)]))
                blocks += 1
            given = next(ids)
        self._ids[model] = (ids, blocks)
        return given

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

    # -- outbox -----------------------------------------------------------------

    async def enqueue(
        self,
        *,
        destination: str,
        chat_key: str,
        conversation_id: int | None,
        message_id: int | None,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str,
        fresh: bool = False,
    ) -> bool:
        """Add a delivery unless one with the same dedupe key exists already.

        A copy of a message inserted in this transaction cannot have a twin outside
        it, nor can a ``fresh`` key (one just made up), so only this transaction's
        own keys are checked then. Rows are written in the order they were
        enqueued (their ids keep that order)."""
        if dedupe_key in self._enqueued:
            return False
        if not fresh and message_id not in self.new_messages:
            existing = await self.session.exec(
                select(OutboxRow.id).where(OutboxRow.dedupe_key == dedupe_key)
            )
            if existing.first() is not None:
                return False
        self._enqueued.add(dedupe_key)
        now = utcnow()
        self._outbox.append(
            {
                "destination": destination,
                "chat_key": chat_key,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "kind": kind,
                "payload": payload,
                "dedupe_key": dedupe_key,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_error": None,
                "receipt": None,
                "created_at": now,
                "sent_at": None,
            }
        )
        self.touched.add(destination)
        return True

    async def unsent_copies(self, message_id: int) -> Sequence[OutboxRow]:
        """The outbox rows carrying a message that have not been tried yet (locked)."""
        await self._write_pending()
        result = await self.session.exec(
            select(OutboxRow)
            .where(
                OutboxRow.message_id == message_id,
                OutboxRow.kind == "message",
                OutboxRow.status == OutboxStatus.PENDING,
                OutboxRow.attempts == 0,
            )
            .with_for_update()
        )
        return result.all()

    async def all_copies(self, message_id: int) -> Sequence[OutboxRow]:
        await self._write_pending()
        result = await self.session.exec(
            select(OutboxRow).where(OutboxRow.message_id == message_id, OutboxRow.kind == "message")
        )
        return result.all()

    async def outbox_row(self, row_id: int, *, lock: bool = False) -> OutboxRow | None:
        await self._write_pending()
        stmt = select(OutboxRow).where(OutboxRow.id == row_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.exec(stmt)).first()

    async def preload_sending(self, row_ids: Iterable[int]) -> None:
        """Read ahead, in one statement, what ``sending_rows`` will be asked about the
        rows of a batch of delivery outcomes (each recorded by its own unit)."""
        wanted = sorted(set(row_ids))
        if not wanted:
            return
        have = await self._sending(wanted)
        for row_id in wanted:
            self._ahead[("sending", row_id)] = have.get(row_id)

    async def sending_rows(self, row_ids: Sequence[int]) -> dict[int, str]:
        """Of these rows, those still ``sending``, locked: id -> destination.

        Columns, not entities: recording a delivery needs no more (what was sent
        comes with its outcome), and a batch of them costs one statement (none when
        ``preload_sending`` read them)."""
        rows: dict[int, str] = {}
        unknown = []
        for row_id in row_ids:
            known, found = self._take(("sending", row_id))
            if not known:
                unknown.append(row_id)
            elif found is not None:
                rows[row_id] = found
        if unknown:
            rows.update(await self._sending(unknown))
        return rows

    async def _sending(self, row_ids: list[int]) -> dict[int, str]:
        await self._write_pending()
        result = await self.session.exec(sql.SENDING_IN, params={"row_ids": row_ids})
        return {row_id: status for row_id, status in result.all() if row_id is not None}

    def mark_sent(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows delivered: each dict has ``id``, ``sent_at`` and ``receipt``. Written
        with the other pending rows: a batch's outcomes in one statement."""
        self._sent.extend(
            {"row_id": r["id"], "sent_at": r["sent_at"], "receipt": r["receipt"]} for r in rows
        )

    def hand_back(self, row_id: int, reason: str) -> None:
        """A row claimed but not sent, due again now: it was riding along in another
        row's delivery, and goes on its own from here. The attempt counts. Written
        with the other pending rows."""
        self._handed_back.append({"row_id": row_id, "due": utcnow(), "reason": reason[:2000]})

    async def claim_outbox(
        self,
        destination: str,
        *,
        limit: int,
        lease: timedelta,
        now: datetime | None = None,
        accept: Callable[[QueuedRow], bool] | None = None,
        scan: int | None = None,
        most: int | None = None,
    ) -> list[QueuedRow]:
        """Take up to ``limit`` due deliveries, at most the oldest one per chat,
        customers' chats first, then in the order they were queued.

        A row whose chat still has an older undelivered row waits for it: order per
        chat is kept even when a delivery is being retried. Expired leases (a
        process died mid-send) make their rows claimable again. With ``accept``,
        due rows are looked at ``scan`` at a time, up to ``most`` of them, and only
        those it allows are taken (the others stay as they are, unclaimed): chats
        that cannot send now are passed over for the ones behind them.
        """
        await self._write_pending()
        now = now or utcnow()
        page = max(limit, scan or 0) if accept else limit
        params: dict[str, Any] = {"destination": destination, "now": now, "limit": page}
        result = await self.session.exec(sql.CLAIM, params=params)
        found = result.all()
        if accept is None:
            rows = [QueuedRow(*columns[:-1]) for columns in found]
            self._mark_claimed(rows, now + lease)
            return rows
        rows = []
        looked = 0
        while True:
            for columns in found:
                if len(rows) == limit:
                    break
                row = QueuedRow(*columns[:-1])
                if accept(row):
                    rows.append(row)
            looked += len(found)
            if len(rows) == limit or len(found) < page or looked >= (most or page):
                break
            *_, lane = found[-1]
            params.update(after_lane=lane, after_id=found[-1][0])
            result = await self.session.exec(sql.CLAIM_AFTER, params=params)
            found = result.all()
        self._mark_claimed(rows, now + lease)
        return rows

    def _mark_claimed(self, rows: Sequence[QueuedRow], lease_until: datetime) -> None:
        """Mark claimed rows as being sent: on the rows read now, in the database by
        one statement for all the claim's rows (``_write_pending``)."""
        if not rows:
            return
        if self._claims is None:
            self._claims = (lease_until, [])
        # one lease for the whole claim (heads and followers), one statement
        lease_until, ids = self._claims
        for row in rows:
            row.status = OutboxStatus.SENDING
            row.lease_until = lease_until
            row.attempts += 1
            ids.append(row.id)

    async def claim_followers(
        self,
        heads: Sequence[QueuedRow],
        *,
        limit: int,
        lease: timedelta,
        accept: Callable[[QueuedRow], bool],
        now: datetime | None = None,
    ) -> dict[int, list[QueuedRow]]:
        """Also take, for each of ``heads``, up to ``limit`` rows right behind it in
        its chat that ``accept`` allows; one statement for all the heads.

        A chat's run stops at its first row that may not go now (not accepted, not
        due, being sent): order within the chat holds, and what is taken goes out
        together with the head, in one delivery. Returns head id -> its followers.
        """
        if not heads:
            return {}
        if self._rows_pending():
            await self._write_pending()
        # else the heads' claim marks wait, to be written with their followers' in
        # one statement: read here, a head is still pending, and it is passed over
        # all the same (the rows of its run up to it are skipped)
        now = now or utcnow()
        destination = heads[0].destination
        assert all(head.destination == destination for head in heads)
        result = await self.session.exec(
            sql.FOLLOWERS,
            params={
                "destination": destination,
                "chat_keys": sorted({head.chat_key for head in heads}),
                "run_length": limit + 1,  # the head is each chat's first
            },
        )
        runs: dict[str, list[QueuedRow]] = {}
        for columns in result.all():
            row = QueuedRow(*columns)
            runs.setdefault(row.chat_key, []).append(row)
        taken: dict[int, list[QueuedRow]] = {}
        for head in heads:
            followers = taken[head.id] = []
            for row in runs.get(head.chat_key, ()):
                if row.id <= head.id:
                    continue
                if (
                    len(followers) == limit
                    or row.status != OutboxStatus.PENDING
                    or row.next_attempt_at > now
                    or not accept(row)
                ):
                    break
                followers.append(row)
        self._mark_claimed([row for rows in taken.values() for row in rows], now + lease)
        return taken

    async def next_outbox_due(self, destination: str, now: datetime) -> datetime | None:
        """When the next retry falls due. Rows due already but waiting behind an
        older row of their chat are not counted: that row's completion wakes them."""
        await self._write_pending()
        result = await self.session.exec(
            select(func.min(OutboxRow.next_attempt_at)).where(
                OutboxRow.destination == destination,
                OutboxRow.status == OutboxStatus.PENDING,
                col(OutboxRow.next_attempt_at) > now,
            )
        )
        return result.one()

    async def renew_leases(self, row_ids: Sequence[int], until: datetime) -> int:
        """Extend the leases of rows this process is still sending (a heartbeat): a
        lease can then be short, and a dead process's rows are taken over soon."""
        if not row_ids:
            return 0
        await self._write_pending()
        result = await self.session.exec(
            update(OutboxRow)
            .where(
                col(OutboxRow.id).in_(list(row_ids)),
                col(OutboxRow.status) == OutboxStatus.SENDING,
            )
            .values(lease_until=until)
        )
        return int(result.rowcount or 0)

    async def release_leases(self) -> int:
        """Make every in-flight row claimable: for a single-process database at start."""
        await self._write_pending()
        result = await self.session.exec(
            update(OutboxRow)
            .where(col(OutboxRow.status) == OutboxStatus.SENDING)
            .values(status=OutboxStatus.PENDING, lease_until=None)
        )
        return int(result.rowcount or 0)

    # -- reporting ----------------------------------------------------------------

    async def count_by_status(self) -> dict[str, int]:
        result = await self.session.exec(
            select(Conversation.status, func.count()).group_by(Conversation.status)
        )
        return {str(status): int(count) for status, count in result.all()}

    async def outbox_counts(self) -> dict[tuple[str, str], int]:
        """(destination, status) -> rows, for everything not yet sent."""
        await self._write_pending()
        result = await self.session.exec(
            select(OutboxRow.destination, OutboxRow.status, func.count())
            .where(OutboxRow.status != OutboxStatus.SENT)
            .group_by(OutboxRow.destination, OutboxRow.status)
        )
        return {(dest, str(status)): int(count) for dest, status, count in result.all()}

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
