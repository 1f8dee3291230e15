"""The core: ingest and operator actions, one transaction each (the outbox's side,
preparing deliveries and recording what came of them, is ``gateway.delivering``).

``ingest`` returns only after its transaction has committed; adapters acknowledge
their platform after that, so a crash anywhere before it makes the platform send
the event again, and the dedupe key makes the second time harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import Enum
from functools import partial
from typing import TypeVar

from gateway.actions import ActionContext, ActionRegistry, parse_command
from gateway.autoreply import AutoReplies
from gateway.config import Config, OperatorConfig
from gateway.delivering import Delivering
from gateway.dispatcher import Dispatcher
from gateway.events import (
    NO_CONVERSATION,
    NOT_AN_OPERATOR,
    ROBOT_TAG,
    ActionResult,
    Inbound,
    IngestResult,
    OperatorCommand,
    OutboundKind,
)
from gateway.feedback import Feedback
from gateway.groupcommit import GroupCommit
from gateway.language import detect as detect_language
from gateway.lifecycle import move
from gateway.relay import Desk, Relay, _attachment_dict
from gateway.timers import Timers
from storage import (
    FINISHED_STATUSES,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Direction,
    Message,
    Repository,
    Transaction,
    build,
    is_database_failure,
)
from storage.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the side under which a message's ids are kept when its platform will not copy it
UNCOPYABLE_SIDE = "original"
#: how long an album's copies wait for parts still on their way
ALBUM_WAIT_SECONDS = 1.5
#: message refs naming the album a message holds (not a platform message id)
ALBUM_SIDE = "album"


class Core:
    def __init__(
        self,
        repository: Repository,
        config_source: Callable[[], Config],
        *,
        workspaces: tuple[str, ...] = (),
        actions: ActionRegistry | None = None,
        on_enqueued: Callable[[set[str]], None] = lambda destinations: None,
    ) -> None:
        self.repository = repository
        self.desk = Desk(config_source, workspaces)
        self.relay = Relay(self.desk)
        self.dispatcher = Dispatcher(self.desk, self.relay)
        self.autoreplies = AutoReplies(self.desk, self.relay, self.dispatcher)
        self.timers = Timers(self.desk, self.relay, self.dispatcher)
        self.feedback = Feedback(self.desk, self.relay)
        self.actions = actions or ActionRegistry()
        self._on_enqueued = on_enqueued
        #: inbound events, and delivery outcomes, each share transactions when many
        #: arrive at once
        self._batch = GroupCommit(self._run, prepare=self._read_ahead)
        #: the outbox's side: preparing deliveries and recording their outcomes
        self.delivering = Delivering(repository, self.relay, self._run)

    @property
    def config(self) -> Config:
        return self.desk.config

    async def _run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """One retried transaction. The deadlines of every conversation it changed are
        planned again before it commits; after, the workers it gave rows to wake."""

        async def unit(tx: Transaction) -> T:
            result = await work(tx)
            await self.timers.settle(tx)
            return result

        def wake(tx: Transaction) -> None:
            self.timers.committed(tx)
            if tx.touched:
                self._on_enqueued(tx.touched)

        return await self.repository.run(unit, after_commit=wake)

    async def replan_open(self, batch: int = 200) -> int:
        """Plan every open conversation's deadlines again (the hours or the SLA
        changed); returns how many conversations there were."""
        self.timers.forget()
        after, count = 0, 0
        while True:

            async def step(tx: Transaction, after: int = after) -> list[int]:
                found = await tx.open_conversations(after=after, limit=batch)
                for conversation in found:
                    tx.replan(conversation)
                return [c.id for c in found if c.id is not None]

            ids = await self._run(step)
            if not ids:
                return count
            count += len(ids)
            after = max(ids)

    async def run_due(self, limit: int = 1000) -> int:
        """Act on every deadline due now (up to ``limit``), one transaction each; the
        scheduler calls this on every tick. Returns how many were taken."""
        taken = 0
        while taken < limit:
            try:
                if await self._run(self.timers.fire_next) is None:
                    break
            except Exception:
                # a bug in one action must not hold back every deadline behind it
                log.exception("acting on a deadline failed; it is tried again later")
                await self._run(self.timers.postpone_next)
            taken += 1
        return taken

    # -- ingest -------------------------------------------------------------------

    async def ingest(self, inbound: Inbound) -> IngestResult:
        if inbound.from_workspace:
            command = parse_command(inbound.text) if not inbound.edit_of else None
            if command is not None:
                result = await self.act(
                    OperatorCommand(
                        channel=inbound.channel,
                        event_id=inbound.event_id,
                        operator_external_id=inbound.sender.external_id,
                        name=command[0],
                        args=command[1],
                        workspace_thread=inbound.workspace_thread,
                        # what worked shows in the thread; what did not, and why,
                        # is said to operators (an outsider learns nothing)
                        answer=(
                            "failures"
                            if self.operator_for(inbound.channel, inbound.sender.external_id)
                            else "never"
                        ),
                    )
                )
                return IngestResult(
                    duplicate=False,
                    conversation_id=result.conversation_id,
                    ignored=None if result.ok else result.message,
                )
            work = self._operator_message
        elif inbound.failure_of is not None:
            work = self._failure_report
        else:
            work = self._customer_message

        async def run(tx: Transaction) -> IngestResult:
            seen = await tx.find_event(inbound.channel, inbound.event_id)
            if seen is not None:
                return IngestResult.seen_before(seen.conversation_id, seen.message_id)
            result = await work(tx, inbound)
            tx.record_event(
                inbound.channel, inbound.event_id, result.conversation_id, result.message_id
            )
            return result

        return await self._batch.run(run, hint=inbound)

    @staticmethod
    async def _read_ahead(tx: Transaction, hints: list[object]) -> None:
        """What a batch's customer messages will each look up, in a few statements."""
        inbounds = [hint for hint in hints if isinstance(hint, Inbound)]
        customers = [
            inbound
            for inbound in inbounds
            if not inbound.from_workspace and inbound.failure_of is None
        ]
        await tx.preload(
            events=[(inbound.channel, inbound.event_id) for inbound in inbounds],
            identities=[(inbound.channel, inbound.sender.external_id) for inbound in customers],
            chats=[
                (inbound.channel, inbound.sender.external_id, inbound.chat_id)
                for inbound in customers
                if not inbound.explicit_threads
            ],
        )

    async def _customer_message(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        customer = await self._customer(tx, inbound)
        if customer.blocked:
            log.info("message from a blocked customer dropped", extra={"channel": inbound.channel})
            return IngestResult.ignoring("the customer is blocked")
        if inbound.delete_of:
            return await self._apply_delete(tx, inbound, role="customer", to_customer=False)
        if inbound.edit_of:
            edited = await self._apply_edit(tx, inbound, role="customer", to_customer=False)
            if edited is not None:
                return edited
        if inbound.album:
            joined = await self._join_album(tx, inbound)
            if joined is not None:
                return joined
        conversation, opened = await self._conversation_for(tx, customer, inbound)
        _mark_robot(conversation, robot=inbound.automated, opened=opened is Opened.NEW)
        if not conversation.language_sure and opened is not Opened.NEW:
            _learn_language(conversation, inbound.text)
        now = utcnow()
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=Direction.IN,
            author_id=str(customer.id),
            author_name=customer.display_name,
            text=inbound.text,
            attachments=[_attachment_dict(a) for a in inbound.attachments],
            reply_to_id=await self._reply_target(tx, inbound),
            # when the customer wrote, as their platform says: response times are
            # measured from here, not from when we got round to it (a clock ahead
            # of ours is not believed)
            created_at=min(inbound.sent_at or now, now),
        )
        await self._store(tx, message, inbound, side="customer")
        if opened is Opened.FEEDBACK:
            # the score or comment asked for after the close: not a new request
            await self.feedback.take(tx, conversation, message)
            return IngestResult.stored(conversation.id, message.id)
        if conversation.awaiting_since is None and not inbound.automated:
            # the response clock starts at the first message nobody has answered
            conversation.awaiting_since = message.created_at
        if conversation.status == ConversationStatus.WAITING_CUSTOMER:
            move(conversation, ConversationStatus.ASSIGNED)
        tx.touch(conversation, customer_wrote=message.created_at)
        if conversation.status == ConversationStatus.SNOOZED:
            await self.timers.wake(tx, conversation, reason="💬 Woken early: the customer wrote")
        answered = False
        if opened is Opened.NEW:
            # the header (which opens the topic/thread) must be queued before the
            # first mirrored message: deliveries of one thread go out in id order
            await self.relay.header(tx, conversation, opening=True)
            preferred = await self.dispatcher._previous_assignee(tx, conversation)
            await self.relay.mirror(tx, conversation, message, role="customer")
            answered = await self._faq(tx, conversation, inbound, before_routing=True)
            await self.dispatcher.route(
                tx, conversation, preferred=preferred, greet=True, quiet=inbound.automated
            )
        elif opened is Opened.REOPENED:
            await self.relay.mirror(tx, conversation, message, role="customer")
            answered = await self._faq(tx, conversation, inbound, before_routing=True)
            await self.dispatcher.reopen(tx, conversation, operator=None, quiet=inbound.automated)
        else:
            await self.relay.mirror(tx, conversation, message, role="customer")
        if not answered and not inbound.automated and conversation.offered:
            answered = await self.autoreplies.choose(tx, conversation, inbound.text)
        if not answered:
            await self._faq(tx, conversation, inbound, before_routing=False)
        if inbound.album:
            await self._hold_album(tx, message, inbound)
        return IngestResult.stored(conversation.id, message.id)

    async def _faq(
        self, tx: Transaction, conversation: Conversation, inbound: Inbound, *, before_routing: bool
    ) -> bool:
        """An FAQ answer, if this is its moment (never to a machine: loops)."""
        if inbound.automated or not inbound.text:
            return False
        online = False
        if not before_routing and self.config.core.faq.when == "outside_hours":
            # "outside hours": the desk is closed by its schedule, or open with
            # nobody online and on shift to answer
            online = self.dispatcher.is_open() and await self.dispatcher.anyone_online(tx)
        if not self.autoreplies.due(
            conversation, before_routing=before_routing, anyone_online=online
        ):
            return False
        return await self.autoreplies.answer(tx, conversation, inbound.text)

    async def _hold_album(self, tx: Transaction, message: Message, inbound: Inbound) -> None:
        """Keep an album's copies back a moment, so parts still on their way join them
        and go out as one album rather than one by one."""
        assert message.id is not None and inbound.album
        await tx.add_refs(
            message.id, inbound.channel, ALBUM_SIDE, inbound.chat_id, [_album_ref(inbound)]
        )
        until = utcnow() + timedelta(seconds=ALBUM_WAIT_SECONDS)
        # (unsent_copies writes what is pending first, and its query flushes the rest)
        for row in await tx.unsent_copies(message.id):
            row.next_attempt_at = until
            tx.add(row)

    async def _join_album(self, tx: Transaction, inbound: Inbound) -> IngestResult | None:
        """A later part of an album whose message is stored and not yet relayed: it
        joins that message. None when there is nothing it can join (relayed already,
        or the first part), and it becomes a message of its own."""
        assert inbound.album is not None
        message = await tx.message_by_ref(inbound.channel, inbound.chat_id, _album_ref(inbound))
        if message is None or message.id is None:
            return None
        copies = await tx.unsent_copies(message.id)
        if len(copies) != len(await tx.all_copies(message.id)):
            return None  # some copy went out already: this part follows on its own
        message.attachments = [
            *(message.attachments or []),
            *(_attachment_dict(a) for a in inbound.attachments),
        ]
        message.text = message.text or inbound.text
        tx.add(message)
        if inbound.message_id:
            # every part that came in this batch: the copies are made from these ids
            ids = [inbound.message_id, *inbound.part_ids]
            await tx.add_refs(message.id, inbound.channel, "customer", inbound.chat_id, ids)
        until = utcnow() + timedelta(seconds=ALBUM_WAIT_SECONDS)
        for row in copies:
            # the copies carry the whole album: the files, and (read at send time) its ids
            row.payload = {**row.payload, "attachments": message.attachments, "text": message.text}
            row.next_attempt_at = until
            tx.add(row)
        return IngestResult.stored(message.conversation_id, message.id)

    async def _failure_report(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        """A bounce: operators see, in the conversation, that their message never came."""
        assert inbound.failure_of is not None
        message = await tx.message_by_external_id(inbound.channel, inbound.failure_of)
        if message is None:
            log.warning(
                "a delivery failure report for a message we do not know (%s)",
                inbound.failure_of,
                extra={"channel": inbound.channel},
            )
            return IngestResult.ignoring("the failed message is not ours")
        conversation = await tx.conversation(message.conversation_id)
        assert conversation is not None
        note = await self.relay.system(tx, conversation, f"⚠ Not delivered: {inbound.text[:500]}")
        return IngestResult.stored(conversation.id, note.id)

    async def _customer(self, tx: Transaction, inbound: Inbound) -> Customer:
        sender = inbound.sender
        known = await tx.identity(inbound.channel, sender.external_id)
        if known is None:
            customer = build(
                Customer,
                id=await tx.new_id(Customer),
                display_name=sender.display_name[:256] or "Customer",
                language=sender.language,
            )
            identity = build(
                CustomerIdentity,
                id=await tx.new_id(CustomerIdentity),
                customer_id=customer.id,
                channel=inbound.channel,
                external_id=sender.external_id,
                username=sender.username,
            )
            # both are written with the transaction's flush, after everything the
            # customer's first message changes in them
            tx.add_customer(customer, identity)
            return customer
        identity, customer = known
        if sender.display_name and customer.display_name != sender.display_name[:256]:
            customer.display_name = sender.display_name[:256]
        if sender.language and customer.language != sender.language:
            customer.language = sender.language
        if sender.username != identity.username:
            identity.username = sender.username
            tx.add(identity)
        tx.add(customer)
        return customer

    async def _conversation_for(
        self, tx: Transaction, customer: Customer, inbound: Inbound
    ) -> tuple[Conversation, Opened]:
        """The open conversation, a recently closed one reopened, or a new one."""
        assert customer.id is not None
        if inbound.explicit_threads:
            latest = await self._threaded(tx, customer, inbound)
        else:
            latest = await tx.latest_conversation(customer.id, inbound.channel, inbound.chat_id)
        if latest is not None and latest.status not in FINISHED_STATUSES:
            return latest, Opened.OPEN
        if (
            latest is not None
            and not inbound.automated
            and self.feedback.expects(latest, inbound.text)
        ):
            return latest, Opened.FEEDBACK
        reopen_window = timedelta(hours=self.config.routing.reopen_hours)
        if (
            latest is not None
            and latest.resolved_at is not None
            and utcnow() - latest.resolved_at <= reopen_window
        ):
            return latest, Opened.REOPENED
        written = detect_language(inbound.text)
        conversation = build(
            Conversation,
            id=await tx.new_id(Conversation),
            customer_id=customer.id,
            channel=inbound.channel,
            chat_id=inbound.chat_id,
            # what they write, else what their platform says, else the desk's own
            language=written or customer.language or self.config.gateway.default_language,
            language_sure=written is not None,
            subject=(inbound.subject or None) and inbound.subject[:512],
        )
        tx.opened(conversation)
        log.info(
            "conversation opened",
            extra={"conversation_id": conversation.id, "channel": inbound.channel},
        )
        return conversation, Opened.NEW

    async def _threaded(
        self, tx: Transaction, customer: Customer, inbound: Inbound
    ) -> Conversation | None:
        """The conversation a message says it continues: by the messages it replies to
        (newest first), else by the number in its subject. Only ever one of this
        customer's own: a guessed number never opens someone else's conversation."""
        for ref in reversed(inbound.thread_refs):
            message = await tx.message_by_ref(inbound.channel, inbound.chat_id, ref)
            if message is not None:
                found = await tx.conversation(message.conversation_id)
                if found is not None and found.customer_id == customer.id:
                    return found
        if inbound.conversation_token is not None:
            found = await tx.conversation(inbound.conversation_token)
            if (
                found is not None
                and found.customer_id == customer.id
                and found.channel == inbound.channel
            ):
                return found
        return None

    async def _store(
        self, tx: Transaction, message: Message, inbound: Inbound, *, side: str
    ) -> None:
        """Store a message with the ids it has where it was written."""
        await tx.add_message(message)
        if inbound.message_id:
            ids = [inbound.message_id, *inbound.part_ids]
            # found by its id (replies, edits, deletes) either way; a message the
            # platform will not copy is not a source to copy from (``delivering._copyable``):
            # its copies are its text
            where = side if inbound.copyable else UNCOPYABLE_SIDE
            assert message.id is not None
            await tx.add_refs(message.id, inbound.channel, where, inbound.chat_id, ids)

    async def _reply_target(self, tx: Transaction, inbound: Inbound) -> int | None:
        if not inbound.reply_to:
            return None
        target = await tx.message_by_ref(inbound.channel, inbound.chat_id, inbound.reply_to)
        return target.id if target else None

    async def _apply_edit(
        self, tx: Transaction, inbound: Inbound, *, role: str, to_customer: bool
    ) -> IngestResult | None:
        """Update the stored message and follow the edit to its copies.

        None when we never stored the original (older than the gateway): the caller
        then treats the edited text as a new message rather than lose it.
        """
        assert inbound.edit_of is not None
        message = await tx.message_by_ref(inbound.channel, inbound.chat_id, inbound.edit_of)
        if message is None:
            return None
        message.text = inbound.text
        message.edited_at = utcnow()
        return await self._follow(tx, inbound, message, "edit", role=role, to_customer=to_customer)

    async def _apply_delete(
        self, tx: Transaction, inbound: Inbound, *, role: str, to_customer: bool
    ) -> IngestResult:
        """Mark the stored message deleted and follow the deletion to its copies.

        A deletion of a message we never stored has nothing to follow: it is ignored.
        """
        assert inbound.delete_of is not None
        message = await tx.message_by_ref(inbound.channel, inbound.chat_id, inbound.delete_of)
        if message is None:
            return IngestResult.ignoring("the deleted message was never relayed")
        if message.deleted_at is not None:
            return IngestResult.stored(message.conversation_id, message.id)
        message.deleted_at = utcnow()
        return await self._follow(
            tx, inbound, message, "delete", role=role, to_customer=to_customer
        )

    async def _follow(
        self,
        tx: Transaction,
        inbound: Inbound,
        message: Message,
        kind: OutboundKind,
        *,
        role: str,
        to_customer: bool,
    ) -> IngestResult:
        """Store a changed message and queue the change for each of its copies (all
        but the place it was made in)."""
        conversation = await tx.conversation(message.conversation_id)
        assert conversation is not None
        tx.add(message)
        await tx.flush()
        await self.relay.edit(
            tx,
            conversation,
            message,
            role=role,  # type: ignore[arg-type]
            skip=inbound.channel if inbound.from_workspace else None,
            customer=to_customer,
            kind=kind,
        )
        return IngestResult.stored(conversation.id, message.id)

    # -- operators ----------------------------------------------------------------

    def operator_for(self, channel: str, external_id: str) -> OperatorConfig | None:
        return next(
            (op for op in self.config.operators if op.identity(channel) == external_id), None
        )

    async def _operator_message(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        assert inbound.workspace_thread is not None
        conversation = await tx.conversation_by_thread(inbound.channel, inbound.workspace_thread)
        if conversation is None:
            return IngestResult.ignoring(NO_CONVERSATION)
        operator = self.operator_for(inbound.channel, inbound.sender.external_id)
        if operator is None:
            log.warning(
                "ignored a workspace message from %s: not a configured operator",
                inbound.sender.external_id,
                extra={"channel": inbound.channel},
            )
            return IngestResult.ignoring(NOT_AN_OPERATOR)
        assert conversation.id is not None
        conversation = await tx.conversation(conversation.id, lock=True)
        assert conversation is not None
        if inbound.delete_of:
            return await self._apply_delete(tx, inbound, role="operator", to_customer=True)
        if inbound.edit_of:
            edited = await self._apply_edit(tx, inbound, role="operator", to_customer=True)
            if edited is not None:
                return edited
        await self._take_part(tx, conversation, operator)
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=Direction.OUT,
            author_id=operator.id,
            author_name=operator.name,
            text=inbound.text,
            attachments=[_attachment_dict(a) for a in inbound.attachments],
            reply_to_id=await self._reply_target(tx, inbound),
        )
        await self._store(tx, message, inbound, side="workspace")
        if conversation.status in (ConversationStatus.ASSIGNED, ConversationStatus.SNOOZED):
            move(conversation, ConversationStatus.WAITING_CUSTOMER)
        # answered: the response clock stops, and the wait for the customer begins
        conversation.awaiting_since = None
        conversation.snoozed_until = None
        conversation.last_reply_at = utcnow()
        tx.touch(conversation)
        await self.relay.deliver_to_customer(tx, conversation, message, author=operator)
        await self.relay.mirror(tx, conversation, message, role="operator", skip=inbound.channel)
        return IngestResult.stored(conversation.id, message.id)

    async def _take_part(
        self, tx: Transaction, conversation: Conversation, operator: OperatorConfig
    ) -> None:
        """A reply claims an unassigned conversation; on a colleague's it is help, noted."""
        if conversation.status in FINISHED_STATUSES:
            await self.dispatcher.reopen(tx, conversation, operator)
            return
        if conversation.assignee_id == operator.id:
            return
        if conversation.assignee_id is None:
            if await self.dispatcher.capacity_left(tx, operator) > 0:
                await self.dispatcher.assign(
                    tx,
                    conversation,
                    operator,
                    announce=False,
                    note=f"{operator.name} answered and took this conversation.",
                )
            else:
                await self.relay.system(
                    tx,
                    conversation,
                    f"{operator.name} answered but has no free slot; "
                    "the conversation stays in the queue.",
                )
            return
        owner = self.config.operator(conversation.assignee_id)
        await self.relay.system(
            tx,
            conversation,
            f"{operator.name} answered in {owner.name if owner else conversation.assignee_id}'s "
            "conversation.",
        )

    async def act(self, command: OperatorCommand) -> ActionResult:
        """Run an operator action; the result is for the operator's eyes only."""

        about: int | None = None  # the conversation the command was given in

        async def run(tx: Transaction) -> ActionResult:
            nonlocal about
            about = None  # a retried transaction starts over
            if await tx.find_event(command.channel, command.event_id) is not None:
                # its answer, if it had one, was queued the first time
                return ActionResult(True, "already done")
            result = await perform(tx)
            tx.record_event(command.channel, command.event_id, about)
            if command.answered(result.ok):
                await self.relay.notice(tx, command, result, about)
            return result

        async def perform(tx: Transaction) -> ActionResult:
            nonlocal about
            operator = self.operator_for(command.channel, command.operator_external_id)
            if operator is None:
                log.warning(
                    "refused /%s from %s: not a configured operator",
                    command.name,
                    command.operator_external_id,
                    extra={"channel": command.channel},
                )
                return ActionResult(False, "Only configured operators can do that.")
            action = self.actions.get(command.name)
            if action is None:
                known = ", ".join("/" + n for n in self.actions.names())
                return ActionResult(False, f"Unknown command /{command.name}. Known: {known}.")
            conversation = None
            if command.workspace_thread is not None:
                conversation = await tx.conversation_by_thread(
                    command.channel, command.workspace_thread
                )
            if conversation is not None and conversation.id is not None:
                conversation = await tx.conversation(conversation.id, lock=True)
                about = conversation.id if conversation else None
            context = ActionContext(
                tx=tx,
                config=self.config,
                dispatcher=self.dispatcher,
                relay=self.relay,
                operator=operator,
                conversation=conversation,
                args=command.args,
                channel=command.channel,
            )
            return await action.run(context)

        try:
            return await self._run(run)
        except Exception as exc:
            if is_database_failure(exc):
                raise
            # a bug meeting an unusual command: nothing it did is kept, the operator
            # hears so, and the command is not taken again and again
            log.exception(
                "/%s failed; nothing was changed",
                command.name,
                extra={"channel": command.channel},
            )
            return await self._run(partial(self._act_failed, command))

    async def _act_failed(self, command: OperatorCommand, tx: Transaction) -> ActionResult:
        failed = ActionResult(
            False, f"/{command.name} failed: the gateway met an error (logged); nothing changed."
        )
        if await tx.find_event(command.channel, command.event_id) is not None:
            return failed
        tx.record_event(command.channel, command.event_id, None)
        if command.answered(failed.ok):
            await self.relay.notice(tx, command, failed, None)
        return failed

    # -- deliveries -----------------------------------------------------------------

    async def set_aside(self, channel: str, key: str, *, check: bool = False) -> bool:
        """``Host.set_aside``: kept among the channel's dedupe keys, as ``aside:<key>``."""
        event_id = f"aside:{key}"

        async def run(tx: Transaction) -> bool:
            known = await tx.find_event(channel, event_id) is not None
            if not known and not check:
                tx.record_event(channel, event_id)
            return known

        return await self._run(run)

    async def thread_opened(
        self, workspace: str, conversation_id: int, thread_ref: str, header_ref: str | None
    ) -> None:
        """Record where a conversation's thread is now, the moment the platform made
        it (``Host.thread_opened``); the header's delivery records the rest. Threads
        opened together share a transaction with the outcomes being recorded."""

        async def run(tx: Transaction) -> None:
            # a thread opened anew (its topic deleted) replaces the old one's refs
            tx.thread_opened(conversation_id, workspace, thread_ref, header_ref)

        await self.delivering.along(run)


def _album_ref(inbound: Inbound) -> str:
    """A ref naming an album, in the same chat as message ids: prefixed, never equal."""
    return f"album:{inbound.album}"


class Opened(Enum):
    """Which conversation a customer's message belongs to, and how it came to."""

    OPEN = "open"  # the one still open
    FEEDBACK = "feedback"  # a closed one whose rating or comment this is
    REOPENED = "reopened"  # a closed one, brought back (within routing.reopen_hours)
    NEW = "new"  # a new one


def _learn_language(conversation: Conversation, text: str) -> None:
    """A conversation that began with words too few to tell ("hi") takes the
    language of the first message that does tell, and keeps it."""
    written = detect_language(text)
    if written is not None:
        conversation.language = written
        conversation.language_sure = True


def _mark_robot(conversation: Conversation, *, robot: bool, opened: bool) -> None:
    """A conversation a robot opened (a bounce, an auto-reply, a newsletter) is
    tagged so: nothing automatic answers it, its closing included (``Dispatcher.
    resolve``). A person writing in it later lifts the tag."""
    tags = list(conversation.tags or ())
    if robot and opened and ROBOT_TAG not in tags:
        conversation.tags = [*tags, ROBOT_TAG]
    elif not robot and ROBOT_TAG in tags:
        conversation.tags = [t for t in tags if t != ROBOT_TAG]
