"""What every request to the web chat passes first: its origin, and the rate its
sender may go at.

A browser always sends Origin on a WebSocket handshake and on the POSTs the widget
makes (it never uses GET for anything but the script itself), so a page on a site
not in ``[web] origins`` cannot talk to the gateway through a visitor's browser.
Rates are buckets per visitor and per address, kept in memory: a process's share
of a spammer is all it has to turn away.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from adapters.web.config import WebSection

#: buckets untouched this long are full again, and forgotten
_IDLE_SECONDS = 3600.0
#: how many buckets a limiter keeps before it forgets idle ones
_SWEEP_AT = 10_000


class Refused(Exception):
    """A request turned away: its HTTP status and a reason the widget can show."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float = 0, **more: object
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        #: more for the widget: the message it concerns (``cid``), a limit
        self.more = more

    def frame(self) -> dict[str, object]:
        frame: dict[str, object] = {"t": "error", "code": self.code, "message": self.message}
        if self.retry_after:
            frame["retry_after"] = round(self.retry_after, 1)
        return {**frame, **self.more}


@dataclass
class Buckets:
    """At most ``rate`` a ``per_seconds`` for each key, ``rate`` at once when quiet."""

    rate: int
    per_seconds: float
    _levels: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when ``key`` may go now (and counts it); else the seconds to wait."""
        now = time.monotonic() if now is None else now
        level, at = self._levels.get(key, (float(self.rate), now))
        level = min(float(self.rate), level + (now - at) * self.rate / self.per_seconds)
        if level < 1:
            self._levels[key] = (level, now)
            return (1 - level) * self.per_seconds / self.rate
        self._levels[key] = (level - 1, now)
        if len(self._levels) > _SWEEP_AT:
            self._sweep(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        for key, (_, at) in list(self._levels.items()):
            if now - at > _IDLE_SECONDS:
                del self._levels[key]


class Guard:
    def __init__(self, section: WebSection) -> None:
        self.section = section
        self.requests = Buckets(section.requests_per_minute, 60.0)
        self.new_visitors = Buckets(section.visitors_per_hour, 3600.0)
        self.messages = Buckets(section.messages_per_minute, 60.0)

    def origin(self, request: web.Request) -> str:
        """The request's origin, when it is one the widget may run on."""
        origin = request.headers.get("Origin", "")
        if origin.lower() not in self.section.origins:
            raise Refused(403, "origin", "this site may not use the chat")
        return origin

    def address(self, request: web.Request) -> str:
        if self.section.trust_forwarded:
            forwarded = request.headers.get("X-Forwarded-For", "")
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if hops:
                return hops[-1]
        return request.remote or "unknown"

    def request(self, request: web.Request) -> str:
        """Check a request's origin and its address's rate; the origin."""
        origin = self.origin(request)
        self._charge(self.requests, self.address(request))
        return origin

    def frame(self, address: str) -> None:
        """A socket's frame counts as a request of its address."""
        self._charge(self.requests, address)

    def visitor_made(self, request: web.Request) -> None:
        self._charge(self.new_visitors, self.address(request))

    def message(self, chat_id: str) -> None:
        self._charge(self.messages, chat_id)

    @staticmethod
    def _charge(buckets: Buckets, key: str) -> None:
        wait = buckets.take(key)
        if wait:
            raise Refused(429, "rate", "too many requests: wait a little", retry_after=wait)
