"""The Telegram world the sandbox keeps: users, chats, topics, messages, updates, files.

Plain state with the platform's rules; no HTTP here (``server.py`` speaks the wire
protocol). Objects are stored as the JSON dicts the Bot API returns, so what a bot
receives is exactly what is stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import math
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.common import Bucket, Window

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
    #: the same by the scope that refused: "global" (the bot), "group", "chat"
    rate_limited_by_scope: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: requests that came back for a scope before its retry_after had passed
    early_retries: int = 0
    sent_per_chat: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    sent_per_bot: dict[int, int] = field(default_factory=lambda: defaultdict(int))
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
    #: getUpdates calls ended by another caller's (two pollers of one bot)
    poll_conflicts: int = 0


@dataclass
class Inbox:
    """One bot's updates waiting for getUpdates (each bot has its own)."""

    updates: list[JSON] = field(default_factory=list)
    confirmed_offset: int = 0
    new_update: asyncio.Event = field(default_factory=asyncio.Event)
    webhook: JSON = field(default_factory=lambda: {"url": "", "secret_token": None})
    #: the getUpdates call answered last began: an earlier one still waiting is
    #: ended with 409 Conflict, as Telegram ends it
    poll: int = 0
    #: set to end the getUpdates call waiting now (another one came)
    superseded: asyncio.Event = field(default_factory=asyncio.Event)


#: the bot whose token the request being answered carries (the first bot otherwise)
acting_bot: contextvars.ContextVar[JSON | None] = contextvars.ContextVar("acting_bot", default=None)


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
        #: the bot customers talk to; further bots (``add_bot``) only work in groups
        self.main_bot: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Support",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }
        #: token -> bot
        self.bots: dict[str, JSON] = {token: self.main_bot}
        self._inboxes: dict[int, Inbox] = {bot_id: Inbox()}
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, JSON] = {}
        self.messages: dict[int, dict[int, JSON]] = defaultdict(dict)  # chat -> id -> msg
        self._message_ids: dict[int, itertools.count[int]] = {}
        self.topics: dict[int, dict[int, JSON]] = defaultdict(dict)  # chat -> thread -> topic
        self.blocked: set[int] = set()  # users who blocked the bot
        self.bot_rights: dict[int, JSON] = {}  # group -> {"is_admin", "can_manage_topics"}
        self._update_ids = itertools.count(1)
        #: users' private messages by text, not yet relayed: a bot that cannot copy
        #: them (it has no chat with the user) relays their text (``record_relayed``)
        self._unrelayed: dict[str, deque[JSON]] = defaultdict(deque)
        self.files: dict[str, StoredFile] = {}
        self.callback_answers: dict[str, JSON] = {}
        self.chat_actions: list[JSON] = []
        self.commands: list[JSON] = []
        self._buckets: dict[tuple[str, int, int], Bucket | Window] = {}
        self._retry_not_before: dict[tuple[str, int, int], float] = {}
        self._ids = itertools.count(100_000_001)
        self._group_ids = itertools.count(1)

    # -- bots --------------------------------------------------------------------------

    @property
    def bot(self) -> JSON:
        """The bot making the current request (the main bot outside requests)."""
        return acting_bot.get() or self.main_bot

    def is_main(self) -> bool:
        return self.bot is self.main_bot

    def add_bot(self, token: str, username: str | None = None) -> JSON:
        """Another bot, an admin of every group as the main bot is; no user has a
        private chat with it (it was never started), so it cannot write to one."""
        bot_id = int(token.split(":", 1)[0])
        bot: JSON = {**self.main_bot, "id": bot_id, "username": username or f"Shard{bot_id}Bot"}
        self.bots[token] = bot
        self._inboxes[bot_id] = Inbox()
        return bot

    def bot_ids(self) -> set[int]:
        return {b["id"] for b in self.bots.values()}

    def inbox(self, bot: JSON | None = None) -> Inbox:
        return self._inboxes[(bot or self.bot)["id"]]

    @property
    def updates(self) -> list[JSON]:
        return self.inbox().updates

    @property
    def new_update(self) -> asyncio.Event:
        return self.inbox().new_update

    @property
    def webhook(self) -> JSON:
        return self.inbox().webhook

    @webhook.setter
    def webhook(self, value: JSON) -> None:
        self.inbox().webhook = value

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
        if chat["type"] == "private" and not sender.get("is_bot"):
            self.stats.written += 1
            if fields.get("text"):
                self._unrelayed[fields["text"]].append(message)
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

    def record_relayed(self, text: str, target_chat: int) -> None:
        """A bot's text in a group that repeats users' private messages line by line
        (a bot without a chat with them cannot copy them): each line that is the
        whole text of a message not relayed yet counts as its copy."""
        if target_chat >= 0:
            return
        for line in text.split("\n"):
            waiting = self._unrelayed.get(line)
            while waiting:
                source = waiting.popleft()
                if (source["chat"]["id"], source["message_id"]) not in self.stats.copied:
                    self.record_copy(source, target_chat)
                    break

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
        bots = self.bot_ids()
        return [
            public(m)
            for m in self.messages.get(chat_id, {}).values()
            if m["from"].get("id") in bots
            and not m.get("_deleted")
            and (thread_id is None or m.get("message_thread_id") == thread_id)
            and "forum_topic_created" not in m
        ]

    # -- updates ----------------------------------------------------------------------

    def push_raw(self, body: JSON, bot: JSON | None = None) -> int:
        """An update of any shape at all (a fuzzer's): ``body`` gets an update_id and
        goes out as it is. Returns the id."""
        inbox = self.inbox(bot or self.main_bot)
        update_id = next(self._update_ids)
        inbox.updates.append({"update_id": update_id, **body})
        inbox.new_update.set()
        return update_id

    def push_update(self, kind: str, payload: JSON, bot: JSON | None = None) -> JSON:
        """An update for ``bot`` (the main bot by default)."""
        inbox = self.inbox(bot or self.main_bot)
        update = {"update_id": next(self._update_ids), kind: public(payload)}
        inbox.updates.append(update)
        inbox.new_update.set()
        return update

    def confirm(self, offset: int) -> None:
        """getUpdates with ``offset`` confirms every update below it."""
        inbox = self.inbox()
        if offset > inbox.confirmed_offset:
            inbox.confirmed_offset = offset
            inbox.updates = [u for u in inbox.updates if u["update_id"] >= offset]

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
        bot = self.bot["id"]  # Telegram's limits are each bot's own
        scopes = [("global", bot, 0)]
        chat = self.chats.get(chat_id, {})
        private = chat.get("type") == "private"
        scopes.append(("chat", bot, chat_id) if private else ("group", bot, chat_id))
        if not private:
            scopes.append(("chat", bot, chat_id))
        for scope in scopes:
            not_before = self._retry_not_before.get(scope)
            if not_before is not None and now < not_before:
                self.stats.early_retries += 1
        if self.limits.enabled:
            counters = [self._bucket(scope, now) for scope in scopes]
            waits = [counter.wait_for(now, count) for counter in counters]
            if max(waits) > 0:
                # a refused request sends nothing: nothing counts it
                retry_after = max(1, math.ceil(max(waits)))
                for scope, wait in zip(scopes, waits, strict=True):
                    if wait > 0:
                        self._retry_not_before[scope] = now + retry_after
                        self.stats.rate_limited_by_scope[scope[0]] += 1
                self.stats.rate_limited += 1
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
                )
            for counter in counters:
                counter.count(now, count)
        self.stats.sent += count
        self.stats.sent_per_bot[bot] += count
        self.stats.sent_per_chat[chat_id] += count
        self.stats.per_chat_second[chat_id][int(now)] += count

    def flood(self, retry_after: int) -> None:
        """Hold the acting bot as a whole, as Telegram does when its bot-wide limit
        is crossed (by another process sending as the same bot, say): any of its
        requests before ``retry_after`` runs out counts as early."""
        scope = ("global", self.bot["id"], 0)
        self._retry_not_before[scope] = self.clock() + retry_after
        self.stats.rate_limited += 1
        self.stats.rate_limited_by_scope["global"] += 1

    def _bucket(self, scope: tuple[str, int, int], now: float) -> Bucket | Window:
        counter = self._buckets.get(scope)
        if counter is None:
            limits = self.limits
            if scope[0] == "chat":
                counter = Bucket(limits.chat_burst, limits.chat_per_second, limits.chat_burst, now)
            elif scope[0] == "group":
                counter = Window(limits.group_per_minute, 60.0)
            else:
                counter = Window(limits.global_per_second, 1.0)
            self._buckets[scope] = counter
        return counter


def public(obj: Any) -> Any:
    """The object as the API shows it: without the sandbox's bookkeeping keys."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj
