"""The frames the widget and the gateway exchange, as JSON objects with a type ``t``.

From the gateway: ``welcome`` (who the visitor is, after ``hello``), ``msg`` (a
message, new or changed: the visitor's own, an operator's reply, an automatic
text, with buttons in ``choices``), ``ack`` (a message of the visitor's is stored:
its client id and its id), ``desk`` (whether anyone can answer), ``error``.
From the widget: ``hello`` (a token and the last message id it has), ``send`` (a
client id, text, file keys), ``contact`` (a name and an address), ``typing`` (shown
to the operators), ``ping``.

Only what a visitor may see goes out: an operator's name, never their id or
anything of the workspace.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from adapters.web.guard import Refused
from gateway.events import Attachment, Delivery, Said

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
#: files a message may carry
MAX_FILES = 10


def files(attachments: tuple[Attachment, ...]) -> list[dict[str, Any]]:
    return [
        {
            "n": n,
            "name": a.name or ("photo.jpg" if a.kind == "photo" else "file"),
            "mime": a.mime or ("image/jpeg" if a.kind == "photo" else ""),
            "size": a.size,
            "image": a.kind == "photo" or (a.mime or "").startswith("image/"),
        }
        for n, a in enumerate(attachments)
    ]


def message(
    message_id: int,
    side: str,
    author: str | None,
    text: str,
    attachments: tuple[Attachment, ...],
    at: datetime,
    *,
    choices: tuple[tuple[str, str], ...] = (),
    edited: bool = False,
    deleted: bool = False,
) -> dict[str, Any]:
    """A ``msg`` frame: what the widget shows of one message (a deleted one empty)."""
    return {
        "t": "msg",
        "id": message_id,
        "side": side,
        "author": author,
        "text": "" if deleted else text,
        "files": [] if deleted else files(attachments),
        "choices": [list(choice) for choice in choices],
        "at": at.astimezone(UTC).isoformat(timespec="seconds"),
        "edited": edited,
        "deleted": deleted,
    }


def said(entry: Said) -> dict[str, Any]:
    return message(
        entry.id,
        entry.side,
        entry.author_name if entry.side == "operator" else None,
        entry.text,
        entry.attachments,
        entry.at,
        choices=entry.choices,
        edited=entry.edited,
        deleted=entry.deleted,
    )


def delivered(delivery: Delivery) -> dict[str, Any] | None:
    """The frame a delivery to a visitor makes, or None for one that shows nothing."""
    outbound = delivery.outbound
    if outbound.message_id is None or outbound.kind not in ("message", "edit", "delete"):
        return None
    person = outbound.author_role in ("operator", "saved")
    return message(
        outbound.message_id,
        "operator" if person else "bot",
        outbound.author_name if person else None,
        outbound.text,
        outbound.attachments,
        datetime.now(UTC),
        choices=outbound.choices,
        edited=outbound.kind == "edit",
        deleted=outbound.kind == "delete",
    )


def client_id(frame: dict[str, Any]) -> str:
    cid = frame.get("cid")
    if not isinstance(cid, str) or not CLIENT_ID.match(cid):
        raise Refused(400, "frame", "a message needs a client id (cid)")
    return cid


def text_of(frame: dict[str, Any], limit: int) -> str:
    text = frame.get("text", "")
    if not isinstance(text, str):
        raise Refused(400, "frame", "text must be a string")
    text = text.strip()
    if len(text) > limit:
        raise Refused(413, "too_long", f"messages up to {limit} characters", limit=limit)
    return text


def file_keys(frame: dict[str, Any]) -> list[str]:
    keys = frame.get("files") or []
    if not isinstance(keys, list) or len(keys) > MAX_FILES:
        raise Refused(400, "frame", f"up to {MAX_FILES} files a message")
    return keys


def cursor(frame: dict[str, Any]) -> tuple[int, datetime | None]:
    """The last message id the widget has, and when it last heard from us."""
    after = frame.get("after", 0)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        after = 0
    since = frame.get("since")
    at = None
    if isinstance(since, str):
        try:
            at = datetime.fromisoformat(since)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return after, at


def contact(frame: dict[str, Any]) -> tuple[str | None, str | None]:
    name, email = frame.get("name"), frame.get("email")
    if name is not None and (not isinstance(name, str) or len(name.strip()) > 80):
        raise Refused(400, "name", "a name up to 80 characters")
    if email is not None and (
        not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email.strip())
    ):
        raise Refused(400, "email", "that does not look like an email address")
    clean = "".join(ch for ch in name if ch.isprintable()).strip() if name else None
    return clean or None, email.strip().lower() if email else None
