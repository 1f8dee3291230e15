"""What a visitor does, whatever carries it (a socket frame, a POST): open a
session, send a message or a file, leave an address, catch up on the transcript."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.web import wire
from adapters.web.config import WebSection
from adapters.web.files import FileStore
from adapters.web.guard import Guard, Refused
from adapters.web.hub import Hub
from adapters.web.labels import labels
from adapters.web.visitors import CHANNEL, Visitors
from gateway.adapter import Host
from gateway.config import Config
from gateway.events import Inbound, Sender
from gateway.texts import render

#: how often a connected visitor's presence is written down, at most
SEEN_EVERY = 60.0
#: how often a visitor's typing is shown to operators, at most (Telegram shows a
#: chat action for 5 s)
TYPING_EVERY = 4.5
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


#: chats a per-chat memory here (``Spacing``, names) keeps before it starts again
CHATS_KEPT = 100_000


class Spacing:
    """When each chat last did something, so that it is done at most every
    ``seconds`` (written down, shown) whatever the widget sends."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at: dict[str, float] = {}

    def due(self, chat_id: str, now: float) -> bool:
        return now - self._at.get(chat_id, -math.inf) >= self.seconds

    def mark(self, chat_id: str, now: float) -> None:
        if len(self._at) > CHATS_KEPT:
            self._at.clear()
        self._at[chat_id] = now


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Chat:
    def __init__(
        self,
        section: WebSection,
        config: Config,
        host: Host,
        hub: Hub,
        files: FileStore,
    ) -> None:
        self.section = section
        self.config = config
        self.host = host
        self.hub = hub
        self.files = files
        self.guard = Guard(section)
        self.visitors = Visitors(section, host)
        #: a chat's name and language as its visitor gave them, for its messages
        self._who: dict[str, tuple[str, str | None]] = {}
        #: when this process last wrote down that a chat's visitor was here
        self._seen = Spacing(SEEN_EVERY)
        #: when a chat's typing was last shown to the operators
        self._typing = Spacing(TYPING_EVERY)

    # -- a session ----------------------------------------------------------------

    async def session(
        self, body: dict[str, Any], new_visitor: Callable[[], None]
    ) -> dict[str, Any]:
        token = body.get("token") if isinstance(body.get("token"), str) else None
        user = body.get("user") if isinstance(body.get("user"), str) else None
        signature = body.get("user_hash") if isinstance(body.get("user_hash"), str) else None
        visitor = await self.visitors.session(token, user, signature, new_visitor=new_visitor)
        language = body.get("language")
        if not isinstance(language, str) or not LANGUAGE.match(language):
            language = visitor.state.get("language")
        state = visitor.state
        given = body.get("name")
        name = state.get("name")
        if visitor.signed_in and isinstance(given, str) and given.strip() and not name:
            name = wire.contact({"name": given})[0]  # the site vouches for its user's name
        if language != state.get("language") or name != state.get("name"):
            state = {**state, "language": language, "name": name}
            await self.host.keep_chat_state(CHANNEL, visitor.chat_id, state)
        self._who[visitor.chat_id] = (self._name(visitor.chat_id, name), language)
        return {
            "token": visitor.token,
            "visitor": {
                "name": name,
                "email": state.get("email"),
                "signed_in": visitor.signed_in,
            },
            "desk": await self.desk(language),
            **self.face(language),
        }

    def _text(self, name: str, language: str | None, **values: object) -> str:
        """One of the desk's texts (``[texts]``) in the visitor's language."""
        config = self.config
        return render(config.texts, name, language, config.gateway.default_language, **values)

    def face(self, language: str | None) -> dict[str, Any]:
        """How the widget looks and what it says, in the visitor's language."""
        section = self.section
        return {
            "look": {
                "title": section.title,
                "colour": section.colour,
                "position": section.position,
            },
            "texts": {
                "intro": self._text("web_intro", language),
                "contact": self._text("web_contact", language),
                "contact_thanks": self._text("web_contact_thanks", language, email="{email}"),
            },
            "labels": labels(language),
            "limits": {
                "text": section.max_text_chars,
                "file_bytes": int(section.max_file_mb * 2**20),
                "types": section.file_types,
            },
            "ask_contact": section.ask_contact,
        }

    async def desk(self, language: str | None) -> dict[str, Any]:
        state = await self.host.desk_state(language)
        closed = None
        if not state.open:
            closed = self._text("web_closed", language, opens=state.opens or "?")
        return {"open": state.open, "staffed": state.staffed, "free": state.free, "note": closed}

    # -- a message ----------------------------------------------------------------

    async def take(self, chat_id: str, frame: dict[str, Any]) -> dict[str, Any]:
        """Store a visitor's message (once, however often it is sent) and have it
        shown in every tab the visitor has open; the acknowledgement, sent only
        now that it is committed."""
        cid = wire.client_id(frame)
        text = wire.text_of(frame, self.section.max_text_chars)
        uploads = [await self.files.upload(chat_id, key) for key in wire.file_keys(frame)]
        if not text and not uploads:
            raise Refused(400, "empty", "write something, or attach a file", cid=cid)
        self.guard.message(chat_id)
        name, language = await self._sender(chat_id)
        attachments = tuple(upload.attachment() for upload in uploads)
        result = await self.host.ingest(
            Inbound(
                channel=CHANNEL,
                event_id=f"{chat_id}:{cid}",
                chat_id=chat_id,
                sender=Sender(chat_id, name, language=language),
                text=text,
                attachments=attachments,
                message_id=cid,
            )
        )
        if result.ignored is not None or result.message_id is None:
            raise Refused(403, "refused", "this chat cannot take messages now", cid=cid)
        if uploads:
            await self.files.sent([upload.key for upload in uploads], result.message_id)
        mine = wire.message(
            result.message_id, "customer", None, text, attachments, datetime.now(UTC)
        )
        self.hub.push(chat_id, {**mine, "cid": cid})
        return {"t": "ack", "cid": cid, "id": result.message_id}

    async def contact(self, chat_id: str, frame: dict[str, Any]) -> dict[str, Any]:
        """Keep the name and address a visitor left (so a reply can follow them by
        email); the thanks to show them."""
        name, email = wire.contact(frame)
        state = await self.host.chat_state(CHANNEL, chat_id) or {}
        changed = {**state}
        if name:
            changed["name"] = name
        if email:
            changed["email"] = email
        if changed != state:
            await self.host.keep_chat_state(CHANNEL, chat_id, changed)
            if email:
                who = f"{name} <{email}>" if name else email
                note = (
                    f"The visitor left their address: {who}. An answer reaches them by "
                    "email too when they have left the page."
                )
            else:
                note = f"The visitor gave their name: {name}."
            await self.host.describe_customer(CHANNEL, chat_id, name=name, note=note)
        language = changed.get("language")
        self._who[chat_id] = (self._name(chat_id, changed.get("name")), language)
        thanks = self._text("web_contact_thanks", language, email=changed.get("email") or "")
        return {
            "t": "contact",
            "name": changed.get("name"),
            "email": changed.get("email"),
            "thanks": thanks,
        }

    async def catch_up(self, chat_id: str, frame: dict[str, Any]) -> list[dict[str, Any]]:
        """The messages after the widget's last one (all, page by page), and those
        changed since it last heard from us; the last ones for a new widget."""
        after, since = wire.cursor(frame)
        frames: list[dict[str, Any]] = []
        while True:
            page = await self.host.transcript(
                CHANNEL, chat_id, after=after, changed_since=since, limit=200
            )
            frames.extend(wire.said(entry) for entry in page)
            if after == 0 or len(page) < 200:
                return frames
            after = max(after, max(entry.id for entry in page))
            since = None  # the changed ones came with the first page

    async def _sender(self, chat_id: str) -> tuple[str, str | None]:
        who = self._who.get(chat_id)
        if who is None:
            state = await self.host.chat_state(CHANNEL, chat_id) or {}
            who = (self._name(chat_id, state.get("name")), state.get("language"))
            if len(self._who) > CHATS_KEPT:
                self._who.clear()
            self._who[chat_id] = who
        return who

    @staticmethod
    def _name(chat_id: str, name: str | None) -> str:
        if name:
            return name
        if chat_id.startswith("u-"):
            return chat_id[2:]
        return f"Visitor {chat_id[2:6]}"

    async def seen(self, chat_id: str, *, leaving: bool = False) -> None:
        """Write down that the visitor is here (at most once a minute a chat, and
        when a connection closes): a reply goes by email only to a visitor gone
        longer than ``email_after_minutes``."""
        now = time.monotonic()
        if not leaving and not self._seen.due(chat_id, now):
            return
        self._seen.mark(chat_id, now)
        state = await self.host.chat_state(CHANNEL, chat_id) or {}
        await self.host.keep_chat_state(CHANNEL, chat_id, {**state, "seen": now_text()})

    async def typing(self, chat_id: str) -> None:
        """The visitor is typing: shown in the workspace, at most every few seconds
        (a platform shows it that long)."""
        now = time.monotonic()
        if not self._typing.due(chat_id, now):
            return
        if await self.host.typing(CHANNEL, chat_id):
            self._typing.mark(chat_id, now)  # typing before a conversation shows nothing
