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
from dataclasses import dataclass

from gateway.adapter import RateLimit
from gateway.events import Delivery


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate_per_second: float, capacity: int, now: float) -> None:
        self.rate = rate_per_second
        self.capacity = float(max(1, capacity))
        self.tokens = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    #: float refills land a hair under a whole token; counting that as a token avoids
    #: waits too short to move the clock (a spin), at a cost of a nanosecond's rate
    EPSILON = 1e-9

    def wait_time(self, now: float, cost: float = 1) -> float:
        self.refill(now)
        missing = min(cost, self.capacity) - self.tokens
        return 0.0 if missing <= self.EPSILON else missing / self.rate

    def take(self, now: float, cost: float = 1) -> None:
        self.refill(now)
        self.tokens -= min(cost, self.capacity)

    def drain(self, now: float, seconds: float) -> None:
        """The platform said wait: owe tokens for that long."""
        self.refill(now)
        self.tokens = min(self.tokens, 1 - seconds * self.rate)


@dataclass
class Reservation:
    """A claimed delivery's place in its buckets until its first call is made."""

    keys: tuple[tuple[str, str], ...]
    released: bool = False


@dataclass
class _Turn:
    """One serial key's places (``serial_width``), and how many callers hold or wait
    for one."""

    places: asyncio.Semaphore
    users: int = 0


#: a serial key lets go at once the calls its rate allows in this many seconds, the
#: time a call takes at most: a 429 then reaches the limiter before the calls the
#: rate would have let go after it (at Telegram's 1 a second per chat, one at a time)
SERIAL_WINDOW = 0.1


def serial_width(limit: RateLimit) -> int:
    """How many calls a serial key carries at once: one where the rate lets one call
    go per round trip or less; more where the configured rate is higher than a call
    is long (a local Bot API server, limits raised), else one call at a time caps
    the rate at one per round trip whatever the configuration says."""
    return max(1, int(limit.rate / limit.per_seconds * SERIAL_WINDOW))


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
        self._by_name = {limit.name: limit for limit in self.limits}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        #: first calls of claimed deliveries not made yet, per bucket (``reserve``)
        self._reserved: dict[tuple[str, str], int] = {}
        #: when the earliest delivery ``reserve`` turned away could go (clock time)
        self._held_until = 0.0
        self._lock = asyncio.Lock()
        #: serial keys in use (held or waited for)
        self._serial: dict[tuple[str, str], _Turn] = {}
        self._last_sweep = clock()

    def _keys(self, delivery: Delivery) -> list[tuple[str, str]]:
        return [
            (limit.name, key) for limit in self.limits if (key := limit.key(delivery)) is not None
        ]

    def _bucket(self, key: tuple[str, str], now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self._by_name[key[0]]
            bucket = TokenBucket(limit.rate / limit.per_seconds, limit.burst, now)
            self._buckets[key] = bucket
        return bucket

    def _buckets_for(self, delivery: Delivery, now: float) -> list[TokenBucket]:
        return [self._bucket(key, now) for key in self._keys(delivery)]

    def reserve(self, delivery: Delivery) -> Reservation | None:
        """A claim on the delivery's first call, if every bucket could pay it now on
        top of the claims already made; None when it would have to wait.

        The outbox asks before claiming a row: a row that could not go now stays
        unclaimed, so the customer's messages queued behind it meet it and go out
        with it in one call. Tokens are taken only when the call is made (``slot``):
        taken earlier, a platform's bucket would refill into its cap meanwhile, and a
        burst that seemed paid for would meet a 429.
        """
        now = self.clock()
        keys = self._keys(delivery)
        wait = 0.0
        for key in keys:
            bucket, wanted = self._wanted(key, now, 1)
            if wanted - bucket.tokens > TokenBucket.EPSILON:
                # at least one token's time: the claims ahead free theirs as they go
                short = min(wanted, bucket.capacity) - bucket.tokens
                wait = max(wait, short / bucket.rate, 1 / bucket.rate)
        if wait > 0:
            until = now + wait
            self._held_until = min(self._held_until, until) if self._held_until else until
            return None
        for key in keys:
            self._reserved[key] = self._reserved.get(key, 0) + 1
        return Reservation(tuple(keys))

    def affords(self, delivery: Delivery, calls: int) -> bool:
        """Whether every bucket of the delivery could pay ``calls`` calls now on top of
        the first calls claimed already (``reserve``): none of them would wait."""
        now = self.clock()
        for key in self._keys(delivery):
            bucket, wanted = self._wanted(key, now, calls)
            if wanted - bucket.tokens > TokenBucket.EPSILON:
                return False
        return True

    def _wanted(self, key: tuple[str, str], now: float, calls: int) -> tuple[TokenBucket, int]:
        """The key's bucket, refilled to now, and the tokens it would need for
        ``calls`` calls besides the first calls claimed on it already."""
        bucket = self._bucket(key, now)
        bucket.refill(now)
        return bucket, self._reserved.get(key, 0) + calls

    def release(self, reservation: Reservation | None) -> None:
        """Give a claim back (its call was made, or will not be); safe to repeat."""
        if reservation is None or reservation.released:
            return
        reservation.released = True
        for key in reservation.keys:
            left = self._reserved.get(key, 0) - 1
            if left > 0:
                self._reserved[key] = left
            else:
                self._reserved.pop(key, None)

    def held_for(self) -> float:
        """Seconds until the earliest delivery ``reserve`` turned away could go (0
        when none was turned away since the last ask)."""
        until, self._held_until = self._held_until, 0.0
        return max(0.0, until - self.clock()) if until else 0.0

    async def acquire(
        self, delivery: Delivery, cost: int = 1, reservation: Reservation | None = None
    ) -> float:
        """Wait until every bucket the delivery draws from has ``cost`` tokens (the
        platform calls it will make; at most a bucket's burst), take them and give back
        the delivery's ``reservation``; returns the wait."""
        waited = 0.0
        while True:
            async with self._lock:
                now = self.clock()
                buckets = self._buckets_for(delivery, now)
                delay = max((b.wait_time(now, cost) for b in buckets), default=0.0)
                if delay <= 0:
                    for bucket in buckets:
                        bucket.take(now, cost)
                    self.release(reservation)
                    self._sweep(now)
                    return waited
            await self.sleep(delay)
            waited += delay

    @asynccontextmanager
    async def slot(
        self, delivery: Delivery, cost: int = 1, reservation: Reservation | None = None
    ) -> AsyncIterator[float]:
        """Hold the delivery's serial keys (see ``RateLimit.serial``) and its tokens
        while the calls are made; yields the wait."""
        keys = sorted(
            (limit.name, key)
            for limit in self.limits
            if limit.serial and (key := limit.key(delivery)) is not None
        )
        async with contextlib.AsyncExitStack() as held:
            held.callback(self.release, reservation)  # also when cancelled or failed
            for key in keys:
                turn = self._serial.get(key)
                if turn is None:
                    width = serial_width(self._by_name[key[0]])
                    turn = self._serial[key] = _Turn(asyncio.Semaphore(width))
                turn.users += 1
                held.callback(self._leave, key)
                await held.enter_async_context(turn.places)
            waited = await self.acquire(delivery, cost, reservation)
            paid = self.clock()
            try:
                yield waited
            finally:
                self._settle(delivery, cost, paid)

    def _settle(self, delivery: Delivery, cost: int, paid: float) -> None:
        """Count the slot's calls as made when they ended, not when they were paid for.

        The platform's bucket counts a call from when it arrives, which may be well
        after its tokens were taken (the first call opens a connection; a busy process
        writes it late). Left counted from the payment, our bucket would have refilled
        for that lag and the next call would meet a 429: taking back what refilled
        since, up to the cost, makes the calls count from the later end.
        """
        now = self.clock()
        lag = now - paid
        if lag <= 0:
            return
        for bucket in self._buckets_for(delivery, now):
            bucket.refill(now)
            bucket.tokens -= min(lag * bucket.rate, min(cost, bucket.capacity))

    def _leave(self, key: tuple[str, str]) -> None:
        turn = self._serial[key]
        turn.users -= 1
        if turn.users == 0:
            del self._serial[key]  # nobody holds or waits for it: no state kept per chat

    def penalise(self, delivery: Delivery, seconds: float, scope: str = "chat") -> None:
        """The platform answered 429 for ``scope``: drain the buckets it throttles.
        A chat's 429 leaves the bot-wide buckets alone; draining them held every
        other chat's sends for that chat's retry_after."""
        now = self.clock()
        for key in self._keys(delivery):
            if scope == "destination" or self._by_name[key[0]].scope == scope:
                self._bucket(key, now).drain(now, seconds)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.FORGET_AFTER:
            return
        self._last_sweep = now
        stale = [
            k
            for k, b in self._buckets.items()
            if now - b.updated > self.FORGET_AFTER and k not in self._reserved
        ]
        for key in stale:
            del self._buckets[key]
