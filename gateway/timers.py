"""Deadlines: what must happen to each open conversation, and when, kept as rows.

``plan`` says which deadlines a conversation should have, from its state and the
config alone. Every transaction that changes a conversation plans it again before
it commits (``sync``), so the rows always match the state: a restart loses no
timer, and a reply that lands just before a deadline removes it in the same
commit. APScheduler only ticks: ``run_due`` takes one due row at a time, locked
(``SKIP LOCKED`` on PostgreSQL) and deleted in the transaction that acts on it,
so each deadline is acted on once however many gateway processes tick.

Most changes leave a conversation's plan as it was (a customer's second message
while they already wait), so a conversation whose plan inputs (``PLAN_INPUTS``) are
as this process last committed them is not read and planned again: its rows are
that plan still (``_planned``). What the inputs leave out forces a plan
(``Transaction.replan``): the assignee's presence, a deadline acted on, the config.

An action must move the conversation's state on (a reminder records that it
reminded), so that its plan no longer has that deadline due; a plan that still
does after acting is a bug, logged and not looped on.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.dispatcher import Dispatcher
from gateway.lifecycle import move
from gateway.relay import Desk, Relay
from gateway.texts import render
from storage import (
    FINISHED_STATUSES,
    Conversation,
    ConversationStatus,
    Deadline,
    OperatorState,
    Presence,
    SlaBreach,
    Transaction,
)
from storage.types import utcnow

log = logging.getLogger(__name__)

#: when a deadline whose action failed is tried again
RETRY_FAILED = timedelta(minutes=5)
#: the conversation's attributes ``plan`` reads; the rest it reads (the assignee's
#: presence, the config, the time for a queued one) force a plan when they change
PLAN_INPUTS = (
    "status",
    "snoozed_until",
    "awaiting_since",
    "last_reply_at",
    "escalated_at",
    "reminded_at",
    "nudged_at",
    "assignee_id",
)
#: how many conversations' last committed plan inputs are remembered
PLANNED_KEPT = 20_000


class Kind(StrEnum):
    ROUTE = "route"  # queued while the desk is closed or nobody is on shift
    REMIND = "sla_remind"  # the assignee, shortly before the response deadline
    BREACH = "sla_breach"  # the response deadline itself
    NUDGE = "nudge"  # "we are still on it", to a waiting customer
    AUTO_CLOSE = "auto_close"  # the customer has not answered for hours
    WAKE = "wake"  # a snooze is over
    REQUEUE = "requeue"  # the assignee has been away too long


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def _inputs(conversation: Conversation) -> tuple[object, ...]:
    return tuple(getattr(conversation, name) for name in PLAN_INPUTS)


def _in_this_wait(marker: datetime | None, since: datetime | None) -> bool:
    """Whether an action recorded at ``marker`` (a reminder, a breach, a "still on
    it") happened during the customer's current wait, which began at ``since``."""
    return marker is not None and since is not None and marker >= since


class Timers:
    def __init__(self, desk: Desk, relay: Relay, dispatcher: Dispatcher) -> None:
        self.desk = desk
        self.relay = relay
        self.dispatcher = dispatcher
        self._actions: dict[str, Callable[[Transaction, Conversation], Awaitable[None]]] = {
            Kind.ROUTE: self._route,
            Kind.REMIND: self._remind,
            Kind.BREACH: self._breach,
            Kind.NUDGE: self._nudge,
            Kind.AUTO_CLOSE: self._auto_close,
            Kind.WAKE: self._wake,
            Kind.REQUEUE: self._requeue,
        }
        #: conversation id -> its plan inputs when this process last committed its
        #: deadlines (oldest first)
        self._planned: dict[int, tuple[object, ...]] = {}

    # -- planning -----------------------------------------------------------------------

    def _add(self, start: datetime, amount: timedelta) -> datetime | None:
        """``amount`` after ``start``, counting only business hours if the SLA says so."""
        core = self.desk.config.core
        if not core.sla.business_hours:
            return start + amount
        return core.schedule.add(start, amount)

    def plan(
        self, conversation: Conversation, now: datetime, assignee: OperatorState | None = None
    ) -> dict[str, datetime]:
        """The deadlines ``conversation`` should have; ``assignee`` is its operator's
        state (needed only when away operators' conversations are requeued)."""
        core = self.desk.config.core
        sla, status = core.sla, conversation.status
        wanted: dict[str, datetime | None] = {}
        if status in FINISHED_STATUSES:
            return {}
        if status == ConversationStatus.SNOOZED:
            return {Kind.WAKE: conversation.snoozed_until} if conversation.snoozed_until else {}
        if status == ConversationStatus.QUEUED:
            wanted[Kind.ROUTE] = self.dispatcher.next_routable(now)
        since = conversation.awaiting_since
        if since is not None:
            first = conversation.last_reply_at is None
            target = sla.first_response_minutes if first else sla.next_response_minutes
            escalated = conversation.escalated_at
            if target and escalated is not None and _in_this_wait(escalated, since):
                # missed already: the team hears again after each further period
                wanted[Kind.BREACH] = self._add(escalated, _minutes(target))
            elif target:
                wanted[Kind.BREACH] = self._add(since, _minutes(target))
                remind = sla.remind_before_minutes
                if (
                    remind
                    and remind < target
                    and conversation.assignee_id
                    and not _in_this_wait(conversation.reminded_at, since)
                ):
                    wanted[Kind.REMIND] = self._add(since, _minutes(target - remind))
            if sla.customer_update_minutes and not _in_this_wait(conversation.nudged_at, since):
                wanted[Kind.NUDGE] = self._add(since, _minutes(sla.customer_update_minutes))
        elif (
            status == ConversationStatus.WAITING_CUSTOMER
            and sla.auto_close_hours
            and conversation.last_reply_at is not None
        ):
            wanted[Kind.AUTO_CLOSE] = conversation.last_reply_at + timedelta(
                hours=sla.auto_close_hours
            )
        minutes = core.routing.requeue_away_minutes
        if (
            minutes
            and conversation.assignee_id
            and assignee is not None
            and assignee.presence != Presence.ONLINE
        ):
            wanted[Kind.REQUEUE] = assignee.presence_changed_at + _minutes(minutes)
        return {kind: due for kind, due in wanted.items() if due is not None}

    async def _assignee_state(
        self, tx: Transaction, conversation: Conversation
    ) -> OperatorState | None:
        if not (self.desk.config.routing.requeue_away_minutes and conversation.assignee_id):
            return None
        return (await tx.operator_states()).get(conversation.assignee_id)

    async def sync(
        self, tx: Transaction, conversation: Conversation, existing: dict[str, Deadline]
    ) -> None:
        """Make the conversation's deadline rows (``existing``) match its plan."""
        assert conversation.id is not None
        now = utcnow()
        wanted = self.plan(conversation, now, await self._assignee_state(tx, conversation))
        queued = conversation.status == ConversationStatus.QUEUED
        for kind, row in existing.items():
            if kind == Kind.ROUTE and queued:
                # an opening or a shift start still to come: it stays until it has
                # come (planned now, it may look unneeded only because it is now)
                continue
            if kind not in wanted:
                await tx.delete(row)
        for kind, due in wanted.items():
            planned = existing.get(kind)
            if kind == Kind.ROUTE and planned is not None and planned.due_at <= due:
                continue
            if (conversation.id, kind) in tx.fired and due <= now:
                log.error(
                    "deadline %s still due after it was acted on; dropped so it cannot loop",
                    kind,
                    extra={"conversation_id": conversation.id},
                )
                if planned is not None:
                    await tx.delete(planned)
                continue
            if planned is None:
                tx.add_deadline(conversation.id, kind, due)
            elif planned.due_at != due:
                planned.due_at = due
                tx.add(planned)

    async def settle(self, tx: Transaction) -> None:
        """Plan every conversation this transaction changed (before it commits).

        One whose plan inputs are as this process last committed them keeps its
        rows unread: a burst of customer messages read and compared two deadline
        rows each for nothing (about 4% of an inbound message's cost)."""
        done: set[int] = set()
        # a queued conversation's plan depends on the time too, unless only events
        # (a slot freed, an operator online) can route it: then it is as planned
        timeless = self.dispatcher.next_routable(utcnow()) is None
        while pending := [(i, c) for i, c in tx.changed.items() if i not in done]:
            done.update(i for i, _ in pending)
            stale = [(i, c) for i, c in pending if not self._as_planned(tx, i, c, timeless)]
            rows = await tx.deadlines_of(i for i, _ in stale)
            for conversation_id, conversation in stale:
                await self.sync(tx, conversation, rows[conversation_id])
                tx.planned[conversation_id] = _inputs(conversation)
        await tx.flush()

    def _as_planned(
        self, tx: Transaction, conversation_id: int, conversation: Conversation, timeless: bool
    ) -> bool:
        """Whether the conversation's rows are its plan already: this process
        committed them for the same inputs, and nothing outside them changed since
        that its plan depends on (a replan; the time, for a queued one while the
        desk is closed or a shift is still to start)."""
        return (
            conversation_id not in tx.replanned
            and (timeless or conversation.status != ConversationStatus.QUEUED)
            and self._planned.get(conversation_id) == _inputs(conversation)
        )

    def committed(self, tx: Transaction) -> None:
        """Remember what the committed transaction planned (``settle``)."""
        for conversation_id, inputs in tx.planned.items():
            self._planned.pop(conversation_id, None)
            self._planned[conversation_id] = inputs
        excess = len(self._planned) - PLANNED_KEPT
        if excess > 0:
            for conversation_id in list(itertools.islice(self._planned, excess)):
                del self._planned[conversation_id]

    def forget(self) -> None:
        """Plan every conversation afresh when next changed (the config changed)."""
        self._planned.clear()

    # -- acting -------------------------------------------------------------------------

    async def fire_next(self, tx: Transaction) -> Deadline | None:
        """Act on the oldest due deadline, if any: one per transaction."""
        now = utcnow()
        row = await tx.next_due_deadline(now)
        if row is None:
            return None
        conversation = await tx.conversation(row.conversation_id, lock=True)
        await tx.delete(row)
        await tx.flush()
        if conversation is None:
            return row
        tx.fired.add((row.conversation_id, row.kind))
        if self._still_due(
            conversation, row.kind, now, await self._assignee_state(tx, conversation)
        ):
            log.info(
                "deadline %s due %s acted on",
                row.kind,
                row.due_at.isoformat(timespec="seconds"),
                extra={"conversation_id": conversation.id, "channel": conversation.channel},
            )
            await self._actions[row.kind](tx, conversation)
        tx.replan(conversation)
        return row

    async def postpone_next(self, tx: Transaction) -> None:
        """Move the oldest due deadline (one whose action just failed) later."""
        row = await tx.next_due_deadline(utcnow())
        if row is not None:
            row.due_at = utcnow() + RETRY_FAILED
            tx.add(row)

    def _still_due(
        self, conversation: Conversation, kind: str, now: datetime, assignee: OperatorState | None
    ) -> bool:
        """Whether the conversation, as it is now, still calls for this action (the
        config may have changed since the row was written)."""
        if kind == Kind.ROUTE:
            # at the opening itself the plan has no route deadline any more: it is now
            return conversation.status == ConversationStatus.QUEUED
        due = self.plan(conversation, now, assignee).get(kind)
        return due is not None and due <= now

    # -- the actions --------------------------------------------------------------------

    def _waited(self, conversation: Conversation) -> str:
        since = conversation.awaiting_since or conversation.created_at
        minutes = int((utcnow() - since).total_seconds() // 60)
        return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"

    def _target(self, conversation: Conversation) -> tuple[str, float]:
        sla = self.desk.config.core.sla
        if conversation.last_reply_at is None:
            return "first", sla.first_response_minutes
        return "next", sla.next_response_minutes

    async def _route(self, tx: Transaction, conversation: Conversation) -> None:
        await self.dispatcher.drain_queue(tx)

    async def _remind(self, tx: Transaction, conversation: Conversation) -> None:
        conversation.reminded_at = utcnow()
        tx.touch(conversation)
        target, minutes = self._target(conversation)
        left = int(self.desk.config.core.sla.remind_before_minutes)
        await self.relay.system(
            tx,
            conversation,
            f"⏰ Reminder: the customer has waited {self._waited(conversation)} for a "
            f"{target} answer; the target is {minutes:g} min ({left} min left).",
            mentions=(conversation.assignee_id,) if conversation.assignee_id else (),
        )

    async def _breach(self, tx: Transaction, conversation: Conversation) -> None:
        config = self.desk.config
        now = utcnow()
        target, minutes = self._target(conversation)
        since = conversation.awaiting_since
        first_time = not _in_this_wait(conversation.escalated_at, since)
        if first_time:
            due = self._add(since, _minutes(minutes)) if since else None
            tx.add(
                SlaBreach(
                    conversation_id=conversation.id,  # type: ignore[arg-type]
                    target=target,
                    operator_id=conversation.assignee_id,
                    due_at=due or now,
                    breached_at=now,
                )
            )
        conversation.escalated_at = now
        tx.touch(conversation)
        owner = config.operator(conversation.assignee_id)
        head = (
            f"🚨 Response target missed: the customer has waited {self._waited(conversation)} "
            f"for a {target} answer (target {minutes:g} min)"
        )
        candidates = await self.dispatcher.candidates(tx)
        if config.core.sla.on_breach == "reassign" and first_time:
            others = [c for c in candidates if c.operator.id != conversation.assignee_id]
            chosen = self.dispatcher.choose(others, conversation, None)
            if chosen is not None:
                note = (
                    f"{head}. Reassigned from {owner.name} to {chosen.operator.name}."
                    if owner
                    else f"{head}. Assigned to {chosen.operator.name}."
                )
                await self.dispatcher.assign(
                    tx,
                    conversation,
                    chosen.operator,
                    announce=True,
                    note=note,
                    text="transferred",
                )
                return
            head += ". Nobody else is free to take it"
        online = [c.operator.id for c in candidates if c.present]
        if conversation.assignee_id and conversation.assignee_id not in online:
            online.insert(0, conversation.assignee_id)
        tail = "." if online else ", and nobody is online."
        await self.relay.system(tx, conversation, head + tail, mentions=tuple(online))

    async def _nudge(self, tx: Transaction, conversation: Conversation) -> None:
        config = self.desk.config
        conversation.nudged_at = utcnow()
        tx.touch(conversation)
        text = render(
            config.texts,
            "still_working",
            conversation.language,
            config.gateway.default_language,
        )
        message = await self.relay.say(tx, conversation, text)
        await self.relay.mirror(tx, conversation, message, role="bot")

    async def _auto_close(self, tx: Transaction, conversation: Conversation) -> None:
        hours = self.desk.config.core.sla.auto_close_hours
        await self.dispatcher.resolve(
            tx, conversation, by=f"the gateway: no answer from the customer for {hours:g} h"
        )

    async def _wake(self, tx: Transaction, conversation: Conversation) -> None:
        await self.wake(tx, conversation, reason="⏰ Snooze over")

    async def wake(self, tx: Transaction, conversation: Conversation, *, reason: str) -> None:
        """Bring a snoozed conversation back to the top of its operator's list. A
        response clock paused by the snooze starts again from now."""
        conversation.snoozed_until = None
        if conversation.awaiting_since is not None:
            conversation.awaiting_since = utcnow()
        move(
            conversation,
            ConversationStatus.ASSIGNED
            if conversation.awaiting_since is not None or conversation.last_reply_at is None
            else ConversationStatus.WAITING_CUSTOMER,
        )
        tx.touch(conversation)
        owner = self.desk.config.operator(conversation.assignee_id)
        if owner is None:
            # its operator left the config while it slept: someone else takes it
            await self.relay.system(tx, conversation, f"{reason}: back in the queue.")
            await self.dispatcher.enqueue(tx, conversation)
            await self.dispatcher.drain_queue(tx)
            await self.relay.header(tx, conversation)
            return
        await self.relay.system(
            tx, conversation, f"{reason}: back to {owner.name}.", mentions=(owner.id,)
        )
        await self.relay.header(tx, conversation)

    async def _requeue(self, tx: Transaction, conversation: Conversation) -> None:
        config = self.desk.config
        owner = config.operator(conversation.assignee_id)
        name = owner.name if owner else conversation.assignee_id
        minutes = config.routing.requeue_away_minutes
        await self.dispatcher.candidates(tx)  # the assignment lock
        await self.relay.system(
            tx,
            conversation,
            f"{name} has been away for {minutes:g} min: the conversation goes back to the queue.",
        )
        # it keeps its place by how long the customer has waited, not from now
        conversation.queued_at = conversation.awaiting_since
        await self.dispatcher.enqueue(tx, conversation)
        await self.dispatcher.drain_queue(tx)
        await self.relay.header(tx, conversation)
