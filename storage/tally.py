"""Counts over conversations read once per transaction and then kept in memory.

Routing asks for every operator's load (a GROUP BY over the active conversations)
each time it places a conversation, and the queue position of each one it queues:
a burst of 32 new conversations asked the database 32 times each, and every asking
first flushed what the burst had changed so far, one conversation at a time. A
``Tally`` asks once; later askings take the count read then and correct it by what
this transaction has changed since, which lives in the session's conversations.

How it stays right: when the count is read, everything is flushed, so each
conversation in the session is as the count saw it, and its state then is noted.
A conversation loaded later is noted as loaded: the count saw it so too, for no
conversation changes in the database but through this session (SQLite: the write
lock is held; PostgreSQL: routing holds the operators' lock, and nobody else adds
to a load without it; anyone may only free a slot, so a load is at worst counted
high, never low). A conversation created later (added to the session) counted for nothing. Every
conversation met is held: the session would otherwise forget an unchanged one, and
a second loading of it would be noted afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import ACTIVE_STATUSES, Conversation, ConversationStatus

#: what a conversation counts for in a tally (None: nothing), from its attributes
Part = Callable[[dict[str, Any]], Hashable | None]


def load_part(values: dict[str, Any]) -> str | None:
    """The operator whose capacity the conversation takes, if any."""
    if values.get("status") in ACTIVE_STATUSES:
        return values.get("assignee_id")
    return None


def queue_part(values: dict[str, Any]) -> tuple[int, Any, int] | None:
    """The conversation's place in the queue's order, if it is queued: the most
    urgent first, then the oldest."""
    if values.get("status") == ConversationStatus.QUEUED:
        return -(values.get("priority") or 0), values.get("queued_at"), values.get("id") or 0
    return None


class Tally:
    """What each conversation of a session counted for when a count was read."""

    def __init__(self, session: Session | AsyncSession, part: Part) -> None:
        self._session = session
        self._part = part
        #: id(conversation) -> (the conversation, what it counted for)
        self._then: dict[int, tuple[Conversation, Hashable | None]] = {}
        for row in session.identity_map.values():
            if isinstance(row, Conversation):
                self.note(row)
        session.info.setdefault("tallies", []).append(self)

    def note(self, conversation: Conversation, *, new: bool = False) -> None:
        """The conversation as the count saw it (the first time it is met only); a
        ``new`` one, added to the session since, counted for nothing."""
        key = id(conversation)
        if key not in self._then:
            part = None if new else self._part(_values(conversation))
            self._then[key] = (conversation, part)

    def changes(self) -> Iterator[tuple[Hashable | None, Hashable | None]]:
        """(what it counted for, what it counts for now) of every conversation of the
        session whose part changed since the count was read. Only the conversations
        met are looked at, not everything else the session holds (a batch's
        messages, customers, rows): routing asks once per conversation it places."""
        for conversation, before in self._then.values():
            now = self._part(_values(conversation))
            if before != now:
                yield before, now


def _values(conversation: Conversation) -> dict[str, Any]:
    # the instance's own attribute values: reading an attribute could load it
    return inspect(conversation).dict


@event.listens_for(Conversation, "load")
def _loaded(conversation: Conversation, context: Any) -> None:
    for tally in context.session.info.get("tallies", ()):
        tally.note(conversation)


@event.listens_for(Session, "transient_to_pending")
def _added(session: Session, row: object) -> None:
    if isinstance(row, Conversation):
        for tally in session.info.get("tallies", ()):
            tally.note(row, new=True)
