"""Telegram updates -> the core's events. Platform objects stop here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from aiogram.types import CallbackQuery, Message, User

from adapters.telegram.describe import MEDIA, copyable, describe
from gateway.events import UNREADABLE_TEXT, Attachment, Inbound, OperatorCommand, Sender

CHANNEL = "telegram"

#: service messages and kinds nobody needs to see relayed
SILENT = (
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "pinned_message",
    "message_auto_delete_timer_changed",
    "write_access_allowed",
)


def sender(user: User) -> Sender:
    return Sender(
        external_id=str(user.id),
        display_name=user.full_name or user.username or str(user.id),
        username=user.username,
        language=user.language_code,
    )


def attachments(message: Message) -> tuple[Attachment, ...]:
    for kind in MEDIA:
        media = getattr(message, kind, None)
        if not media:
            continue
        if kind == "photo":
            media = media[-1]  # the largest size
        return (
            Attachment(
                kind=kind,
                file_ref=media.file_id,
                name=getattr(media, "file_name", None),
                mime=getattr(media, "mime_type", None),
                size=media.file_size,
                origin="telegram",
            ),
        )
    return ()


def is_silent(message: Message) -> bool:
    return any(getattr(message, kind, None) for kind in SILENT)


def customer_message(
    message: Message, *, edited: bool = False, parts: Sequence[Message] = ()
) -> Inbound:
    """One message; with ``parts``, an album: the other messages of its media group."""
    assert message.from_user is not None
    event = f"{message.chat.id}:{message.message_id}"
    if edited:
        # edit_date is a Unix time (an int in the Bot API); each edit is its own event
        stamp: object = message.edit_date
        seconds = stamp.timestamp() if isinstance(stamp, datetime) else stamp
        event += f":edit:{int(seconds) if isinstance(seconds, int | float) else 0}"
    text = describe(message) or next((p.caption for p in parts if p.caption), None) or ""
    media = attachments(message) + tuple(a for p in parts for a in attachments(p))
    return Inbound(
        channel=CHANNEL,
        event_id=event,
        chat_id=str(message.chat.id),
        sender=sender(message.from_user),
        text=text or ("" if media else "[empty message]"),
        attachments=media,
        message_id=str(message.message_id),
        part_ids=tuple(str(p.message_id) for p in parts),
        reply_to=str(message.reply_to_message.message_id) if message.reply_to_message else None,
        edit_of=str(message.message_id) if edited else None,
        sent_at=message.date.astimezone(UTC) if message.date else None,
        album=message.media_group_id if not edited else None,
        copyable=copyable(message),
    )


def operator_message(
    message: Message, *, edited: bool = False, parts: Sequence[Message] = ()
) -> Inbound:
    """A message in the workspace: its topic says which conversation it answers."""
    inbound = customer_message(message, edited=edited, parts=parts)
    thread = message.message_thread_id if message.is_topic_message else None
    return Inbound(
        channel=inbound.channel,
        event_id=inbound.event_id,
        chat_id=inbound.chat_id,
        sender=inbound.sender,
        text=inbound.text,
        attachments=inbound.attachments,
        message_id=inbound.message_id,
        part_ids=inbound.part_ids,
        reply_to=inbound.reply_to,
        edit_of=inbound.edit_of,
        sent_at=inbound.sent_at,
        workspace_thread=str(thread) if thread else None,
        copyable=inbound.copyable,
    )


def unreadable_message(raw: object) -> Inbound | None:
    """A customer's message this aiogram version cannot parse (a newer Bot API kind),
    or one whose fields have the wrong shape.

    Operators still learn that the customer wrote, instead of the update vanishing.
    None when it is not a customer's private message, or too broken to say whose:
    it is then skipped. Never raises, whatever the shape.
    """
    if not isinstance(raw, dict):
        return None
    message = raw.get("message") or raw.get("edited_message")
    if not isinstance(message, dict):
        return None
    chat, user = message.get("chat"), message.get("from")
    if not isinstance(chat, dict) or not isinstance(user, dict):
        return None
    chat_id, user_id, message_id = chat.get("id"), user.get("id"), message.get("message_id")
    if chat.get("type") != "private" or not _is_id(chat_id) or not _is_id(user_id):
        return None
    if user.get("is_bot") is True:
        return None
    if not _is_id(message_id):
        message_id = None  # nothing to copy: operators get the placeholder alone
    words = [user.get("first_name"), user.get("last_name")]
    name = " ".join(w for w in words if isinstance(w, str) and w)[:NAME_LIMIT]
    username = user.get("username")
    language = user.get("language_code")
    where = message_id if message_id is not None else f"update-{raw.get('update_id')}"
    return Inbound(
        channel=CHANNEL,
        event_id=f"{chat_id}:{where}",
        chat_id=str(chat_id),
        sender=Sender(
            external_id=str(user_id),
            display_name=name or str(user_id),
            username=username[:NAME_LIMIT] if isinstance(username, str) else None,
            language=language[:16] if isinstance(language, str) else None,
        ),
        text=UNREADABLE_TEXT,
        message_id=str(message_id) if message_id is not None else None,
    )


#: Telegram's names are at most 64 characters; more is not a real user's
NAME_LIMIT = 128


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value != 0


def button_command(query: CallbackQuery) -> OperatorCommand | None:
    """A press on a header button: ``claim``, ``close``, ``reopen``, ``transfer[:id]``."""
    if not query.data or query.message is None:
        return None
    name, _, args = query.data.partition(":")
    thread = getattr(query.message, "message_thread_id", None)
    return OperatorCommand(
        channel=CHANNEL,
        event_id=f"callback:{query.id}",
        operator_external_id=str(query.from_user.id),
        name=name,
        args=args,
        workspace_thread=str(thread) if thread else None,
    )


def customer_pick(query: CallbackQuery) -> Inbound | None:
    """A customer's tap on a choice under our message in their private chat."""
    data = query.data or ""
    message = query.message
    if not data.startswith("pick:") or message is None or message.chat.type != "private":
        return None
    return Inbound(
        channel=CHANNEL,
        event_id=f"pick:{query.id}",
        chat_id=str(message.chat.id),
        sender=sender(query.from_user),
        text=data.removeprefix("pick:") or "?",
    )
