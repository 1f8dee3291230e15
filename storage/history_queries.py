"""A customer's earlier conversations and full-text search over messages. Part of
``Transaction`` (storage/repository.py).

Search is FTS5 on SQLite and a ``simple`` tsvector with a GIN index on PostgreSQL
(migration 0010). SQLite's index is filled after the fact (``index_messages``, run
by the gateway's tick and before every search) rather than by a trigger on insert,
so taking a message in never pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, bindparam, column, delete, text, update
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ColumnClause
from sqlmodel import col, select

from storage.models import Conversation, Customer, CustomerIdentity
from storage.types import UTCDateTime
from storage.unit import UnitOfWork

#: schema objects of the search that the table models do not describe
SEARCH_OBJECTS = ("message_search", "ix_messages_search")
#: earlier conversations a card shows
CARD_HISTORY = 3

_WORD_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Earlier:
    """One of a customer's earlier conversations, as a card or /history lists it."""

    conversation_id: int
    channel: str
    status: str
    created_at: datetime
    tags: tuple[str, ...]
    csat_score: int | None
    #: how many earlier conversations there are in all (the same on each row)
    total: int


@dataclass(frozen=True)
class Hit:
    message_id: int
    conversation_id: int
    created_at: datetime
    direction: str
    author_name: str | None
    customer_name: str
    channel: str
    snippet: str


_EARLIER = text(
    """
    SELECT card, id, channel, status, created_at, tags, csat_score, total FROM (
        SELECT c.id AS card, o.id, o.channel, o.status, o.created_at, o.tags, o.csat_score,
               row_number() OVER (PARTITION BY c.id ORDER BY o.id DESC) AS place,
               count(*) OVER (PARTITION BY c.id) AS total
        FROM conversations AS c
        JOIN conversations AS o ON o.customer_id = c.customer_id AND o.id < c.id
        WHERE c.id IN :ids
    ) AS earlier
    WHERE place <= :most
    ORDER BY card, id DESC
    """
).bindparams(bindparam("ids", expanding=True)).columns(
    column("card", Integer), column("id", Integer), column("channel"), column("status"),
    column("created_at", UTCDateTime), column("tags", JSON), column("csat_score", Integer),
    column("total", Integer),
)  # fmt: skip

#: what the SQLite index takes: customers', operators' and notes' words, not the
#: gateway's own texts (greetings, queue places) that every conversation has
_INDEX = text(
    """
    INSERT INTO message_search(rowid, text)
    SELECT id, text FROM messages
    WHERE id > coalesce((SELECT rowid FROM message_search ORDER BY rowid DESC LIMIT 1), 0)
      AND direction IN ('in', 'out', 'note') AND text != ''
    ORDER BY id LIMIT :batch
    """
)

_HIT_COLUMNS = """
    m.id, m.conversation_id, m.created_at, m.direction, m.author_name,
    cu.display_name, c.channel
"""

_HIT_TYPES: tuple[ColumnClause[Any], ...] = (
    column("id", Integer), column("conversation_id", Integer), column("created_at", UTCDateTime),
    column("direction"), column("author_name"), column("display_name"), column("channel"),
    column("snippet"),
)  # fmt: skip

_SEARCH_SQLITE = (
    text(
        f"""
    SELECT {_HIT_COLUMNS}, snippet(message_search, 0, '[', ']', '…', 12)
    FROM message_search
    JOIN messages AS m ON m.id = message_search.rowid
    JOIN conversations AS c ON c.id = m.conversation_id
    JOIN customers AS cu ON cu.id = c.customer_id
    WHERE message_search MATCH :query AND m.created_at >= :since
    ORDER BY message_search.rowid DESC LIMIT :limit
    """
    )
    .bindparams(bindparam("since", type_=UTCDateTime))
    .columns(*_HIT_TYPES)
)

_SEARCH_POSTGRESQL = (
    text(
        f"""
    SELECT {_HIT_COLUMNS},
           ts_headline('simple', m.text, plainto_tsquery('simple', :query),
                       'StartSel=[,StopSel=],MaxWords=24,MinWords=8')
    FROM messages AS m
    JOIN conversations AS c ON c.id = m.conversation_id
    JOIN customers AS cu ON cu.id = c.customer_id
    WHERE to_tsvector('simple', m.text) @@ plainto_tsquery('simple', :query)
      AND m.direction IN ('in', 'out', 'note') AND m.created_at >= :since
    ORDER BY m.id DESC LIMIT :limit
    """
    )
    .bindparams(bindparam("since", type_=UTCDateTime))
    .columns(*_HIT_TYPES)
)


def fts5_query(words: str) -> str | None:
    """What a person typed, as an FTS5 query of its words (all of them, the last
    as a prefix): quoted, so that no character of theirs is FTS5 syntax."""
    found = _WORD_RE.findall(words)
    if not found:
        return None
    quoted = [f'"{w}"' for w in found]
    quoted[-1] += "*"
    return " ".join(quoted)


class HistoryQueries(UnitOfWork):
    async def _run(self, statement: Executable, params: dict[str, Any] | None = None) -> Any:
        """A core statement on the transaction's connection (rows, not entities)."""
        connection = await self.session.connection()
        return await connection.execute(statement, params or {})

    async def earlier(self, conversation_id: int) -> list[Earlier]:
        """The conversation's customer's last conversations before it, newest first
        (``CARD_HISTORY``), as read once in this transaction."""
        if conversation_id not in self._earlier:
            await self.earlier_conversations([conversation_id])
        return self._earlier[conversation_id]

    async def earlier_conversations(
        self, conversation_ids: Iterable[int], most: int = CARD_HISTORY
    ) -> dict[int, list[Earlier]]:
        """Each conversation's customer's conversations before it, newest first (at
        most ``most`` each, with the total), in one statement for many. Those of
        ``CARD_HISTORY`` are kept for ``earlier``."""
        ids = sorted(set(conversation_ids))
        found: dict[int, list[Earlier]] = {i: [] for i in ids}
        if not ids:
            return found
        await self._write_pending()
        result = await self._run(_EARLIER, {"ids": ids, "most": most})
        for card, oid, channel, status, created, tags, csat, total in result.all():
            found[card].append(
                Earlier(oid, channel, status, created, tuple(tags or ()), csat, int(total))
            )
        if most == CARD_HISTORY:
            self._earlier.update(found)
        return found

    async def customer_by_reference(self, reference: str) -> Customer | None:
        """A customer by their number, ``@username`` or any id they wrote from (an
        address, a Telegram or Slack id)."""
        wanted = reference.strip()
        if wanted.isdigit():
            customer = await self.session.get(Customer, int(wanted))
            if customer is not None:
                return customer
        column = (
            CustomerIdentity.username if wanted.startswith("@") else CustomerIdentity.external_id
        )
        value = wanted.removeprefix("@")
        identity = (
            await self.session.exec(
                select(CustomerIdentity)
                .where(col(column) == value)
                .order_by(col(CustomerIdentity.id))
                .limit(1)
            )
        ).first()
        if identity is None and "@" in value:
            identity = (
                await self.session.exec(
                    select(CustomerIdentity).where(
                        col(CustomerIdentity.external_id) == value.lower()
                    )
                )
            ).first()
        return await self.session.get(Customer, identity.customer_id) if identity else None

    async def conversations_of(self, customer_id: int) -> Sequence[Conversation]:
        result = await self.session.exec(
            select(Conversation)
            .where(Conversation.customer_id == customer_id)
            .order_by(col(Conversation.id).desc())
        )
        return result.all()

    async def identities_of(self, customer_id: int) -> Sequence[CustomerIdentity]:
        result = await self.session.exec(
            select(CustomerIdentity)
            .where(CustomerIdentity.customer_id == customer_id)
            .order_by(col(CustomerIdentity.id))
        )
        return result.all()

    async def merge_customers(self, source: int, target: int) -> tuple[int, int]:
        """Move ``source``'s identities and conversations to ``target`` and delete
        ``source``; returns how many of each moved."""
        await self._write_pending()
        identities = await self._run(
            update(CustomerIdentity)
            .where(col(CustomerIdentity.customer_id) == source)
            .values(customer_id=target)
        )
        conversations = await self._run(
            update(Conversation)
            .where(col(Conversation.customer_id) == source)
            .values(customer_id=target)
        )
        await self._run(delete(Customer).where(col(Customer.id) == source))
        self.session.expire_all()
        return int(identities.rowcount or 0), int(conversations.rowcount or 0)

    async def index_messages(self, batch: int = 20_000) -> int:
        """Add the messages written since the last call to SQLite's search index
        (nothing to do on PostgreSQL, whose index follows by itself); how many."""
        if self.session.bind.dialect.name != "sqlite":  # type: ignore[union-attr]
            return 0
        await self._write_pending()
        result = await self._run(_INDEX, {"batch": batch})
        return int(result.rowcount or 0)

    async def search_messages(self, words: str, since: datetime, limit: int = 50) -> list[Hit]:
        """The newest messages with all of ``words`` (the last may be a word's start
        on SQLite), written since ``since``."""
        sqlite = self.session.bind.dialect.name == "sqlite"  # type: ignore[union-attr]
        query = fts5_query(words) if sqlite else " ".join(_WORD_RE.findall(words))
        if not query:
            return []
        statement = _SEARCH_SQLITE if sqlite else _SEARCH_POSTGRESQL
        result = await self._run(statement, {"query": query, "since": since, "limit": limit})
        return [Hit(*row) for row in result.all()]
