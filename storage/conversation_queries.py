"""Customers, conversations, their workspace threads and the operators' states:
the queries the core makes about who and which conversation. Part of
``Transaction`` (storage/repository.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, func, inspect, or_
from sqlmodel import col, select

from storage import statements as sql
from storage.models import (
    FINISHED_STATUSES,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    OperatorState,
    Presence,
    Priority,
    WorkspaceThread,
    build,
)
from storage.tally import Tally, load_part, queue_part
from storage.unit import UnitOfWork


class ConversationQueries(UnitOfWork):
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
            .order_by(
                col(Conversation.priority).desc(), col(Conversation.queued_at), col(Conversation.id)
            )
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.session.exec(stmt)).all()

    async def queue_position(self, conversation: Conversation) -> int:
        """1 for the head of the queue.

        The queue is counted once per transaction (``Tally``); a conversation queued
        after everything the count saw (a new one: the usual case) is placed by it.
        One queued earlier, or of a higher priority, is counted for itself."""
        me = queue_part(inspect(conversation).dict)
        assert me is not None and me[1] is not None
        if self._queue is None:
            await self.session.flush()
            count, last = (await self.session.exec(sql.QUEUE_SUMMARY)).one()
            self._queue = (int(count), last, Tally(self.session, queue_part))
        count, last, tally = self._queue
        if me[0] != -Priority.NORMAL or (last is not None and me[1] <= last):
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
                    col(Conversation.priority) > conversation.priority,
                    and_(
                        col(Conversation.priority) == conversation.priority,
                        or_(
                            col(Conversation.queued_at) < conversation.queued_at,
                            and_(
                                col(Conversation.queued_at) == conversation.queued_at,
                                col(Conversation.id) < conversation.id,
                            ),
                        ),
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
