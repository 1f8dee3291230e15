"""Slack's message events in the core's terms: plain text, files, times, dedupe keys.

Pure functions: no SDK calls, so every shape Slack sends can be tested directly.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from gateway.events import Attachment

JSON = dict[str, Any]

#: subtypes that are someone writing; the rest (joins, topic changes...) are not
WRITTEN = {None, "file_share", "thread_broadcast", "me_message"}
NOTE_PREFIX = "note:"

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def plain_text(text: str) -> str:
    """Slack's mrkdwn as a person reads it: <url|label> -> label (url), <@U1> -> @U1."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@") or target.startswith("#"):
            return f"{target[0]}{label}" if label else target
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        if label and label != target:
            return f"{label} ({target.removeprefix('mailto:')})"
        return target.removeprefix("mailto:")

    return html.unescape(_LINK.sub(link, text or ""))


def sent_at(ts: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC) if ts else None
    except ValueError:
        return None


def is_from_bot(message: JSON, bot_user: str) -> bool:
    """Any app's message, ours included: taking them in again would loop."""
    return bool(
        message.get("bot_id")
        or message.get("subtype") == "bot_message"
        or message.get("user") == bot_user
    )


def is_note(text: str) -> bool:
    return text.lstrip().lower().startswith(NOTE_PREFIX)


def note_body(text: str) -> str:
    return text.lstrip()[len(NOTE_PREFIX) :].strip()


def mention_command(text: str, bot_user: str) -> tuple[str, str] | None:
    """``<@BOT> snooze 2h`` -> ("snooze", "2h"); a bare mention asks for the status.
    None unless the message starts by addressing the app."""
    mention = f"<@{bot_user}>"
    stripped = text.strip()
    if not bot_user or not stripped.startswith(mention):
        return None
    words = stripped[len(mention) :].split(None, 1)
    if not words:
        return "status", ""
    return words[0].lstrip("/").lower(), words[1].strip() if len(words) > 1 else ""


def in_thread(message: JSON) -> str | None:
    """The thread a reply belongs to; None for a top-level message (a thread's root)."""
    thread = message.get("thread_ts")
    return thread if thread and thread != message.get("ts") else None


def _kind(mime: str) -> str:
    top = mime.split("/", 1)[0]
    return {"image": "photo", "video": "video", "audio": "audio"}.get(top, "document")


def attachments(message: JSON) -> tuple[Attachment, ...]:
    found = []
    for file in message.get("files") or ():
        if not isinstance(file, dict) or file.get("mode") == "tombstone":
            continue
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            continue  # an external file or one we may not see: named in the text
        mime = str(file.get("mimetype") or "application/octet-stream")
        found.append(
            Attachment(
                kind=_kind(mime),
                file_ref=str(url),
                name=str(file.get("name") or file.get("title") or file.get("id") or "file"),
                mime=mime,
                size=int(file["size"]) if isinstance(file.get("size"), int) else None,
                origin="slack",
            )
        )
    return tuple(found)


def text_of(message: JSON) -> str:
    """The text to relay; a message with nothing we can relay says so."""
    text = plain_text(str(message.get("text") or ""))
    if text or attachments(message):
        return text
    if message.get("files"):
        return "[a file the gateway cannot download: ask the customer to send it again]"
    return "[a message with no text (blocks or attachments the gateway does not relay)]"


def event_key(channel: str, ts: str, what: str = "") -> str:
    """The dedupe key: Slack may send one message twice under two event_ids, so the
    key is the message's own identity (its channel and ts), never the event_id."""
    return f"{channel}:{ts}" + (f":{what}" if what else "")


def language(locale: str | None) -> str | None:
    """en-US -> en: the core routes by language, not by region."""
    if not locale:
        return None
    head = locale.split("-", 1)[0].lower()
    return head if re.fullmatch(r"[a-z]{2,3}", head) else None


_NUMBER_RE = re.compile(r"(?:^|\s)#(\d{1,12})(?=\s|$)")


def conversation_number(text: str) -> tuple[str, int | None]:
    """``reply refund #12`` -> ("reply refund", 12): the conversation a slash command
    names, and the command without it."""
    found = _NUMBER_RE.search(text)
    if found is None:
        return text, None
    return (text[: found.start()] + text[found.end() :]).strip(), int(found.group(1))
