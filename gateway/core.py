"""The core: ingest, operator actions, delivery outcomes. One transaction each.

``ingest`` returns only after its transaction has committed; adapters acknowledge
their platform after that, so a crash anywhere before it makes the platform send
the event again, and the dedupe key makes the second time harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from gateway.actions import ActionContext, ActionRegistry, parse_command
from gateway.autoreply import AutoReplies
from gateway.config import Config, OperatorConfig
from gateway.dispatcher import Dispatcher
from gateway.events import (
    NO_CONVERSATION,
    NOT_AN_OPERATOR,
    ROBOT_TAG,
    ActionResult,
    Delivery,
    Inbound,
    IngestResult,
    OperatorCommand,
    Outbound,
    OutboundKind,
    Receipt,
)
from gateway.feedback import Feedback
from gateway.groupcommit import GroupCommit
from gateway.language import detect as detect_language
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
    OutboxStatus,
    QueuedRow,
    Repository,
    Transaction,
    WorkspaceThread,
    build,
    is_database_failure,
)
from storage.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how much of a reply's target is quoted where the target itself is not there
QUOTE_CHARS = 80
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
        self._records = GroupCommit(self._run, prepare=self._read_sending)

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
                return IngestResult(True, seen.conversation_id, seen.message_id)
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

    @staticmethod
    async def _read_sending(tx: Transaction, hints: list[object]) -> None:
        """The rows a batch of delivery outcomes will each record, in one statement."""
        await tx.preload_sending(row_id for hint in hints for row_id in hint)  # type: ignore[attr-defined]

    async def _customer_message(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        customer = await self._customer(tx, inbound)
        if customer.blocked:
            log.info("message from a blocked customer dropped", extra={"channel": inbound.channel})
            return IngestResult(False, ignored="the customer is blocked")
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
        _mark_robot(conversation, robot=inbound.automated, opened=opened == "new")
        if not conversation.language_sure and opened != "new":
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
        if opened == "feedback":
            # the score or comment asked for after the close: not a new request
            await self.feedback.take(tx, conversation, message)
            return IngestResult(False, conversation.id, message.id)
        if conversation.awaiting_since is None and not inbound.automated:
            # the response clock starts at the first message nobody has answered
            conversation.awaiting_since = message.created_at
        if conversation.status == ConversationStatus.WAITING_CUSTOMER:
            conversation.status = ConversationStatus.ASSIGNED
        tx.touch(conversation, customer_wrote=message.created_at)
        if conversation.status == ConversationStatus.SNOOZED:
            await self.timers.wake(tx, conversation, reason="💬 Woken early: the customer wrote")
        answered = False
        if opened == "new":
            # the header (which opens the topic/thread) must be queued before the
            # first mirrored message: deliveries of one thread go out in id order
            await self.relay.header(tx, conversation, opening=True)
            preferred = await self.dispatcher._previous_assignee(tx, conversation)
            await self.relay.mirror(tx, conversation, message, role="customer")
            answered = await self._faq(tx, conversation, inbound, before_routing=True)
            await self.dispatcher.route(
                tx, conversation, preferred=preferred, greet=True, quiet=inbound.automated
            )
        elif opened == "reopened":
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
        return IngestResult(False, conversation.id, message.id)

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
        return IngestResult(False, message.conversation_id, message.id)

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
            return IngestResult(False, ignored="the failed message is not ours")
        conversation = await tx.conversation(message.conversation_id)
        assert conversation is not None
        note = await self.relay.system(tx, conversation, f"⚠ Not delivered: {inbound.text[:500]}")
        return IngestResult(False, conversation.id, note.id)

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
    ) -> tuple[Conversation, str]:
        """The open conversation, a recently closed one reopened, or a new one."""
        assert customer.id is not None
        if inbound.explicit_threads:
            latest = await self._threaded(tx, customer, inbound)
        else:
            latest = await tx.latest_conversation(customer.id, inbound.channel, inbound.chat_id)
        if latest is not None and latest.status not in FINISHED_STATUSES:
            return latest, "open"
        if (
            latest is not None
            and not inbound.automated
            and self.feedback.expects(latest, inbound.text)
        ):
            return latest, "feedback"
        reopen_window = timedelta(hours=self.config.routing.reopen_hours)
        if (
            latest is not None
            and latest.resolved_at is not None
            and utcnow() - latest.resolved_at <= reopen_window
        ):
            return latest, "reopened"
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
        return conversation, "new"

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
            # platform will not copy is not a source to copy from (``_copyable``):
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
            return IngestResult(False, ignored="the deleted message was never relayed")
        if message.deleted_at is not None:
            return IngestResult(False, message.conversation_id, message.id)
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
        return IngestResult(False, conversation.id, message.id)

    # -- operators ----------------------------------------------------------------

    def operator_for(self, channel: str, external_id: str) -> OperatorConfig | None:
        return next(
            (op for op in self.config.operators if op.identity(channel) == external_id), None
        )

    async def _operator_message(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        assert inbound.workspace_thread is not None
        conversation = await tx.conversation_by_thread(inbound.channel, inbound.workspace_thread)
        if conversation is None:
            return IngestResult(False, ignored=NO_CONVERSATION)
        operator = self.operator_for(inbound.channel, inbound.sender.external_id)
        if operator is None:
            log.warning(
                "ignored a workspace message from %s: not a configured operator",
                inbound.sender.external_id,
                extra={"channel": inbound.channel},
            )
            return IngestResult(False, ignored=NOT_AN_OPERATOR)
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
            conversation.status = ConversationStatus.WAITING_CUSTOMER
        # answered: the response clock stops, and the wait for the customer begins
        conversation.awaiting_since = None
        conversation.snoozed_until = None
        conversation.last_reply_at = utcnow()
        tx.touch(conversation)
        await self.relay.deliver_to_customer(tx, conversation, message, author=operator)
        await self.relay.mirror(tx, conversation, message, role="operator", skip=inbound.channel)
        return IngestResult(False, conversation.id, message.id)

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
            if action.needs_conversation and conversation is None:
                return ActionResult(
                    False, f"/{action.name} works inside a conversation's topic or thread."
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
            return await action.handler(context)

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

    async def prepare(
        self, row: QueuedRow, followers: Sequence[QueuedRow] = (), *, history: bool = True
    ) -> Delivery | None:
        """Resolve what only exists now: the thread, the header, the copies to edit.

        A header row asks for the header to show the conversation as it is when it
        is sent, not as it was when the row was written; None means the header
        already shows exactly that, and nothing needs sending. ``followers`` are rows
        coalesced behind ``row``; they ride along in ``Delivery.more``. ``history``:
        the destination threads replies by the refs of earlier messages (email).
        """
        async with self.repository.transaction() as tx:
            (prepared,) = await self.prepare_in(tx, [[row, *followers]], history=history)
        if isinstance(prepared, Exception):
            raise prepared
        return prepared

    async def prepare_many(
        self, groups: Sequence[Sequence[QueuedRow]], *, history: bool = True
    ) -> list[Delivery | Exception | None]:
        """``prepare`` for many groups (a group: a row and its followers) in one
        transaction of their own; a group that cannot be prepared gets its exception,
        the others are not held back by it."""
        try:
            async with self.repository.transaction() as tx:
                return await self.prepare_in(tx, groups, history=history)
        except Exception:
            if len(groups) < 2:
                raise
        results: list[Delivery | Exception | None] = []
        for group in groups:
            try:
                results.append(await self.prepare(group[0], group[1:], history=history))
            except Exception as exc:
                results.append(exc)
        return results

    async def prepare_in(
        self, tx: Transaction, groups: Sequence[Sequence[QueuedRow]], *, history: bool = True
    ) -> list[Delivery | Exception | None]:
        """``prepare_many`` in the caller's transaction (an outbox worker's claim: one
        transaction per claim, not two). What the groups look up goes out together:
        their threads in one statement, their copies' sources in one per place. A
        group that cannot be prepared gets its exception; a database error is raised,
        for the transaction cannot go on after it."""
        known = _Lookups(history)
        parsed: list[list[Outbound] | Exception] = []
        for group in groups:
            try:
                parsed.append([Outbound.from_payload(r.payload) for r in group])
            except Exception as exc:
                parsed.append(exc)
        await self._look_up(
            tx, [o for each in parsed if not isinstance(each, Exception) for o in each], known
        )
        results: list[Delivery | Exception | None] = []
        for group, outbounds in zip(groups, parsed, strict=True):
            if isinstance(outbounds, Exception):
                results.append(outbounds)
                continue
            try:
                results.append(await self._prepare_group(tx, group, outbounds, known))
            except Exception as exc:
                if is_database_failure(exc):
                    raise
                results.append(exc)
        return results

    @staticmethod
    async def _look_up(tx: Transaction, outbounds: Sequence[Outbound], known: _Lookups) -> None:
        """The threads, cards and copies' sources of a batch of deliveries, in a few
        statements."""
        wanted: dict[tuple[str, str], set[int]] = {}
        places: set[tuple[int, str]] = set()
        cards = {o.conversation_id for o in outbounds if o.kind == "header"}
        if known.history:
            cards.update(o.conversation_id for o in outbounds if o.audience == "customer")
        await tx.preload_cards(cards)
        for outbound in outbounds:
            if _copyable(outbound) and outbound.message_id is not None:
                other = "workspace" if outbound.audience == "customer" else "customer"
                wanted.setdefault((outbound.destination, other), set()).add(outbound.message_id)
            if outbound.audience == "workspace" and outbound.kind != "notice":
                places.add((outbound.conversation_id, outbound.destination))
        for (place, side), ids in wanted.items():
            found = await tx.refs_of(sorted(ids), place, side)
            for message_id in ids:
                known.refs[(message_id, place, side)] = found.get(message_id, [])
        if places:
            threads = await tx.threads_of(places)
            for where in places:
                known.threads[where] = threads.get(where)

    async def _prepare_group(
        self,
        tx: Transaction,
        group: Sequence[QueuedRow],
        outbounds: Sequence[Outbound],
        known: _Lookups,
    ) -> Delivery | None:
        # a header carrying messages (the thread's opening one) goes even when the
        # card it shows is unchanged: the messages need their delivery
        head = await self._prepare(tx, group[0], outbounds[0], known, needed=len(group) > 1)
        pairs = zip(group[1:], outbounds[1:], strict=True)
        more = [await self._prepare(tx, f, o, known) for f, o in pairs]
        if head is None:
            return None
        # followers are messages, never header refreshes, so none is None; they stay
        # aligned with their rows, which delivered() relies on
        assert all(d is not None for d in more)
        return replace(head, more=tuple(more))  # type: ignore[arg-type]

    async def _prepare(
        self,
        tx: Transaction,
        row: QueuedRow,
        outbound: Outbound,
        known: _Lookups,
        *,
        needed: bool = False,
    ) -> Delivery | None:
        thread_ref = header_ref = None
        edit_refs: tuple[str, ...] = ()
        source_chat: str | None = None
        source_ids: tuple[str, ...] = ()
        if outbound.kind == "notice":
            thread_ref = outbound.thread  # where the command was typed
        elif outbound.audience == "workspace":
            where = (outbound.conversation_id, outbound.destination)
            if where not in known.threads:
                known.threads[where] = await tx.thread(*where)
            thread = known.threads[where]
            if thread is not None:
                thread_ref, header_ref = thread.thread_ref, thread.header_ref
            if outbound.kind == "header":
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    card = await self.relay.card(tx, conversation)
                    if not needed and thread is not None and thread.header_card == asdict(card):
                        return None
                    outbound = replace(outbound, card=card)
        if _copyable(outbound) and outbound.message_id is not None:
            other = "workspace" if outbound.audience == "customer" else "customer"
            key = (outbound.message_id, outbound.destination, other)
            if key not in known.refs:
                known.refs[key] = list(
                    await tx.refs(outbound.message_id, outbound.destination, other)
                )
            refs = known.refs[key]
            if refs:
                source_chat = refs[0].chat_id
                source_ids = tuple(r.external_id for r in refs if r.chat_id == source_chat)
        if outbound.kind in ("edit", "delete") and outbound.message_id is not None:
            edited = await tx.refs(outbound.message_id, outbound.destination, outbound.audience)
            edit_refs = tuple(r.external_id for r in edited)
        reply_ref, reply_quote = await self._reply_context(tx, outbound)
        history: tuple[str, ...] = ()
        subject = replying_to = None
        if outbound.audience == "customer" and known.history:
            conversation = await tx.conversation(outbound.conversation_id)
            if conversation is not None and conversation.channel == outbound.destination:
                subject = conversation.subject
                earlier = await tx.conversation_refs(
                    conversation.id,  # type: ignore[arg-type]
                    outbound.destination,
                    conversation.chat_id,
                )
                history = tuple(ref for ref, _ in earlier)
                replying_to = next(
                    (ref for ref, direction in reversed(earlier) if direction == Direction.IN),
                    history[-1] if history else None,
                )
        return Delivery(
            outbound=outbound,
            attempt=row.attempts,
            key=row.dedupe_key,
            thread_ref=thread_ref,
            header_ref=header_ref,
            edit_refs=edit_refs,
            source_chat=source_chat,
            source_ids=source_ids,
            history=history,
            replying_to=replying_to,
            subject=subject,
            reply_ref=reply_ref,
            reply_quote=reply_quote,
        )

    async def _reply_context(
        self, tx: Transaction, outbound: Outbound
    ) -> tuple[str | None, str | None]:
        """Where a reply's target is in the place this goes (its id there), or the
        start of its text to quote where it never went there."""
        if outbound.reply_to is None or outbound.kind != "message":
            return None, None
        refs = await tx.refs(outbound.reply_to, outbound.destination, outbound.audience)
        if refs:
            return refs[0].external_id, None
        target = await tx.message(outbound.reply_to)
        if target is None or not target.text:
            return None, None
        if outbound.audience == "customer" and target.direction in (
            Direction.NOTE,
            Direction.SYSTEM,
        ):
            return None, None  # what operators keep among themselves is never quoted out
        text = " ".join(target.text.split())
        return None, text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"

    async def delivered(
        self,
        row_id: int,
        receipt: Receipt,
        sent: Delivery | None,
        followers: Sequence[int] = (),
    ) -> None:
        """Record a delivery made (``sent``), or found unnecessary (None), with the
        rows coalesced into it (``followers``, answered by ``receipt.more``)."""
        outcomes = _outcomes(row_id, receipt, sent, followers)

        async def run(tx: Transaction) -> None:
            await self._record(tx, outcomes)

        await self._records.run(run, hint=[row for row, _receipt, _sent in outcomes])

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

        await self._records.run(run, hint=[])

    async def record_in(self, tx: Transaction, outcomes: Sequence[Outcome]) -> None:
        """``delivered`` for many deliveries in the caller's transaction (an outbox
        worker's next claim: sends that end between two claims cost no transaction
        of their own)."""
        await self._record(tx, [each for outcome in outcomes for each in _outcomes(*outcome)])

    async def transact(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """``work`` in a retried transaction of the core's: the deadlines of the
        conversations it changed are planned before it commits, and the workers it
        gave rows to wake after."""
        return await self._run(work)

    async def _record(
        self, tx: Transaction, outcomes: Sequence[tuple[int, Receipt, Delivery | None]]
    ) -> None:
        """Mark rows sent and keep what their receipts say: a few statements for the
        whole group, whatever its size (a coalesced backlog is many rows)."""
        rows = await tx.sending_rows([row_id for row_id, _receipt, _sent in outcomes])
        # the threads whose records change, in one statement
        await tx.threads_of(
            (sent.outbound.conversation_id, rows[row_id])
            for row_id, receipt, sent in outcomes
            if row_id in rows
            and sent is not None
            and sent.outbound.audience == "workspace"
            and sent.outbound.kind != "notice"
            and (sent.outbound.kind == "header" or receipt.thread_ref)
        )
        now = utcnow()
        sent_rows: list[dict] = []
        refs: list[dict] = []
        for row_id, receipt, sent in outcomes:
            if row_id not in rows:
                continue  # recorded already, or handed back meanwhile
            if receipt.extra.get("handed_back"):
                # it rode along in another row's delivery and did not get out
                tx.hand_back(row_id, str(receipt.extra["handed_back"]))
                continue
            destination = rows[row_id]
            sent_rows.append(
                {
                    "id": row_id,
                    "sent_at": now,
                    "receipt": {
                        "external_ids": list(receipt.external_ids),
                        "chat_id": receipt.chat_id,
                        "thread_ref": receipt.thread_ref,
                        **receipt.extra,
                    },
                }
            )
            if sent is None:
                continue  # nothing needed sending (a header already showing it all)
            # what was sent is the row's own payload, parsed when it was prepared
            outbound = sent.outbound
            if outbound.kind == "header" and outbound.card:
                await tx.save_thread(
                    outbound.conversation_id,
                    destination,
                    receipt.thread_ref,
                    receipt.header_ref,
                    asdict(outbound.card),
                )
            elif (
                outbound.kind != "notice"
                and outbound.audience == "workspace"
                and receipt.thread_ref
            ):
                # the adapter had to open the thread anew (an admin deleted the topic)
                await tx.save_thread(
                    outbound.conversation_id,
                    destination,
                    receipt.thread_ref,
                    receipt.header_ref,
                    None,
                )
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    await self.relay.header(tx, conversation)
            if outbound.kind == "message" and outbound.message_id and receipt.external_ids:
                chat = receipt.chat_id or outbound.chat_id or f"thread:{receipt.thread_ref}"
                refs.extend(
                    {
                        "message_id": outbound.message_id,
                        "place": destination,
                        "side": outbound.audience,
                        "chat_id": chat,
                        "external_id": external_id,
                    }
                    for external_id in dict.fromkeys(receipt.external_ids)
                )
            if outbound.audience == "customer" and outbound.author_role == "operator":
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None and conversation.first_response_at is None:
                    # the first reply the customer actually received, not the first sent
                    conversation.first_response_at = now
                    tx.add(conversation)
        tx.mark_sent(sent_rows)
        await tx.add_ref_rows(refs)

    async def failed(self, row_id: int, reason: str) -> None:
        """A delivery that will never happen: record it and tell the operators."""

        async def run(tx: Transaction) -> None:
            row = await tx.outbox_row(row_id, lock=True)
            if row is None or row.status not in (OutboxStatus.SENDING, OutboxStatus.PENDING):
                return
            row.status = OutboxStatus.FAILED
            row.last_error = reason[:2000]
            row.lease_until = None
            tx.add(row)
            outbound = Outbound.from_payload(row.payload)
            log.error(
                "delivery to %s failed for good: %s",
                row.destination,
                reason,
                extra={"conversation_id": outbound.conversation_id, "channel": row.destination},
            )
            if outbound.audience == "customer":
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    await self.relay.system(tx, conversation, f"⚠ Not delivered: {reason}")
            elif outbound.kind == "message" and outbound.author_role != "system":
                # a message operators will not see where it should be: they see that
                # (a notice's own failure says nothing more: no loop)
                conversation = await tx.conversation(outbound.conversation_id)
                if conversation is not None:
                    await self.relay.system(
                        tx, conversation, f"⚠ Not shown in {row.destination}: {reason}"
                    )

        await self._run(run)


#: a delivery's outcome as an outbox worker reports it: the row, its receipt, what
#: was sent (None: nothing needed sending), and the rows coalesced into it
Outcome = tuple[int, Receipt, Delivery | None, Sequence[int]]


def _outcomes(
    row_id: int, receipt: Receipt, sent: Delivery | None, followers: Sequence[int]
) -> list[tuple[int, Receipt, Delivery | None]]:
    """One outcome per row: the followers' receipts and deliveries are the head's
    ``more``, in order."""
    outcomes = [(row_id, receipt, sent)]
    for number, follower in enumerate(followers):
        more = receipt.more[number] if number < len(receipt.more) else Receipt()
        along = sent.more[number] if sent and number < len(sent.more) else None
        outcomes.append((follower, more, along))
    return outcomes


def _copyable(outbound: Outbound) -> bool:
    """A message an adapter may copy from where it was written (``Delivery.source_ids``):
    a customer's, or one with files. Others (an operator's text, the bot's) are
    rendered anew, so their sources need no lookup."""
    return (
        outbound.kind == "message"
        and outbound.message_id is not None
        and (outbound.author_role == "customer" or bool(outbound.attachments))
    )


class _Lookups:
    """What preparing a batch of deliveries has looked up already: the rows of one
    conversation's backlog share its thread, and their sources come in one query."""

    def __init__(self, history: bool) -> None:
        self.history = history
        self.threads: dict[tuple[int, str], WorkspaceThread | None] = {}
        self.refs: dict[tuple[int, str, str], list[Any]] = {}


def _album_ref(inbound: Inbound) -> str:
    """A ref naming an album, in the same chat as message ids: prefixed, never equal."""
    return f"album:{inbound.album}"


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
