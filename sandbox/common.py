"""What every platform emulator needs alike: rate counters and injected faults."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass
class Bucket:
    capacity: float
    per_second: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token; 0 when granted, else the seconds until one is free."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second

    def wait_for(self, now: float, n: int) -> float:
        """0 when ``n`` more would be granted now, else the seconds until they would."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        missing = min(n, self.capacity) - self.tokens
        return 0.0 if missing <= 1e-9 else missing / self.per_second

    def count(self, now: float, n: int) -> None:
        self.wait_for(now, n)
        self.tokens -= n


@dataclass
class Window:
    """At most ``capacity`` in any ``seconds`` long period, as Telegram counts a
    group's messages (20 in any minute) and a bot's (30 in any second)."""

    capacity: int
    seconds: float
    stamps: list[float] = field(default_factory=list)

    def wait_for(self, now: float, n: int) -> float:
        """0 when ``n`` more would be granted now, else the seconds until they would."""
        del self.stamps[: bisect.bisect_right(self.stamps, now - self.seconds)]
        over = len(self.stamps) + min(n, self.capacity) - self.capacity
        return 0.0 if over <= 0 else self.stamps[over - 1] + self.seconds - now

    def count(self, now: float, n: int) -> None:
        self.stamps.extend([now] * n)


@dataclass
class Fault:
    """One injected misbehaviour: ``error`` (an HTTP 5xx), ``slow``, ``drop``, or
    ``flood`` (a 429 for the whole bot, ``delay`` seconds long; Telegram only)."""

    kind: str
    method: str | None = None  # the method's name, None for any
    #: the chat (channel) the call is for, None for any (Telegram only)
    chat: str | None = None
    times: int = 1
    delay: float = 0.0
    status: int = 502


@dataclass
class Faults:
    """The faults a test switched on; each call to a method takes the next one."""

    pending: list[Fault] = field(default_factory=list)

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        times: int = 1,
        delay: float = 0.0,
        status: int = 502,
        chat: int | str | None = None,
    ) -> None:
        """Misbehave on the next ``times`` calls (of ``method``, or any; for
        ``chat``, or any)."""
        if kind not in ("error", "slow", "drop", "flood"):
            raise ValueError("a fault is 'error', 'slow', 'drop' or 'flood'")
        where = None if chat is None else str(chat)
        self.pending.append(Fault(kind, method, where, times, delay, status))

    def take(self, method: str, chat: object = None) -> Fault | None:
        for fault in self.pending:
            if fault.method in (None, method) and fault.chat in (None, str(chat)):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return fault
        return None
