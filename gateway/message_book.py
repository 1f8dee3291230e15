"""A message's life after it is stored, shared by both sides: where it was
written (its ids there), what it replies to, and its edits and deletions followed
to every copy.
"""

from __future__ import annotations

from gateway.events import Inbound, IngestResult, OutboundKind
from gateway.relay import Relay
from storage import Message, Transaction
from storage.types import utcnow

#: the side under which a message's ids are kept when its platform will not copy it
UNCOPYABLE_SIDE = "original"


class MessageBook:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def store(
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

    async def reply_target(self, tx: Transaction, inbound: Inbound) -> int | None:
        if not inbound.reply_to:
            return None
        target = await tx.message_by_ref(inbound.channel, inbound.chat_id, inbound.reply_to)
        return target.id if target else None

    async def apply_edit(
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

    async def apply_delete(
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
