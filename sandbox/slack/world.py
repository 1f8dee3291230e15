"""The Slack world the sandbox keeps: users, channels, messages and threads, files.

Plain state with the platform's rules; no HTTP here (``server.py`` speaks the wire
protocol). Objects are the JSON dicts the Web API and the Events API carry, so what
an app receives is exactly what is stored.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.common import Bucket

JSON = dict[str, Any]

#: https://docs.slack.dev/reference/methods/chat.postMessage: longer texts are refused
MAX_TEXT = 40_000
#: a section block's text: https://docs.slack.dev/reference/block-kit/blocks/section-block
MAX_SECTION_TEXT = 3000
MAX_BLOCKS = 50
#: https://docs.slack.dev/messaging/working-with-files: up to 1 GB per file
MAX_FILE = 1024 * 1024 * 1024


class ApiError(Exception):
    """``{"ok": false, "error": ...}``: Slack answers most errors with HTTP 200."""

    def __init__(self, error: str, status: int = 200, retry_after: int | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retry_after = retry_after

    def to_json(self) -> JSON:
        return {"ok": False, "error": self.error}


@dataclass
class Limits:
    """Slack's ceilings (https://docs.slack.dev/apis/web-api/rate-limits).

    chat.postMessage: about one message a second per channel, short bursts allowed;
    chat.update and the other Tier 3 methods: about 50 calls a minute.
    """

    enabled: bool = True
    channel_per_second: float = 1.0
    channel_burst: int = 3
    tier3_per_minute: int = 50
    tier3_burst: int = 10


#: methods charged to the Tier 3 bucket (per workspace)
TIER3 = {"chat.update", "chat.delete", "reactions.add", "chat.postephemeral"}


@dataclass
class Stats:
    requests: int = 0
    posted: int = 0  # messages the app put into channels (files shared included)
    rate_limited: int = 0  # 429 answers given
    #: calls that came back for a scope before its Retry-After had passed
    early_retries: int = 0
    posted_per_channel: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: channel -> second (int) -> messages, to check that no ceiling was crossed
    per_channel_second: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    events_sent: int = 0  # event deliveries (HTTP requests or socket envelopes), retries too
    events_retried: int = 0


@dataclass
class StoredFile:
    id: str
    name: str
    mime: str
    size: int
    data: bytes
    title: str = ""
    user: str = ""

    def describe(self, base: str) -> JSON:
        url = f"{base}/files-pri/T0SANDBOX-{self.id}/{self.name}"
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mime,
            "filetype": self.name.rsplit(".", 1)[-1] if "." in self.name else "binary",
            "size": self.size,
            "user": self.user,
            "url_private": url,
            "url_private_download": url + "?download=1",
            "mode": "hosted",
        }


class World:
    def __init__(
        self,
        *,
        bot_token: str,
        app_token: str,
        signing_secret: str,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.limits = limits or Limits()
        self.clock = clock
        #: the time messages are dated with (a test may move it forward)
        self.wall = wall
        self.stats = Stats()
        self.team = {"id": "T0SANDBOX", "name": "Sandbox", "domain": "sandbox"}
        self.app_id = "A0SANDBOX"
        self.bot_user = "U0BOTUSER"
        self.bot_id = "B0SANDBOX"
        self.users: dict[str, JSON] = {}
        self.channels: dict[str, JSON] = {}
        #: channel -> ts -> message (thread replies included, with thread_ts)
        self.messages: dict[str, dict[str, JSON]] = defaultdict(dict)
        #: (channel, user) -> ephemeral messages shown to that user only
        self.ephemeral: dict[tuple[str, str], list[JSON]] = defaultdict(list)
        self.files: dict[str, StoredFile] = {}
        self.pending_uploads: dict[str, JSON] = {}
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._buckets: dict[str, Bucket] = {}
        self._blocked_until: dict[str, float] = {}
        self.users[self.bot_user] = {
            "id": self.bot_user,
            "name": "support",
            "real_name": "Support",
            "is_bot": True,
            "profile": {"display_name": "Support", "real_name": "Support", "bot_id": self.bot_id},
        }

    # -- ids and time ------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._ids):07d}"

    def new_ts(self) -> str:
        """Unique, increasing message timestamps, as Slack's "1700000000.000100"."""
        return f"{int(self.wall())}.{next(self._ts):06d}"

    @staticmethod
    def event_id() -> str:
        return "Ev" + secrets.token_hex(5).upper()

    # -- people and places -------------------------------------------------------------------

    def add_user(
        self,
        real_name: str,
        *,
        name: str | None = None,
        locale: str = "en-US",
        display_name: str | None = None,
        user_id: str | None = None,
    ) -> JSON:
        """A Slack user; ``user_id`` gives them a chosen id (an operator's from a config)."""
        uid = user_id if user_id and user_id not in self.users else self.new_id("U")
        handle = name or real_name.lower().replace(" ", ".")
        user = {
            "id": uid,
            "team_id": self.team["id"],
            "name": handle,
            "real_name": real_name,
            "is_bot": False,
            "deleted": False,
            "locale": locale,
            "tz": "Europe/Berlin",
            "profile": {
                "real_name": real_name,
                "display_name": display_name if display_name is not None else real_name,
                "image_72": f"https://avatars.sandbox/{uid}.png",
            },
        }
        self.users[uid] = user
        return user

    def add_channel(self, name: str, *, members: list[JSON] = (), private: bool = False) -> JSON:  # type: ignore[assignment]
        cid = self.new_id("G" if private else "C")
        channel = {
            "id": cid,
            "name": name,
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_private": private,
            "is_member": True,
            "members": [self.bot_user, *(u["id"] for u in members)],
        }
        self.channels[cid] = channel
        return channel

    def dm(self, user: JSON) -> JSON:
        """The app's direct-message channel with ``user`` (opened on first use)."""
        for channel in self.channels.values():
            if channel["is_im"] and channel["user"] == user["id"]:
                return channel
        cid = self.new_id("D")
        channel = {
            "id": cid,
            "is_channel": False,
            "is_group": False,
            "is_im": True,
            "is_private": True,
            "is_member": True,
            "user": user["id"],
        }
        self.channels[cid] = channel
        return channel

    def channel(self, cid: str) -> JSON:
        channel = self.channels.get(cid or "")
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    @staticmethod
    def channel_type(channel: JSON) -> str:
        if channel["is_im"]:
            return "im"
        return "group" if channel["is_private"] else "channel"

    def message(self, cid: str, ts: str) -> JSON:
        found = self.messages.get(cid, {}).get(ts or "")
        if found is None or found.get("deleted"):
            raise ApiError("message_not_found")
        return found

    def thread(self, cid: str, thread_ts: str) -> list[JSON]:
        """A thread's replies in order, the root excluded."""
        return [
            m
            for m in self.messages.get(cid, {}).values()
            if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts and not m.get("deleted")
        ]

    def top_level(self, cid: str) -> list[JSON]:
        return [
            m
            for m in self.messages.get(cid, {}).values()
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and not m.get("deleted")
        ]

    # -- limits ----------------------------------------------------------------------------------

    def charge(self, scope: str, rate: float, burst: int) -> None:
        """Take a token from ``scope`` or answer 429 with Retry-After, as Slack does."""
        if not self.limits.enabled:
            return
        now = self.clock()
        if now < self._blocked_until.get(scope, 0):
            self.stats.early_retries += 1
        bucket = self._buckets.get(scope)
        if bucket is None:
            bucket = self._buckets[scope] = Bucket(burst, rate, float(burst), now)
        wait = bucket.take(now)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            self._blocked_until[scope] = max(self._blocked_until.get(scope, 0), now + wait)
            self.stats.rate_limited += 1
            raise ApiError("ratelimited", status=429, retry_after=seconds)

    def charge_post(self, cid: str) -> None:
        self.charge(f"post:{cid}", self.limits.channel_per_second, self.limits.channel_burst)

    def charge_tier3(self, method: str) -> None:
        self.charge(f"tier3:{method}", self.limits.tier3_per_minute / 60, self.limits.tier3_burst)

    def count_post(self, cid: str) -> None:
        self.stats.posted += 1
        self.stats.posted_per_channel[cid] += 1
        self.stats.per_channel_second[cid][int(self.clock())] += 1

    # -- messages --------------------------------------------------------------------------------

    def store(self, cid: str, message: JSON) -> JSON:
        """Store a message; a reply also counts on its thread's root, as Slack shows it."""
        self.messages[cid][message["ts"]] = message
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            root = self.messages[cid].get(thread_ts)
            if root is not None:
                root["thread_ts"] = thread_ts
                root["reply_count"] = root.get("reply_count", 0) + 1
                root["latest_reply"] = message["ts"]
        return message

    def user_message(
        self,
        user: JSON,
        channel: JSON,
        text: str,
        *,
        thread_ts: str | None = None,
        files: list[StoredFile] = (),  # type: ignore[assignment]
        base: str = "",
    ) -> JSON:
        ts = self.new_ts()
        message: JSON = {
            "type": "message",
            "user": user["id"],
            "text": text,
            "ts": ts,
            "team": self.team["id"],
            "client_msg_id": secrets.token_hex(16),
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        if files:
            message["subtype"] = "file_share"
            message["files"] = [f.describe(base) for f in files]
            message.pop("client_msg_id")
        return self.store(channel["id"], message)

    def store_file(
        self, data: bytes, name: str, mime: str, user: str, title: str = ""
    ) -> StoredFile:
        stored = StoredFile(self.new_id("F"), name, mime, len(data), data, title, user)
        self.files[stored.id] = stored
        return stored

    # -- events ------------------------------------------------------------------------------------

    def event_callback(self, event: JSON) -> JSON:
        return {
            "token": "sandbox-verification-token",
            "team_id": self.team["id"],
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": self.event_id(),
            "event_time": int(self.wall()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team["id"],
                    "user_id": self.bot_user,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    def message_event(self, channel: JSON, message: JSON) -> JSON:
        event = {k: v for k, v in message.items() if k not in ("reactions", "deleted")}
        event.update(
            channel=channel["id"], event_ts=message["ts"], channel_type=self.channel_type(channel)
        )
        return event
