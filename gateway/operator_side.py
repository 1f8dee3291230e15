"""An operator's reply taken in: who may answer (configured operators only),
what a reply does to the conversation (claims it, reopens it, or is noted as help
in a colleague's), and the reply queued for the customer and the other workspaces.
"""

from __future__ import annotations

import logging

from gateway.collisions import colliding, held
from gateway.config import Config, OperatorConfig
from gateway.dispatcher import Dispatcher
from gateway.events import (
    NO_CONVERSATION,
    NOT_AN_OPERATOR,
    AuthorRole,
    Inbound,
    IngestResult,
    OperatorCommand,
)
from gateway.lifecycle import move
from gateway.message_book import MessageBook
from gateway.relay import Desk, Relay, _attachment_dict
from storage import (
    FINISHED_STATUSES,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Transaction,
    build,
)
from storage.types import utcnow

log = logging.getLogger(__name__)


class OperatorSide:
    def __init__(self, desk: Desk, relay: Relay, dispatcher: Dispatcher, book: MessageBook) -> None:
        self.desk = desk
        self.relay = relay
        self.dispatcher = dispatcher
        self.book = book

    @property
    def config(self) -> Config:
        return self.desk.config

    def operator_for(self, channel: str, external_id: str) -> OperatorConfig | None:
        return next(
            (op for op in self.config.operators if op.identity(channel) == external_id), None
        )

    async def message(self, tx: Transaction, inbound: Inbound) -> IngestResult:
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
            return await self.book.apply_delete(tx, inbound, role="operator", to_customer=True)
        if inbound.edit_of:
            edited = await self.book.apply_edit(tx, inbound, role="operator", to_customer=True)
            if edited is not None:
                return edited
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=Direction.OUT,
            author_id=operator.id,
            author_name=operator.name,
            text=inbound.text,
            attachments=[_attachment_dict(a) for a in inbound.attachments],
            reply_to_id=await self.book.reply_target(tx, inbound),
        )
        collision = await colliding(tx, self.config, conversation, operator)
        if collision is not None:
            # kept, and findable by its id there (an edit, the buttons), not sent
            message.direction = Direction.HELD
            await self.book.store(tx, message, inbound, side="workspace")
            assert message.id is not None
            await self.relay.notice(
                tx,
                OperatorCommand(
                    channel=inbound.channel,
                    event_id=inbound.event_id,
                    operator_external_id=inbound.sender.external_id,
                    name="reply",
                    workspace_thread=inbound.workspace_thread,
                    answer="always",
                ),
                held(message.id, message.conversation_id, *collision),
                conversation.id,
            )
            return IngestResult.stored(conversation.id, message.id)
        await self.send(tx, conversation, operator, message, inbound=inbound)
        return IngestResult.stored(conversation.id, message.id)

    async def send(
        self,
        tx: Transaction,
        conversation: Conversation,
        operator: OperatorConfig,
        message: Message,
        *,
        inbound: Inbound | None = None,
        role: AuthorRole = "operator",
        written_in: str | None = None,
    ) -> None:
        """An operator's message to the customer: written in a workspace (``inbound``,
        or ``written_in`` for one stored before, held back: it already shows there)
        or sent by the gateway for them (a saved reply, shown in every workspace)."""
        await self._take_part(tx, conversation, operator)
        if inbound is not None:
            await self.book.store(tx, message, inbound, side="workspace")
            written_in = inbound.channel
        elif message.id is None:
            await tx.add_message(message)
        else:
            tx.add(message)
        if conversation.status in (ConversationStatus.ASSIGNED, ConversationStatus.SNOOZED):
            move(conversation, ConversationStatus.WAITING_CUSTOMER)
        # answered: the response clock stops, and the wait for the customer begins
        conversation.awaiting_since = None
        conversation.snoozed_until = None
        conversation.last_reply_at = utcnow()
        tx.touch(conversation)
        await self.relay.deliver_to_customer(tx, conversation, message, author=operator)
        await self.relay.mirror(tx, conversation, message, role=role, skip=written_in)

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
