"""Token buckets that keep each destination under its platform's ceilings.

Adapters declare their limits (``RateLimit``); one ``Limiter`` per destination holds
a bucket per limit and key (per chat, per group, bot-wide). A send waits until
every bucket it draws from has a token, so the platform never has to say 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gateway.adapter import RateLimit
from gateway.events import Delivery


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate_per_second: float, capacity: int, now: float) -> None:
        self.rate = rate_per_second
        self.capacity = float(max(1, capacity))
        self.tokens = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    #: float refills land a hair under a whole token; counting that as a token avoids
    #: waits too short to move the clock (a spin), at a cost of a nanosecond's rate
    EPSILON = 1e-9

    def wait_time(self, now: float, cost: float = 1) -> float:
        self._refill(now)
        missing = min(cost, self.capacity) - self.tokens
        return 0.0 if missing <= self.EPSILON else missing / self.rate

    def take(self, now: float, cost: float = 1) -> None:
        self._refill(now)
        self.tokens -= min(cost, self.capacity)

    def drain(self, now: float, seconds: float) -> None:
        """The platform said wait: owe tokens for that long."""
        self._refill(now)
        self.tokens = min(self.tokens, 1 - seconds * self.rate)


@dataclass
class _Turn:
    """One serial key's lock, and how many callers hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Limiter:
    #: buckets idle this long are full again and can be forgotten
    FORGET_AFTER = 600.0

    def __init__(
        self,
        limits: Sequence[RateLimit],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = tuple(limits)
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = asyncio.Lock()
        #: serial keys in use (held or waited for)
        self._serial: dict[tuple[str, str], _Turn] = {}
        self._last_sweep = clock()

    def _buckets_for(self, delivery: Delivery, now: float) -> list[TokenBucket]:
        out = []
        for limit in self.limits:
            key = limit.key(delivery)
            if key is None:
                continue
            bucket = self._buckets.get((limit.name, key))
            if bucket is None:
                bucket = TokenBucket(limit.rate / limit.per_seconds, limit.burst, now)
                self._buckets[(limit.name, key)] = bucket
            out.append(bucket)
        return out

    async def acquire(self, delivery: Delivery, cost: int = 1) -> float:
        """Wait until every bucket the delivery draws from has ``cost`` tokens (the
        platform calls it will make; at most a bucket's burst), take them; returns the
        wait."""
        waited = 0.0
        while True:
            async with self._lock:
                now = self.clock()
                buckets = self._buckets_for(delivery, now)
                delay = max((b.wait_time(now, cost) for b in buckets), default=0.0)
                if delay <= 0:
                    for bucket in buckets:
                        bucket.take(now, cost)
                    self._sweep(now)
                    return waited
            await self.sleep(delay)
            waited += delay

    @asynccontextmanager
    async def slot(self, delivery: Delivery, cost: int = 1) -> AsyncIterator[float]:
        """Hold the delivery's serial keys (see ``RateLimit.serial``) and its tokens
        while the calls are made; yields the wait."""
        keys = sorted(
            (limit.name, key)
            for limit in self.limits
            if limit.serial and (key := limit.key(delivery)) is not None
        )
        async with contextlib.AsyncExitStack() as held:
            for key in keys:
                turn = self._serial.setdefault(key, _Turn())
                turn.users += 1
                held.callback(self._leave, key)
                await held.enter_async_context(turn.lock)
            yield await self.acquire(delivery, cost)

    def _leave(self, key: tuple[str, str]) -> None:
        turn = self._serial[key]
        turn.users -= 1
        if turn.users == 0:
            del self._serial[key]  # nobody holds or waits for it: no state kept per chat

    def penalise(self, delivery: Delivery, seconds: float) -> None:
        now = self.clock()
        for bucket in self._buckets_for(delivery, now):
            bucket.drain(now, seconds)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.FORGET_AFTER:
            return
        self._last_sweep = now
        stale = [k for k, b in self._buckets.items() if now - b.updated > self.FORGET_AFTER]
        for key in stale:
            del self._buckets[key]
