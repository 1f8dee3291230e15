"""Every Web API call that posts or changes a message, paced by the Slack adapter's
limiter.

A client subclass, so no call goes around it: the parts of a long text, a card's
update, a file shared in a thread, an answer to an operator, each waits for room in
the counter Slack keeps for it (chat.postMessage: about one a second per channel;
chat.update, chat.delete and the other Tier 3 methods: about 50 a minute per app)
and is counted from when it ended (``Limiter.call``). A 429's Retry-After holds off
that counter, which is the scope Slack throttles (per channel for posts, per method
tier for the rest), is logged at warning, and comes out as ``RateLimited`` for the
outbox to reschedule, or for a delivery's later call to wait out (``_then``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from gateway.errors import RateLimited
from gateway.ratelimit import Key, Limiter

log = logging.getLogger(__name__)

#: methods that put a new message into a channel (a file shared there is one)
POSTS = frozenset({"chat.postMessage", "files.completeUploadExternal"})
#: methods that change what is there, or show something to one user: Tier 3
TIER3 = frozenset({"chat.update", "chat.delete", "chat.postEphemeral", "reactions.add"})


class PacedWebClient(AsyncWebClient):
    def __init__(
        self,
        *,
        limiter: Limiter,
        keys: Callable[[str, str], Sequence[Key]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.limiter = limiter
        #: (method, channel) -> the counters a call draws from (none: not paced)
        self.keys = keys

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        channel = _channel(kwargs)
        keys = self.keys(api_method, channel) if channel else ()
        if not keys:
            return await super().api_call(api_method, **kwargs)
        async with self.limiter.call(keys) as made:
            try:
                return await super().api_call(api_method, **kwargs)
            except SlackApiError as exc:
                if not is_rate_limited(exc):
                    raise
                made.refused = True
                seconds = retry_after(exc)
                self.limiter.penalise_keys(keys, seconds)
                log.warning(
                    "slack: 429 on %s in %s: retry after %ss, held off for %s",
                    api_method,
                    channel,
                    seconds,
                    "this channel" if api_method in POSTS else f"{api_method} (Tier 3)",
                )
                raise RateLimited(seconds, scope="chat") from None


def _channel(kwargs: dict[str, Any]) -> str:
    """The channel a call is for: chat.* methods send it in the JSON body, the others
    as form or query parameters (``channel_id`` for a file's upload)."""
    for part in ("json", "params", "data"):
        values = kwargs.get(part)
        if isinstance(values, dict):
            found = values.get("channel") or values.get("channel_id")
            if found:
                return str(found)
    return ""


def is_rate_limited(exc: SlackApiError) -> bool:
    return exc.response.status_code == 429 or exc.response.get("error") == "ratelimited"


def retry_after(exc: SlackApiError) -> float:
    try:
        return float(exc.response.headers.get("Retry-After", 1))
    except (TypeError, ValueError):
        return 1.0
