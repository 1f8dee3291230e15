"""What a customer's own channel shows them (a web visitor's transcript) and what
a channel keeps about one of its chats (``ChatState``). Part of ``Transaction``
(storage/repository.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlmodel import col

from storage.models import (
    ChatState,
    Conversation,
    CustomerIdentity,
    Direction,
    Message,
)
from storage.types import utcnow
from storage.unit import UnitOfWork

#: what the customer sees of a conversation: their messages, the replies, the
#: automatic texts; never notes, held replies or the gateway's notes to operators
SHOWN = (Direction.IN, Direction.OUT, Direction.AUTO)
#: a message as a customer's channel shows it (``gateway.events.Said``)
SAID = (
    col(Message.id),
    col(Message.conversation_id),
    col(Message.direction),
    col(Message.author_name),
    col(Message.text),
    col(Message.attachments),
    col(Message.choices),
    col(Message.created_at),
    col(Message.edited_at),
    col(Message.deleted_at),
)


class ChatQueries(UnitOfWork):
    async def transcript(
        self,
        channel: str,
        chat_id: str,
        *,
        after: int = 0,
        changed_since: datetime | None = None,
        limit: int = 200,
    ) -> Sequence[Row[Any]]:
        """The messages a customer sees in their chat on ``channel``, over all its
        conversations: with ``after`` (a message id), the ones after it, oldest
        first, plus any edited or deleted since ``changed_since``; without, the
        last ``limit``. The chat is matched through the customer's identity there,
        so a conversation whose customer was erased (or linked away) is not shown."""
        await self._write_pending()
        query = (
            select(*SAID)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .join(
                CustomerIdentity,
                col(CustomerIdentity.customer_id) == col(Conversation.customer_id),
            )
            .where(
                col(CustomerIdentity.channel) == channel,
                col(CustomerIdentity.external_id) == chat_id,
                col(Conversation.channel) == channel,
                col(Conversation.chat_id) == chat_id,
                col(Message.direction).in_(SHOWN),
            )
        )
        if after <= 0:
            latest = await (await self.session.connection()).execute(
                query.order_by(col(Message.id).desc()).limit(limit)
            )
            return list(reversed(latest.all()))
        newer = col(Message.id) > after
        if changed_since is not None:
            newer = or_(
                newer,
                col(Message.edited_at) >= changed_since,
                col(Message.deleted_at) >= changed_since,
            )
        rows = await (await self.session.connection()).execute(
            query.where(newer).order_by(col(Message.id)).limit(limit)
        )
        return rows.all()

    async def latest_message_id(self) -> int:
        await self._write_pending()
        connection = await self.session.connection()
        return int((await connection.execute(select(func.max(Message.id)))).scalar() or 0)

    async def shown_since(self, channel: str, after: int) -> Sequence[Row[Any]]:
        """Messages customers see on ``channel`` with an id past ``after``, with their
        chat (``chat_id`` first), oldest first: what other processes may have
        delivered since (a range of the primary key, however large the table)."""
        await self._write_pending()
        query = (
            select(col(Conversation.chat_id), *SAID)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(
                col(Message.id) > after,
                col(Conversation.channel) == channel,
                col(Message.direction).in_(SHOWN),
            )
            .order_by(col(Message.id))
            .limit(5000)
        )
        return (await (await self.session.connection()).execute(query)).all()

    async def message_files(self, message_ids: Sequence[int]) -> dict[int, list[str]]:
        """The file references each of these messages still carries (an erase or
        retention empties them; a message gone is left out)."""
        await self._write_pending()
        connection = await self.session.connection()
        rows = await connection.execute(
            select(col(Message.id), col(Message.attachments)).where(
                col(Message.id).in_(list(message_ids))
            )
        )
        return {
            row.id: [str(a.get("file_ref")) for a in row.attachments or () if a.get("file_ref")]
            for row in rows
        }

    async def chat_state(self, channel: str, chat_id: str) -> dict[str, Any] | None:
        await self._write_pending()
        row = await self.session.get(ChatState, (channel, chat_id))
        return dict(row.data) if row is not None else None

    async def keep_chat_state(self, channel: str, chat_id: str, data: dict[str, Any]) -> None:
        """Replace what is kept about the chat (a new dict each time: JSON columns
        do not see changes made inside one)."""
        await self._write_pending()
        row = await self.session.get(ChatState, (channel, chat_id))
        if row is None:
            self.session.add(ChatState(channel=channel, chat_id=chat_id, data=dict(data)))
        else:
            row.data = dict(data)
            row.updated_at = utcnow()
        await self.session.flush()
