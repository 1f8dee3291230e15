"""The audit trail and a customer's data as a whole (for an export). Part of
``Transaction`` (storage/repository.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, bindparam, cast, delete, func, literal, tuple_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect
from sqlmodel import col, select

from storage.models import (
    FINISHED_STATUSES,
    AuditEvent,
    ChatState,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Deadline,
    Message,
    MessageRef,
    OutboxRow,
    OutboxStatus,
    WorkspaceThread,
    build,
)
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

    async def threads_of_customer(self, customer_id: int) -> Sequence[WorkspaceThread]:
        """Where the customer's conversations live in the workspaces."""
        result = await self.session.exec(
            select(WorkspaceThread)
            .where(col(WorkspaceThread.conversation_id).in_(_conversations_of(customer_id)))
            .order_by(col(WorkspaceThread.conversation_id), col(WorkspaceThread.workspace))
        )
        return result.all()

    async def purge_old(
        self,
        messages_before: datetime | None,
        files_before: datetime | None,
        *,
        limit: int = 5000,
        dry: bool = False,
    ) -> tuple[int, int]:
        """Retention: remove the words of messages written before ``messages_before``
        and the file references of those before ``files_before``, in finished
        conversations, ``limit`` of each at most; ``dry``: only count them. Returns
        (messages, files)."""
        await self._write_pending()
        connection = await self.session.connection()
        done = [0, 0]
        for number, (before, field, empty) in enumerate(
            (
                (messages_before, Message.text, ""),
                (files_before, cast(Message.attachments, String), "[]"),
            )
        ):
            if before is None:
                continue
            wanted = select(Message.id).where(
                col(Message.created_at) < before,
                field != empty,
                col(Message.conversation_id).in_(_finished_conversations()),
            )
            if dry:
                found = await connection.execute(
                    select(func.count()).select_from(wanted.subquery())
                )
                done[number] = int(found.scalar_one())
                continue
            values: dict[str, Any] = {"text": ""} if number == 0 else {"attachments": []}
            changed = await connection.execute(
                update(Message)
                .where(col(Message.id).in_(wanted.limit(limit).scalar_subquery()))
                .values(**values)
            )
            done[number] = int(changed.rowcount or 0)
        if any(done) and not dry:
            self.session.expire_all()
        return done[0], done[1]

    async def erase_deliveries(
        self, conversation_ids: Sequence[int]
    ) -> Sequence[tuple[str, int | None, str, str | None]]:
        """The removals of workspace copies queued by an erase: (workspace,
        conversation, status, why it failed)."""
        result = await self.session.exec(
            select(
                OutboxRow.destination,
                OutboxRow.conversation_id,
                OutboxRow.status,
                OutboxRow.last_error,
            )
            .where(OutboxRow.kind == "erase", col(OutboxRow.conversation_id).in_(conversation_ids))
            .order_by(col(OutboxRow.id))
        )
        return [(d, c, str(s), e) for d, c, s, e in result.all()]

    async def workspace_refs(self, conversation_id: int, workspace: str) -> list[str]:
        """The ids of a conversation's messages as they are in a workspace, in order."""
        await self._write_pending()
        result = await self.session.exec(
            select(MessageRef.external_id)
            .join(Message, col(Message.id) == MessageRef.message_id)
            .where(
                Message.conversation_id == conversation_id,
                MessageRef.place == workspace,
                MessageRef.side == "workspace",
            )
            .order_by(col(MessageRef.id))
        )
        return list(result.all())

    async def erasable(self, customer_id: int) -> dict[str, int]:
        """What an erase of the customer would touch: conversations, messages with
        words or files, identities."""
        await self._write_pending()
        theirs = _conversations_of(customer_id)
        conversations = await self.session.exec(
            select(func.count()).select_from(Conversation).where(col(Conversation.id).in_(theirs))
        )
        messages = await self.session.exec(
            select(func.count())
            .select_from(Message)
            .where(col(Message.conversation_id).in_(theirs), Message.text != "")
        )
        identities = await self.session.exec(
            select(func.count())
            .select_from(CustomerIdentity)
            .where(CustomerIdentity.customer_id == customer_id)
        )
        return {
            "conversations": int(conversations.one()),
            "messages": int(messages.one()),
            "identities": int(identities.one()),
        }

    async def chat_states_of(self, customer_id: int) -> Sequence[ChatState]:
        """What channels keep about the customer's chats (``ChatState``)."""
        await self._write_pending()
        result = await self.session.exec(select(ChatState).where(_theirs(customer_id)))
        return result.all()

    async def forget_chat_states(self, customer_id: int) -> int:
        """Remove what channels keep about the customer's chats (a web visitor's
        tokens and the address they left); how many chats had something."""
        await self._write_pending()
        connection = await self.session.connection()
        result = await connection.execute(delete(ChatState).where(_theirs(customer_id)))
        return int(result.rowcount or 0)

    async def erase_customer_rows(self, customer_id: int, name: str) -> dict[str, int]:
        """Remove what identifies the customer and what anyone wrote to or about
        them, in a few statements whatever their number: the customer becomes a
        nameless row, their conversations anonymous rows (times, states, scores and
        tags kept, so reports add up), their messages empty rows, their identities,
        platform ids and queued deliveries gone. Returns what this removed beyond
        what ``erasable`` counts."""
        await self._write_pending()
        theirs = _conversations_of(customer_id)
        connection = await self.session.connection()
        await connection.execute(
            update(Message)
            .where(col(Message.conversation_id).in_(theirs))
            .values(text="", attachments=[], author_name=None)
        )
        refs = await connection.execute(
            delete(MessageRef).where(
                col(MessageRef.message_id).in_(
                    select(Message.id).where(col(Message.conversation_id).in_(theirs))
                )
            )
        )
        pending = await connection.execute(
            update(OutboxRow)
            .where(
                col(OutboxRow.conversation_id).in_(theirs),
                col(OutboxRow.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            )
            .values(status=OutboxStatus.FAILED, last_error="erased on request", lease_until=None)
        )
        rows = (
            await connection.execute(
                select(OutboxRow.id, OutboxRow.payload).where(
                    col(OutboxRow.conversation_id).in_(theirs)
                )
            )
        ).all()
        if rows:
            # one executemany: a long customer has thousands of deliveries
            await connection.execute(
                update(OutboxRow)
                .where(col(OutboxRow.id) == bindparam("row_id"))
                .values(payload=bindparam("bare", type_=JSON), receipt=None),
                [{"row_id": row_id, "bare": _bare(payload)} for row_id, payload in rows],
            )
        await connection.execute(
            update(WorkspaceThread)
            .where(col(WorkspaceThread.conversation_id).in_(theirs))
            .values(header_card=None)
        )
        await connection.execute(delete(Deadline).where(col(Deadline.conversation_id).in_(theirs)))
        await connection.execute(
            update(Conversation)
            .where(
                col(Conversation.id).in_(theirs),
                col(Conversation.status).not_in(FINISHED_STATUSES),
            )
            # closed (its chat is gone), not resolved: the report counts no resolution
            .values(status=ConversationStatus.CLOSED)
        )
        await connection.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(theirs))
            .values(
                chat_id=literal("erased:").concat(cast(Conversation.id, String)),
                subject=None,
                csat_comment=None,
                offered=None,
            )
        )
        await self.forget_chat_states(customer_id)
        await connection.execute(
            delete(CustomerIdentity).where(col(CustomerIdentity.customer_id) == customer_id)
        )
        await connection.execute(
            update(Customer)
            .where(col(Customer.id) == customer_id)
            .values(display_name=name, language=None)
        )
        self.session.expire_all()
        return {
            "platform_ids": int(refs.rowcount or 0),
            "deliveries_cancelled": int(pending.rowcount or 0),
            "deliveries_emptied": len(rows),
        }


def _finished_conversations() -> ScalarSelect[Any]:
    return (
        select(Conversation.id)
        .where(col(Conversation.status).in_(FINISHED_STATUSES))
        .scalar_subquery()
    )


def _conversations_of(customer_id: int) -> ScalarSelect[Any]:
    """The ids of the customer's conversations, as a subquery."""
    return select(Conversation.id).where(Conversation.customer_id == customer_id).scalar_subquery()


def _bare(payload: object) -> dict[str, object]:
    """An outbox row's payload without what was said: where it went, and its kind."""
    kept = ("destination", "audience", "kind", "conversation_id")
    return {k: payload.get(k) for k in kept} if isinstance(payload, dict) else {}


def _theirs(customer_id: int) -> ColumnElement[bool]:
    """A chat state of one of the customer's identities."""
    return tuple_(col(ChatState.channel), col(ChatState.chat_id)).in_(
        select(CustomerIdentity.channel, CustomerIdentity.external_id).where(
            CustomerIdentity.customer_id == customer_id
        )
    )
