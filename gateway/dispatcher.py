"""Routing applied: assign, queue, free, transfer. Every method runs inside the
caller's transaction, after it has taken the assignment lock (``lock_operators``),
so that two concurrent decisions can never both fill an operator's last slot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway.config import OperatorConfig
from gateway.events import ROBOT_TAG
from gateway.lifecycle import move
from gateway.relay import Desk, Relay
from gateway.routing import Candidate, choose
from gateway.texts import render
from storage import (
    ACTIVE_STATUSES,
    Conversation,
    ConversationStatus,
    OperatorState,
    Presence,
    Transaction,
)
from storage.types import utcnow

log = logging.getLogger(__name__)

#: the rating buttons under the CSAT question (channels without buttons show the
#: text alone, which asks for the digit)
CSAT_CHOICES = tuple((str(n), f"{n} " + "★" * n) for n in range(1, 6))


class Dispatcher:
    def __init__(self, desk: Desk, relay: Relay) -> None:
        self.desk = desk
        self.relay = relay

    # -- the team as it is right now ---------------------------------------------

    async def candidates(self, tx: Transaction) -> list[Candidate]:
        """Every configured operator with presence and load, under the assignment lock.

        The lock (``FOR UPDATE`` on all operator rows, a no-op on SQLite where the
        transaction already holds the write lock) serialises assignment decisions
        across gateway processes sharing a PostgreSQL database.
        """
        config = self.desk.config
        states = await tx.operator_states(lock=True)
        loads = await tx.loads()
        now = utcnow()
        out = []
        for order, op in enumerate(config.operators):
            state = states.get(op.id)
            if state is None:  # added to config.toml since start
                state = OperatorState(operator_id=op.id, presence=config.routing.initial_presence)
                tx.add(state)
                states[op.id] = state
            out.append(
                Candidate(
                    operator=op,
                    presence=str(state.presence),
                    load=loads.get(op.id, 0),
                    max_chats=config.core.max_chats(op),
                    last_assigned_at=state.last_assigned_at,
                    order=order,
                    on_shift=config.core.on_shift(op, now),
                )
            )
        return out

    def choose(
        self, candidates: list[Candidate], conversation: Conversation, preferred: str | None
    ) -> Candidate | None:
        routing = self.desk.config.routing
        return choose(
            routing.strategy,
            candidates,
            conversation.language,
            match_language=routing.match_language,
            preferred=preferred,
        )

    async def anyone_online(self, tx: Transaction) -> bool:
        """Someone online and on shift: the desk is staffed."""
        return any(c.present for c in await self.candidates(tx))

    def is_open(self, at: datetime | None = None) -> bool:
        return self.desk.config.core.schedule.is_open(at or utcnow())

    def next_routable(self, now: datetime) -> datetime | None:
        """When routing may find someone it cannot find now: the desk's next opening,
        or the next start of a shift. None when only events (an operator coming
        online, a slot freed) can change the answer."""
        core = self.desk.config.core
        if not core.schedule.is_open(now):
            return core.schedule.next_opening(now)
        starts = [
            start
            for shifts in core.shifts.values()
            if not shifts.is_open(now) and (start := shifts.next_opening(now)) is not None
        ]
        return min(starts) if starts else None

    def opening_text(self, conversation: Conversation) -> str:
        """The outside-hours text, with the next opening in the customer's language."""
        config = self.desk.config
        schedule = config.core.schedule
        lang, default = conversation.language, config.gateway.default_language
        when = schedule.opening_words(utcnow(), lang, default)
        return render(config.texts, "outside_hours", lang, default, opens=when)

    # -- decisions ----------------------------------------------------------------

    async def route(
        self,
        tx: Transaction,
        conversation: Conversation,
        *,
        preferred: str | None = None,
        greet: bool = False,
        quiet: bool = False,
    ) -> None:
        """Find an operator for a new or reopened conversation, or queue it.

        ``quiet``: the customer gets no automatic text (their message came from a
        machine: answering it could start a loop)."""
        config = self.desk.config
        lang, default = conversation.language, config.gateway.default_language
        greeting = render(config.texts, "greeting", lang, default) if greet and not quiet else None
        if not self.is_open():
            # the desk is closed: the conversation waits for the opening, when it is
            # routed with the others, oldest first
            await self.enqueue(tx, conversation)
            if not quiet:
                text = _after(greeting, self.opening_text(conversation))
                await self.relay.say(tx, conversation, text)
            await self.relay.header(tx, conversation)
            return
        candidates = await self.candidates(tx)
        chosen = self.choose(candidates, conversation, preferred)
        if chosen is not None:
            await self.assign(
                tx, conversation, chosen.operator, announce=not quiet, greeting=greeting
            )
            return
        await self.enqueue(tx, conversation)
        if quiet:
            await self.relay.header(tx, conversation)
            return
        if any(c.present for c in candidates):
            position = await tx.queue_position(conversation)
            text = render(config.texts, "queued", lang, default, position=position)
        else:
            text = render(config.texts, "away", lang, default)
        await self.relay.say(tx, conversation, _after(greeting, text))
        await self.relay.header(tx, conversation)

    async def enqueue(self, tx: Transaction, conversation: Conversation) -> None:
        move(conversation, ConversationStatus.QUEUED)
        conversation.queued_at = conversation.queued_at or utcnow()
        conversation.assignee_id = None
        tx.touch(conversation)
        log.info(
            "conversation queued",
            extra={"conversation_id": conversation.id, "channel": conversation.channel},
        )

    async def assign(
        self,
        tx: Transaction,
        conversation: Conversation,
        operator: OperatorConfig,
        *,
        announce: bool,
        note: str | None = None,
        text: str = "assigned",
        greeting: str | None = None,
    ) -> None:
        """Give the conversation to ``operator``; the customer hears who, if ``announce``
        (after the ``greeting`` of a new conversation, in the same message)."""
        config = self.desk.config
        previous = conversation.assignee_id
        now = utcnow()
        conversation.assignee_id = operator.id
        conversation.assigned_at = now
        conversation.queued_at = None
        if conversation.status not in ACTIVE_STATUSES:
            move(conversation, ConversationStatus.ASSIGNED)
        tx.touch(conversation)
        states = await tx.operator_states()
        state = states[operator.id]
        state.last_assigned_at = now
        tx.add(state)
        log.info(
            "conversation assigned to %s",
            operator.id,
            extra={"conversation_id": conversation.id, "channel": conversation.channel},
        )
        if announce and previous != operator.id:
            lang, default = conversation.language, config.gateway.default_language
            told = render(config.texts, text, lang, default, operator=operator.name)
            await self.relay.say(tx, conversation, _after(greeting, told))
        elif greeting:
            await self.relay.say(tx, conversation, greeting)
        await self.relay.system(
            tx, conversation, note or f"Assigned to {operator.name}.", on_card=note is None
        )
        await self.relay.header(tx, conversation)

    async def drain_queue(self, tx: Transaction) -> int:
        """Assign waiting conversations, oldest first, while anyone has a free slot
        (never while the desk is closed: then they wait for the opening)."""
        if self.desk.config.routing.strategy == "manual" or not self.is_open():
            return 0
        assigned = 0
        candidates = await self.candidates(tx)
        if not any(c.available for c in candidates):
            return 0  # checked before reading the queue, which may be long
        for conversation in await tx.queue():
            if assigned:
                candidates = await self.candidates(tx)
            if not any(c.available for c in candidates):
                break
            previous = await self._previous_assignee(tx, conversation)
            chosen = self.choose(candidates, conversation, previous)
            if chosen is None:
                continue  # nobody speaks this one's language yet; the next may fit
            await self.assign(tx, conversation, chosen.operator, announce=True)
            assigned += 1
        return assigned

    async def _previous_assignee(self, tx: Transaction, conversation: Conversation) -> str | None:
        hours = self.desk.config.routing.sticky_hours
        if not hours:
            return None
        return await tx.last_assignee(conversation.customer_id, utcnow() - timedelta(hours=hours))

    async def capacity_left(self, tx: Transaction, operator: OperatorConfig) -> int:
        for c in await self.candidates(tx):
            if c.operator.id == operator.id:
                return c.max_chats - c.load
        return 0

    async def set_presence(
        self, tx: Transaction, operator: OperatorConfig, presence: Presence
    ) -> int:
        """Change presence; coming online takes waiting conversations at once."""
        await self.candidates(tx)  # takes the lock and creates a missing state row
        state = (await tx.operator_states())[operator.id]
        state.presence = presence
        state.presence_changed_at = utcnow()
        tx.add(state)
        log.info("operator %s is %s", operator.id, presence)
        for conversation in await tx.open_conversations_of(operator.id):
            # whether their conversations go back to the queue depends on presence
            tx.replan(conversation)
        return await self.drain_queue(tx) if presence == Presence.ONLINE else 0

    async def resolve(
        self,
        tx: Transaction,
        conversation: Conversation,
        by: str,
        operator: OperatorConfig | None = None,
    ) -> None:
        """Close a conversation (``by`` names the closer in the thread; ``operator``
        is them, if an operator): the customer is told and asked for a rating; the
        slot is freed and refilled."""
        config = self.desk.config
        await self.candidates(tx)  # the assignment lock, before a slot changes hands
        now = utcnow()
        move(conversation, ConversationStatus.RESOLVED)
        conversation.resolved_at = now
        conversation.resolved_by_id = operator.id if operator else None
        conversation.csat_operator_id = conversation.assignee_id
        conversation.queued_at = None
        conversation.awaiting_since = None
        conversation.snoozed_until = None
        conversation.offered = None
        tx.touch(conversation)
        lang, default = conversation.language, config.gateway.default_language
        if ROBOT_TAG in (conversation.tags or ()):
            # a robot's conversation: no closing text, no rating asked, to a machine
            await self.relay.system(tx, conversation, f"Closed by {by}.")
            await self.relay.header(tx, conversation)
            await self.drain_queue(tx)
            return
        await self.relay.say(tx, conversation, render(config.texts, "closed", lang, default))
        if config.core.csat.enabled:
            conversation.csat_asked_at = now
            conversation.csat_score = conversation.csat_rated_at = None
            conversation.csat_comment = None
            await self.relay.say(
                tx,
                conversation,
                render(config.texts, "csat_ask", lang, default),
                choices=CSAT_CHOICES,
            )
        await self.relay.system(tx, conversation, f"Closed by {by}.")
        await self.relay.header(tx, conversation)
        await self.drain_queue(tx)

    async def reopen(
        self,
        tx: Transaction,
        conversation: Conversation,
        operator: OperatorConfig | None,
        *,
        quiet: bool = False,
    ) -> None:
        """Bring a finished conversation back: to ``operator``, or through routing."""
        conversation.resolved_at = conversation.resolved_by_id = None
        move(conversation, ConversationStatus.NEW)
        tx.touch(conversation)
        if operator is not None:
            await self.candidates(tx)
            await self.assign(
                tx,
                conversation,
                operator,
                announce=False,
                note=f"Reopened by {operator.name}.",
            )
            return
        previous, conversation.assignee_id = conversation.assignee_id, None
        await self.route(tx, conversation, preferred=previous, quiet=quiet)


def _after(greeting: str | None, text: str) -> str:
    """A new conversation's greeting and what happens next, as one message: two
    automatic messages at once read as noise, cost the customer's chat two of its
    sends (Telegram allows about one a second) and an email customer two emails."""
    return f"{greeting}\n\n{text}" if greeting else text
