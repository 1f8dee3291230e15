"""Who a browser is: visitor tokens, and the identity a site vouches for.

A visitor's chat id is ``v-`` and 128 random bits, or, for a user the site has
signed in and signed for (``[web] identity_secret``), ``u-`` and the site's user
id, the same on every device. The token a browser keeps is the chat id and a
secret of 256 random bits; the database keeps only the secret's SHA-256, so a
copy of it opens nobody's chat. Revoking a token is forgetting its digest.

A token made for a signed-in user opens that user's chat only with the site's
signature present: the page of a signed-out browser gets a fresh anonymous chat,
so the next person at a shared computer does not read the last one's history.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.web.config import WebSection
from adapters.web.guard import Refused
from gateway.adapter import Host

CHANNEL = "web"
USER_ID = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
_CHAT = re.compile(r"^(v-[A-Za-z0-9_-]{22}|u-[A-Za-z0-9._@:+-]{1,128})$")
#: a user's devices: tokens kept per chat, the oldest forgotten first
MAX_TOKENS = 10
#: how long a checked token is taken on trust before the database is asked again:
#: the longest a revoked token still works in a process that saw it
TRUST_SECONDS = 30.0


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def user_hash(secret: str, user_id: str) -> str:
    """What the site computes for a signed-in user (hex HMAC-SHA256 of the user id)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Visitor:
    chat_id: str
    token: str
    state: dict[str, Any]

    @property
    def signed_in(self) -> bool:
        return self.chat_id.startswith("u-")


class Visitors:
    def __init__(self, section: WebSection, host: Host) -> None:
        self.section = section
        self.host = host
        self._trusted: dict[str, tuple[str, float]] = {}

    async def session(
        self,
        token: str | None,
        user_id: str | None,
        signature: str | None,
        *,
        new_visitor: Callable[[], None],
    ) -> Visitor:
        """The visitor a page speaks for: the signed-in user it names, the one its
        token opens, or a new one (``new_visitor()`` is charged for it first)."""
        if user_id is not None:
            chat_id = self._signed_user(user_id, signature)
            state = await self.host.chat_state(CHANNEL, chat_id) or {}
            if token is not None and self._opens(token, chat_id, state):
                return Visitor(chat_id, token, state)
            return await self._issue(chat_id, state)
        if self.section.require_identity:
            raise Refused(403, "identity", "sign in to the site to chat")
        if token is not None:
            chat_id = token.rpartition(".")[0]
            if chat_id.startswith("v-"):
                state = await self.host.chat_state(CHANNEL, chat_id) or {}
                if self._opens(token, chat_id, state):
                    return Visitor(chat_id, token, state)
        new_visitor()
        return await self._issue(f"v-{secrets.token_urlsafe(16)}", {})

    async def check(self, token: object) -> str:
        """The chat a token opens; ``Refused`` (401) when it opens none."""
        if not isinstance(token, str) or len(token) > 400:
            raise Refused(401, "token", "start again")
        now = time.monotonic()
        trusted = self._trusted.get(token)
        if trusted is not None and now - trusted[1] < TRUST_SECONDS:
            return trusted[0]
        chat_id = token.rpartition(".")[0]
        if not _CHAT.match(chat_id):
            raise Refused(401, "token", "start again")
        state = await self.host.chat_state(CHANNEL, chat_id) or {}
        if not self._opens(token, chat_id, state):
            self._trusted.pop(token, None)
            raise Refused(401, "token", "start again")
        if len(self._trusted) > 50_000:
            self._trusted.clear()
        self._trusted[token] = (chat_id, now)
        return chat_id

    async def revoke(self, chat_id: str) -> bool:
        """Forget every token of the chat (its history stays): the next request
        with one starts a new visitor. Whether there were any."""
        state = await self.host.chat_state(CHANNEL, chat_id)
        if not state or not state.get("tokens"):
            return False
        await self.host.keep_chat_state(CHANNEL, chat_id, {**state, "tokens": []})
        for token, (chat, _) in list(self._trusted.items()):
            if chat == chat_id:
                del self._trusted[token]
        return True

    def _signed_user(self, user_id: str, signature: str | None) -> str:
        secret = self.section.identity_secret
        if secret is None:
            raise Refused(400, "identity", "this chat does not take signed-in users")
        if not USER_ID.match(user_id) or not isinstance(signature, str):
            raise Refused(403, "identity", "the site's signature does not match")
        expected = user_hash(secret.get_secret_value(), user_id)
        if not hmac.compare_digest(expected, signature.lower()):
            raise Refused(403, "identity", "the site's signature does not match")
        return f"u-{user_id}"

    @staticmethod
    def _opens(token: str, chat_id: str, state: dict[str, Any]) -> bool:
        chat, _, secret = token.rpartition(".")
        if chat != chat_id or not secret:
            return False
        digest = _digest(secret)
        return any(hmac.compare_digest(digest, kept) for kept in state.get("tokens", ()))

    async def _issue(self, chat_id: str, state: dict[str, Any]) -> Visitor:
        secret = secrets.token_urlsafe(32)
        kept = list(state.get("tokens", ()))[-(MAX_TOKENS - 1) :]
        tokens = [*kept, _digest(secret)]
        state = {**state, "tokens": tokens, "since": state.get("since") or _now()}
        await self.host.keep_chat_state(CHANNEL, chat_id, state)
        return Visitor(chat_id, f"{chat_id}.{secret}", state)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
