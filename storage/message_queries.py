"""Messages and the ids they have on each platform (``MessageRef``): stored,
found by a platform's id (replies, edits, deletions, bounces), and listed. Part of
``Transaction`` (storage/repository.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func
from sqlmodel import col, select

from storage import statements as sql
from storage.models import (
    Direction,
    Message,
    MessageRef,
)
from storage.unit import UnitOfWork


class MessageQueries(UnitOfWork):
    # -- messages ---------------------------------------------------------------

    async def add_message(self, message: Message) -> None:
        """Give a new message its id now and write it with the transaction's other
        pending rows: a batch's messages go in one executemany, not a statement
        each (SQLAlchemy spends ~100 µs on a statement, SQLite ~10 µs on a row).

        Changes made to ``message`` before it is written are written with it; after,
        it is in the session as if it had been read, and changes are updates."""
        message.id = await self.new_id(Message)
        self._messages.append(message)
        self.new_messages.add(message.id)

    async def message(self, message_id: int) -> Message | None:
        await self._write_pending()
        return await self.session.get(Message, message_id)

    async def last_written(self, conversation_id: int, author_id: str) -> datetime | None:
        """When ``author_id`` last wrote in the conversation (a reply or a note)."""
        await self._write_pending()
        result = await self.session.exec(
            select(func.max(Message.created_at)).where(
                Message.conversation_id == conversation_id,
                Message.author_id == author_id,
                col(Message.direction).in_((Direction.OUT, Direction.NOTE)),
            )
        )
        return result.one()

    async def message_by_ref(self, place: str, chat_id: str, external_id: str) -> Message | None:
        await self._write_pending()
        result = await self.session.exec(
            sql.MESSAGE_BY_REF,
            params={"place": place, "chat_id": chat_id, "external_id": external_id},
        )
        return result.first()

    async def refs(self, message_id: int, place: str, side: str) -> Sequence[MessageRef]:
        await self._write_pending()
        result = await self.session.exec(
            sql.REFS, params={"message_id": message_id, "place": place, "side": side}
        )
        return result.all()

    async def refs_of(
        self, message_ids: Sequence[int], place: str, side: str
    ) -> dict[int, list[Any]]:
        """``refs`` of many messages in one query: message id -> its refs, in order,
        each with ``chat_id`` and ``external_id`` (rows, not entities)."""
        await self._write_pending()
        result = await self.session.exec(
            sql.REFS_OF, params={"message_ids": list(message_ids), "place": place, "side": side}
        )
        found: dict[int, list[Any]] = {}
        for ref in cast(Sequence[Any], result.all()):
            found.setdefault(ref.message_id, []).append(ref)
        return found

    async def add_refs(
        self, message_id: int, place: str, side: str, chat_id: str, external_ids: Iterable[str]
    ) -> None:
        """One statement for all: a ref already known (the same platform message seen
        twice) is kept as it is."""
        await self.add_ref_rows(
            {
                "message_id": message_id,
                "place": place,
                "side": side,
                "chat_id": chat_id,
                "external_id": external_id,
            }
            for external_id in dict.fromkeys(external_ids)
        )

    async def add_ref_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Refs of many messages (dicts of ``MessageRef``'s columns); one already
        known (the same platform message seen twice) is kept as it is. They are
        written with the transaction's other pending rows (``_write_pending``)."""
        self._refs.extend(rows)

    async def message_by_external_id(self, place: str, external_id: str) -> Message | None:
        """A message by an id that is unique on its platform alone (an email Message-ID)."""
        await self._write_pending()
        result = await self.session.exec(
            select(Message)
            .join(MessageRef, col(MessageRef.message_id) == Message.id)
            .where(MessageRef.place == place, MessageRef.external_id == external_id)
            .limit(1)
        )
        return result.first()

    async def conversation_refs(
        self, conversation_id: int, place: str, chat_id: str, limit: int = 20
    ) -> list[tuple[str, str]]:
        """Platform ids of a conversation's messages in one chat, with each message's
        direction, oldest first (the last ``limit``): what a reply there refers to."""
        await self._write_pending()
        result = await self.session.exec(
            select(MessageRef.external_id, Message.direction)
            .join(Message, col(Message.id) == MessageRef.message_id)
            .where(
                Message.conversation_id == conversation_id,
                MessageRef.place == place,
                MessageRef.chat_id == chat_id,
                MessageRef.side == "customer",
            )
            .order_by(col(MessageRef.id).desc())
            .limit(limit)
        )
        return [(ref, str(direction)) for ref, direction in reversed(result.all())]

    async def count_authored(self, conversation_id: int, author_prefix: str) -> int:
        """Messages in a conversation whose author_id starts with ``author_prefix``."""
        result = await self.session.exec(
            select(func.count()).where(
                Message.conversation_id == conversation_id,
                col(Message.author_id).startswith(author_prefix),
            )
        )
        return int(result.one())

    async def messages(self, conversation_id: int) -> Sequence[Message]:
        result = await self.session.exec(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.id))
        )
        return result.all()
