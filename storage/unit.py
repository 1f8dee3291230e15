"""A transaction's unit of work: what it has read, and what it will write.

SQLAlchemy's session would write each new row, and each change to it, as it came:
an INSERT, then UPDATEs, a statement each. This keeps a batch's new rows (messages,
events, outbox rows, deadlines, threads, refs) and changed conversations, and
writes each table's in one statement at commit (``_write_pending``); gives rows
their ids before they are written (``new_id``: from PostgreSQL's sequence in
blocks, or SQLite's next id), so rows that point to them can be built at once; and
reads ahead, in a few statements, what a batch of inbound events will each ask
(``preload``). ``Transaction`` (storage/repository.py) is the queries on top.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import statements as sql
from storage.models import (
    FINISHED_STATUSES,
    Conversation,
    Customer,
    CustomerIdentity,
    Message,
    OperatorState,
    WorkspaceThread,
)
from storage.tally import Tally
from storage.types import utcnow

log = logging.getLogger(__name__)


def _by_first(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for first, second in keys:
        grouped.setdefault(first, []).append(second)
    return grouped


class UnitOfWork:
    """The bookkeeping of one transaction; see the module's docstring."""

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
        #: conversation id -> its customer's earlier conversations (``HistoryQueries``)
        self._earlier: dict[int, list[Any]] = {}
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
