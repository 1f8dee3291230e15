"""Counters that keep each destination under its platform's ceilings.

Adapters declare their limits (``RateLimit``); one ``Limiter`` per destination holds
a counter (``ratecount``) per limit and key (per chat, per group, bot-wide). A call
waits until every counter it draws from has room, so the platform never has to say
429; when it does all the same, the 429 holds off the scope it was meant for
(``Limiter.scope_of``): one chat, one group, or the whole bot.
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
from gateway.ratecount import Counter, SlidingWindow, TokenBucket

#: a counter's key: the limit's name and the key within it (a chat, a group, "bot")
Key = tuple[str, str]


@dataclass
class Reservation:
    """A claimed delivery's place in its counters until its calls are made."""

    keys: tuple[Key, ...]
    #: calls claimed on each key
    calls: tuple[int, ...]
    released: bool = False


@dataclass
class PacedCall:
    """A call ``Limiter.call`` let go: how long it waited, and whether the platform
    refused it (a 429 counts against no limit, so it is not counted here either)."""

    waited: float
    refused: bool = False


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
    #: a key may be what a 429 was about when it was within this many calls of its
    #: limit (``scope_of``): the platform may count one more than we did
    BUSY_WITHIN = 1
    #: 429s for two different chats this close together speak for the whole bot
    SPREAD_SECONDS = 1.0

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
        self._buckets: dict[Key, Counter] = {}
        #: calls of claimed deliveries not made yet, per counter (``reserve``)
        self._reserved: dict[Key, int] = {}
        #: when the earliest delivery ``reserve`` turned away could go (clock time)
        self._held_until = 0.0
        self._lock = asyncio.Lock()
        #: serial keys in use (held or waited for)
        self._serial: dict[Key, _Turn] = {}
        self._last_sweep = clock()
        #: the narrow keys of the last 429 and when it came (``scope_of``)
        self._last_429: tuple[float, tuple[Key, ...]] | None = None

    def keys(self, delivery: Delivery) -> tuple[Key, ...]:
        """The counters a delivery's calls draw from."""
        return tuple(
            (limit.name, key) for limit in self.limits if (key := limit.key(delivery)) is not None
        )

    def _bucket(self, key: Key, now: float) -> Counter:
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self._by_name[key[0]]
            bucket = (
                SlidingWindow(int(limit.rate), limit.per_seconds, now)
                if limit.window
                else TokenBucket(limit.rate / limit.per_seconds, limit.burst, now)
            )
            self._buckets[key] = bucket
        return bucket

    def reserve(self, delivery: Delivery, calls: int = 1) -> Reservation | None:
        """A claim on the delivery's ``calls`` calls (as many as a counter holds at
        most), if every counter could let them go now on top of the claims already
        made; None when they would have to wait.

        The outbox asks before claiming a row: a row that could not go now stays
        unclaimed, so the customer's messages queued behind it meet it and go out
        with it in one call, and the rows of other chats are claimed instead of it.
        Room is taken only when the calls are made: taken earlier, a platform's
        bucket would refill into its cap meanwhile, and a burst that seemed paid for
        would meet a 429.
        """
        now = self.clock()
        keys = self.keys(delivery)
        wait = 0.0
        wanted: list[int] = []
        for key in keys:
            bucket = self._bucket(key, now)
            want = min(calls, int(bucket.capacity))
            wanted.append(want)
            total = self._reserved.get(key, 0) + want
            if total > bucket.room(now):
                # at least one call's time: the claims ahead free theirs as they go
                short = bucket.wait_time(now, min(total, bucket.capacity))
                wait = max(wait, short, 1 / bucket.rate)
        if wait > 0:
            until = now + wait
            self._held_until = min(self._held_until, until) if self._held_until else until
            return None
        for key, want in zip(keys, wanted, strict=True):
            self._reserved[key] = self._reserved.get(key, 0) + want
        return Reservation(keys, tuple(wanted))

    def affords(self, delivery: Delivery, calls: int) -> bool:
        """Whether every counter of the delivery could let ``calls`` calls go now on
        top of the calls claimed already (``reserve``): none of them would wait."""
        now = self.clock()
        for key in self.keys(delivery):
            bucket = self._bucket(key, now)
            if self._reserved.get(key, 0) + calls > bucket.room(now):
                return False
        return True

    def release(self, reservation: Reservation | None) -> None:
        """Give a claim back (its calls were made, or will not be); safe to repeat."""
        if reservation is None or reservation.released:
            return
        reservation.released = True
        for key, calls in zip(reservation.keys, reservation.calls, strict=True):
            left = self._reserved.get(key, 0) - calls
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
        """Wait until every counter the delivery draws from has room for ``cost``
        calls (at most a counter's capacity), take it and give back the delivery's
        ``reservation``; returns the wait."""
        waited, _paid = await self._take(self.keys(delivery), cost)
        self.release(reservation)
        return waited

    async def _take(self, keys: Sequence[Key], cost: int) -> tuple[float, float]:
        """Wait for room, take it; the wait, and the time the calls were counted at
        (a window finds them by it to count them from their end, ``_settle``)."""
        waited = 0.0
        while True:
            async with self._lock:
                now = self.clock()
                buckets = [self._bucket(key, now) for key in keys]
                delay = max((b.wait_time(now, cost) for b in buckets), default=0.0)
                if delay <= 0:
                    for bucket in buckets:
                        bucket.take(now, cost)
                    self._sweep(now)
                    return waited, now
            await self.sleep(delay)
            waited += delay

    @asynccontextmanager
    async def call(self, keys: Sequence[Key], count: int = 1) -> AsyncIterator[PacedCall]:
        """One platform call that puts ``count`` messages out: waits for room in
        ``keys``'s counters, and counts the call from its end (``_settle``), or not
        at all when the platform refused it (``PacedCall.refused``)."""
        waited, paid = await self._take(keys, count)
        made = PacedCall(waited)
        try:
            yield made
        finally:
            if made.refused:
                now = self.clock()
                for key in keys:
                    self._bucket(key, now).refund(paid, count)
            else:
                self._settle(keys, count, paid)

    @asynccontextmanager
    async def slot(
        self,
        delivery: Delivery,
        cost: int = 1,
        reservation: Reservation | None = None,
        *,
        upfront: bool = True,
    ) -> AsyncIterator[float]:
        """Hold the delivery's serial keys (see ``RateLimit.serial``) while its calls
        are made, and its claim until they end; yields the wait.

        ``upfront``: take the room for all ``cost`` calls before the first. Without,
        the adapter paces each of its calls itself (``call``), so a delivery of many
        calls (a long text's parts) goes at the limits' pace, not all at once.
        """
        serial: list[Key] = sorted(
            (limit.name, key)
            for limit in self.limits
            if limit.serial and (key := limit.key(delivery)) is not None
        )
        async with contextlib.AsyncExitStack() as held:
            held.callback(self.release, reservation)  # also when cancelled or failed
            for place in serial:
                turn = self._serial.get(place)
                if turn is None:
                    width = serial_width(self._by_name[place[0]])
                    turn = self._serial[place] = _Turn(asyncio.Semaphore(width))
                turn.users += 1
                held.callback(self._leave, place)
                await held.enter_async_context(turn.places)
            if not upfront:
                yield 0.0
                return
            waited, paid = await self._take(self.keys(delivery), cost)
            self.release(reservation)
            try:
                yield waited
            finally:
                self._settle(self.keys(delivery), cost, paid)

    def _settle(self, keys: Sequence[Key], cost: int, paid: float) -> None:
        """Count the calls as made when they ended, not when they were paid for.

        The platform counts a call from when it arrives, which may be well after its
        room was taken (the first call opens a connection; a busy process writes it
        late). Counted from the payment, our counter would free that room early and
        the next call would meet a 429.
        """
        now = self.clock()
        if now <= paid:
            return
        for key in keys:
            self._bucket(key, now).settle(paid, now, cost)

    def _leave(self, key: Key) -> None:
        turn = self._serial[key]
        turn.users -= 1
        if turn.users == 0:
            del self._serial[key]  # nobody holds or waits for it: no state kept per chat

    def scope_of(self, keys: Sequence[Key]) -> str:
        """Which scope a 429 answered to a call on ``keys`` was about: ``"chat"`` (a
        chat or group: the call's narrow keys) or ``"destination"`` (the whole bot).

        The platforms do not say (Telegram answers "retry after N" alike for all),
        so it is read from what the gateway sent, which keeps to every limit as the
        platform counts it: a narrow key within a call of its limit may explain the
        429; when none was, something the gateway does not count (another process
        sending as the same bot, a lower limit for the bot) does, and every chat
        waits. Two 429s for different chats within a second speak for the whole bot
        too. Taking the bot's 429 for a chat's sends other chats' calls early, which
        the platform counts against the bot; the other way round costs only a wait.
        """
        now = self.clock()
        narrow = tuple(key for key in keys if self._by_name[key[0]].scope != "destination")
        last, self._last_429 = self._last_429, (now, narrow)
        if last is not None and now - last[0] < self.SPREAD_SECONDS and last[1] != narrow:
            return "destination"
        for key in narrow:
            bucket = self._bucket(key, now)
            if bucket.used(now) >= max(1.0, bucket.capacity - self.BUSY_WITHIN):
                return "chat"
        return "destination"

    def penalise(self, delivery: Delivery, seconds: float, scope: str = "chat") -> None:
        """The platform answered 429 for ``scope``: hold off the counters it throttles."""
        self.penalise_keys(self.keys(delivery), seconds, scope)

    def penalise_keys(self, keys: Sequence[Key], seconds: float, scope: str = "chat") -> None:
        """A chat's 429 leaves the bot-wide counters alone: draining them held every
        other chat's sends for that chat's retry_after. A bot-wide one drains the
        bot's counter, which every call draws from."""
        now = self.clock()
        for key in keys:
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
