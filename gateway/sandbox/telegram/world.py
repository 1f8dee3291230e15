"""The Telegram world the sandbox keeps: users, chats, topics, messages, updates, files.

Plain state with the platform's rules; no HTTP here (``server.py`` speaks the wire
protocol). Objects are stored as the JSON dicts the Bot API returns, so what a bot
receives is exactly what is stored.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.sandbox.common import Bucket

JSON = dict[str, Any]

#: https://core.telegram.org/bots/api#sendmessage and #sendphoto
MAX_TEXT = 4096
MAX_CAPTION = 1024
#: https://core.telegram.org/bots/api#getfile: bots download files up to 20 MB
MAX_DOWNLOAD = 20 * 1024 * 1024
#: https://core.telegram.org/bots/api#createforumtopic: name 1-128 characters
MAX_TOPIC_NAME = 128


class ApiError(Exception):
    """An answer with ``ok: false``: the code, description and parameters Telegram uses."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


@dataclass
class Limits:
    """Telegram's flood limits (https://core.telegram.org/bots/faq#broadcasting-to-users).

    About one message a second in a chat (a short burst is tolerated), 20 messages a
    minute in a group, about 30 messages a second overall.
    """

    enabled: bool = True
    chat_per_second: float = 1.0
    chat_burst: int = 3
    group_per_minute: int = 20
    global_per_second: int = 30


@dataclass
class Stats:
    requests: int = 0
    sent: int = 0  # messages the bot put into chats
    rate_limited: int = 0  # 429 answers given
    #: requests that came back for a scope before its retry_after had passed
    early_retries: int = 0
    sent_per_chat: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    #: chat -> second (int) -> messages: to check that no ceiling was crossed
    per_chat_second: dict[int, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    #: users' private-chat messages copied into a group: (chat, message) -> copies,
    #: and for each first copy the seconds from the message to its copy (the
    #: sandbox's own clock at both ends): what a benchmark measures
    copied: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    copy_latencies: list[float] = field(default_factory=list)
    #: Bot API calls by method (lower case), whatever their answer
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: messages users wrote in private chats (what could be copied)
    written: int = 0


@dataclass
class StoredFile:
    file_id: str
    unique_id: str
    size: int
    path: str
    data: bytes | None
    name: str | None = None
    mime: str | None = None


class World:
    def __init__(
        self,
        *,
        token: str,
        bot_username: str = "SupportSandboxBot",
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.clock = clock
        #: the time messages are dated with (a test may move it forward)
        self.wall = wall
        self.limits = limits or Limits()
        self.stats = Stats()
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 777000
        self.bot: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Support",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, JSON] = {}
        self.messages: dict[int, dict[int, JSON]] = defaultdict(dict)  # chat -> id -> msg
        self._message_ids: dict[int, itertools.count[int]] = {}
        self.topics: dict[int, dict[int, JSON]] = defaultdict(dict)  # chat -> thread -> topic
        self.blocked: set[int] = set()  # users who blocked the bot
        self.bot_rights: dict[int, JSON] = {}  # group -> {"is_admin", "can_manage_topics"}
        self.updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self.confirmed_offset = 0
        self.new_update = asyncio.Event()
        self.files: dict[str, StoredFile] = {}
        self.callback_answers: dict[str, JSON] = {}
        self.chat_actions: list[JSON] = []
        self.commands: list[JSON] = []
        self.webhook: JSON = {"url": "", "secret_token": None}
        self._buckets: dict[tuple[str, int], Bucket] = {}
        self._retry_not_before: dict[tuple[str, int], float] = {}
        self._ids = itertools.count(100_000_001)
        self._group_ids = itertools.count(1)

    # -- people and chats ------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str | None = "en",
        last_name: str | None = None,
        user_id: int | None = None,
    ) -> JSON:
        """A Telegram user; ``user_id`` gives them a chosen id (an operator's from a
        config), otherwise the next free one."""
        if user_id is None or user_id in self.users:
            user_id = next(self._ids)
            while user_id in self.users:
                user_id = next(self._ids)
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        chat: JSON = {"id": user_id, "type": "private", "first_name": first_name}
        if username:
            chat["username"] = username
        self.chats[user_id] = chat
        return user

    def add_forum(
        self,
        title: str = "Support desk",
        *,
        bot_is_admin: bool = True,
        can_manage_topics: bool = True,
    ) -> JSON:
        chat_id = -1_000_000_000_000 - next(self._group_ids)
        chat: JSON = {"id": chat_id, "type": "supergroup", "title": title, "is_forum": True}
        self.chats[chat_id] = chat
        self.bot_rights[chat_id] = {
            "is_admin": bot_is_admin,
            "can_manage_topics": bot_is_admin and can_manage_topics,
        }
        return chat

    def chat(self, chat_id: Any) -> JSON:
        try:
            found = self.chats.get(int(chat_id))
        except (TypeError, ValueError):
            found = next(
                (c for c in self.chats.values() if f"@{c.get('username')}" == chat_id), None
            )
        if found is None:
            raise bad_request("chat not found")
        return found

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def now(self) -> int:
        return int(self.wall())

    # -- messages ---------------------------------------------------------------------

    def store_message(
        self, chat_id: int, sender: JSON, fields: JSON, thread_id: int | None = None
    ) -> JSON:
        chat = self.chats[chat_id]
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "date": self.now(),
            "chat": chat,
            "from": sender,
            **fields,
            "_created": self.clock(),
        }
        if chat["type"] == "private" and sender.get("id") != self.bot["id"]:
            self.stats.written += 1
        if thread_id is not None:
            topic = self.topics[chat_id].get(thread_id)
            if topic is None or topic.get("deleted"):
                raise bad_request("message thread not found")
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        self.messages[chat_id][message["message_id"]] = message
        return message

    def record_copy(self, source: JSON, target_chat: int) -> None:
        """A user's private message copied into a group: count it, time the first copy."""
        if source["chat"]["type"] != "private" or target_chat >= 0:
            return
        key = (source["chat"]["id"], source["message_id"])
        self.stats.copied[key] += 1
        if self.stats.copied[key] == 1 and "_created" in source:
            self.stats.copy_latencies.append(self.clock() - source["_created"])

    def find_message(self, chat_id: int, message_id: int, purpose: str) -> JSON:
        message = self.messages.get(chat_id, {}).get(message_id)
        if message is None or message.get("_deleted"):
            raise bad_request(f"message to {purpose} not found")
        return message

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Deleting a topic deletes every message in it, as on Telegram."""
        self.topics[chat_id][thread_id]["deleted"] = True
        for message in self.messages.get(chat_id, {}).values():
            if message.get("message_thread_id") == thread_id or message["message_id"] == thread_id:
                message["_deleted"] = True

    def received(self, chat_id: int, thread_id: int | None = None) -> list[JSON]:
        """What the bot put into a chat (or one of its topics), as it looks now."""
        return [
            public(m)
            for m in self.messages.get(chat_id, {}).values()
            if m["from"].get("id") == self.bot["id"]
            and not m.get("_deleted")
            and (thread_id is None or m.get("message_thread_id") == thread_id)
            and "forum_topic_created" not in m
        ]

    # -- updates ----------------------------------------------------------------------

    def push_update(self, kind: str, payload: JSON) -> JSON:
        update = {"update_id": next(self._update_ids), kind: public(payload)}
        self.updates.append(update)
        self.new_update.set()
        return update

    def confirm(self, offset: int) -> None:
        """getUpdates with ``offset`` confirms every update below it."""
        if offset > self.confirmed_offset:
            self.confirmed_offset = offset
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def pending(self, limit: int = 100) -> list[JSON]:
        return self.updates[:limit]

    # -- files ------------------------------------------------------------------------

    def store_file(
        self,
        data: bytes | None,
        *,
        size: int | None = None,
        name: str | None = None,
        mime: str | None = None,
        folder: str = "documents",
    ) -> StoredFile:
        unique = uuid.uuid4().hex[:16]
        file_id = f"F{unique}{uuid.uuid4().hex[:12]}"
        extension = name.rsplit(".", 1)[-1] if name and "." in name else "bin"
        stored = StoredFile(
            file_id=file_id,
            unique_id=unique,
            size=size if size is not None else len(data or b""),
            path=f"{folder}/file_{len(self.files)}.{extension}",
            data=data,
            name=name,
            mime=mime,
        )
        self.files[file_id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        return stored

    # -- flood control ------------------------------------------------------------------

    def check_flood(self, chat_id: int, count: int = 1) -> None:
        """Raise 429 when a send would cross a ceiling; count it as sent otherwise."""
        now = self.clock()
        scopes = [("global", 0)]
        chat = self.chats.get(chat_id, {})
        scopes.append(("group", chat_id) if chat.get("type") != "private" else ("chat", chat_id))
        if chat.get("type") != "private":
            scopes.append(("chat", chat_id))
        for scope in scopes:
            not_before = self._retry_not_before.get(scope)
            if not_before is not None and now < not_before:
                self.stats.early_retries += 1
        if self.limits.enabled:
            for _ in range(count):
                waits = [self._bucket(scope, now).take(now) for scope in scopes]
                wait = max(waits)
                if wait > 0:
                    retry_after = max(1, math.ceil(wait))
                    for scope, scope_wait in zip(scopes, waits, strict=True):
                        if scope_wait > 0:
                            self._retry_not_before[scope] = now + retry_after
                    self.stats.rate_limited += 1
                    raise ApiError(
                        429,
                        f"Too Many Requests: retry after {retry_after}",
                        retry_after=retry_after,
                    )
        self.stats.sent += count
        self.stats.sent_per_chat[chat_id] += count
        self.stats.per_chat_second[chat_id][int(now)] += count

    def _bucket(self, scope: tuple[str, int], now: float) -> Bucket:
        bucket = self._buckets.get(scope)
        if bucket is None:
            limits = self.limits
            capacity, rate = {
                "global": (limits.global_per_second, float(limits.global_per_second)),
                "group": (limits.group_per_minute, limits.group_per_minute / 60.0),
                "chat": (limits.chat_burst, limits.chat_per_second),
            }[scope[0]]
            bucket = Bucket(capacity, rate, capacity, now)
            self._buckets[scope] = bucket
        return bucket


def public(obj: Any) -> Any:
    """The object as the API shows it: without the sandbox's bookkeeping keys."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj
