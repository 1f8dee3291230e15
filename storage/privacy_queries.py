"""The audit trail and a customer's data as a whole (for an export). Part of
``Transaction`` (storage/repository.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select

from storage.models import AuditEvent, Conversation, Message, build
from storage.unit import UnitOfWork

#: what an audit entry's detail keeps, at most
DETAIL_LIMIT = 500


class PrivacyQueries(UnitOfWork):
    def audit(
        self,
        actor: str,
        action: str,
        *,
        conversation_id: int | None = None,
        customer_id: int | None = None,
        detail: str = "",
    ) -> None:
        """Record who did what, in the transaction that does it."""
        self.session.add(
            build(
                AuditEvent,
                actor=actor[:64],
                action=action[:32],
                conversation_id=conversation_id,
                customer_id=customer_id,
                detail=detail[:DETAIL_LIMIT],
            )
        )

    async def audit_events(
        self, since: datetime, *, actor: str | None = None, limit: int = 1000
    ) -> Sequence[AuditEvent]:
        """The trail from ``since``, oldest first."""
        statement = select(AuditEvent).where(col(AuditEvent.at) >= since)
        if actor is not None:
            statement = statement.where(AuditEvent.actor == actor)
        result = await self.session.exec(
            statement.order_by(col(AuditEvent.at), col(AuditEvent.id)).limit(limit)
        )
        return result.all()

    async def messages_of_customer(self, customer_id: int) -> Sequence[Message]:
        """Every message of the customer's conversations, in order."""
        await self._write_pending()
        result = await self.session.exec(
            select(Message)
            .join(Conversation, col(Conversation.id) == Message.conversation_id)
            .where(Conversation.customer_id == customer_id)
            .order_by(col(Message.conversation_id), col(Message.id))
        )
        return result.all()
