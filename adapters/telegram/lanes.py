"""The order in which a batch of Telegram updates is taken.

Updates of one chat (one topic, in the forum group) must be taken in order; those
of different chats need not, so a batch is split into lanes that run side by side
and one slow or failing update holds back only its own chat. An album's parts,
which Telegram sends as separate updates, are kept together as one unit.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import Message, Update


def id_of(update: Update | dict[str, Any]) -> int:
    return update.update_id if isinstance(update, Update) else int(update["update_id"])


def albums_together(
    updates: list[Update | dict[str, Any]],
) -> list[list[Update | dict[str, Any]]]:
    """Group consecutive updates carrying parts of one album (one media_group_id).

    Telegram sends an album's parts as separate updates, normally in one batch; taken
    together they become one message, copied on as one album. A part that arrives in
    a later batch becomes a message of its own, and nothing is lost.
    """
    units: list[list[Update | dict[str, Any]]] = []
    for update in updates:
        group = album_key(update)
        if group is not None and units and album_key(units[-1][-1]) == group:
            units[-1].append(update)
        else:
            units.append([update])
    return units


def lane_of(update: Update | dict[str, Any]) -> tuple[object, ...]:
    """What an update must stay in order with: its chat, or its topic in a forum."""
    if isinstance(update, Update):
        message = update.message or update.edited_message
        if message is None and update.callback_query is not None:
            query = update.callback_query
            if query.message is not None and isinstance(query.message, Message):
                message = query.message
            else:
                return ("user", query.from_user.id)
        if message is not None:
            return ("chat", message.chat.id, message.message_thread_id)
        return ("update",)
    raw = update.get("message") or update.get("edited_message")
    chat = raw.get("chat") if isinstance(raw, dict) else None
    if isinstance(chat, dict) and isinstance(chat.get("id"), int | str):
        thread = raw.get("message_thread_id")  # type: ignore[union-attr]
        return ("chat", chat["id"], thread if isinstance(thread, int) else None)
    return ("update",)  # too broken to say whose: a lane of its own kind


def album_key(update: Update | dict[str, Any]) -> tuple[int, str] | None:
    if not isinstance(update, Update) or update.message is None:
        return None
    message = update.message
    if not message.media_group_id:
        return None
    return (message.chat.id, message.media_group_id)
