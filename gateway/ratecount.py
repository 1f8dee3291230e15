"""How a platform counts calls against one of its limits, kept on our side.

Two ways, as the platforms count: a token bucket for a limit that tolerates a short
burst and then a steady rate (Telegram's one message a second in a chat, Slack's
one a second in a channel), and a sliding window for a limit that is a count over
a period (Telegram's 20 messages a minute in a group, 30 a second per bot). A bucket
sized for the window's count lets twice the count into the first period (a full
bucket, then the refill): 40 messages into a group in its first minute, where
Telegram allows 20 in any 60 seconds.

Both answer the same questions: how many calls could go now (``room``), how long
until ``cost`` could (``wait_time``), take them (``take``), hold off for a 429
(``drain``), and count calls from when they ended rather than when they were paid
for (``settle``).
"""

from __future__ import annotations

import bisect
from typing import Protocol


class Counter(Protocol):
    capacity: float
    #: calls a second it allows over time
    rate: float
    #: the last time it was looked at: an idle counter is full again and forgotten
    updated: float

    def room(self, now: float) -> float: ...

    def wait_time(self, now: float, cost: float = 1) -> float: ...

    def take(self, now: float, cost: float = 1) -> None: ...

    def drain(self, now: float, seconds: float) -> None: ...

    def settle(self, paid: float, now: float, cost: float) -> None: ...

    def refund(self, paid: float, cost: float) -> None: ...

    def used(self, now: float) -> float: ...


class TokenBucket:
    __slots__ = ("capacity", "drained", "rate", "tokens", "updated")

    def __init__(self, rate_per_second: float, capacity: int, now: float) -> None:
        self.rate = rate_per_second
        self.capacity = float(max(1, capacity))
        self.tokens = self.capacity
        self.updated = now
        #: when the last 429 set the tokens owed (``drain``)
        self.drained = float("-inf")

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    #: float refills land a hair under a whole token; counting that as a token avoids
    #: waits too short to move the clock (a spin), at a cost of a nanosecond's rate
    EPSILON = 1e-9

    def room(self, now: float) -> float:
        self.refill(now)
        return self.tokens + self.EPSILON

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
        self.drained = now

    def settle(self, paid: float, now: float, cost: float) -> None:
        """Take back what refilled between the payment and the calls' end, up to the
        cost: the calls then count from the later end."""
        lag = now - paid
        if lag <= 0:
            return
        self.refill(now)
        self.tokens -= min(lag * self.rate, min(cost, self.capacity))

    def refund(self, paid: float, cost: float) -> None:
        """The calls paid for were refused: the platform did not count them. Unless a
        429 came since they were paid for (their own, as a rule): its wait says
        where the bucket stands, and giving the tokens back would cut it short."""
        if self.drained >= paid:
            return
        self.tokens = min(self.capacity, self.tokens + min(cost, self.capacity))

    def used(self, now: float) -> float:
        """Calls the bucket has not yet refilled for."""
        self.refill(now)
        return self.capacity - self.tokens


class SlidingWindow:
    """At most ``capacity`` calls in any ``seconds`` long period.

    Keeps the time of each call in the last period (never more than the capacity),
    so the answer is exact rather than an average: the next call may go when the
    oldest call that would make one too many leaves the period.
    """

    __slots__ = ("blocked_until", "capacity", "rate", "seconds", "stamps", "updated")

    #: a call leaves the period this long after the platform would let it: sums of
    #: floats land a hair either side of the edge, and the edge is the platform's
    MARGIN = 1e-3

    def __init__(self, count: int, seconds: float, now: float) -> None:
        self.capacity = float(max(1, count))
        self.seconds = seconds
        self.rate = self.capacity / seconds
        #: when each call in the period ended (or was paid for, until it ends), in order
        self.stamps: list[float] = []
        #: a 429 said nothing may go before this
        self.blocked_until = 0.0
        self.updated = now

    def _expire(self, now: float) -> None:
        self.updated = max(self.updated, now)
        gone = bisect.bisect_right(self.stamps, now - self.seconds - self.MARGIN)
        if gone:
            del self.stamps[:gone]

    def room(self, now: float) -> float:
        self._expire(now)
        if now < self.blocked_until:
            return 0.0
        return self.capacity - len(self.stamps)

    def wait_time(self, now: float, cost: float = 1) -> float:
        self._expire(now)
        over = len(self.stamps) + int(min(cost, self.capacity)) - int(self.capacity)
        wait = self.stamps[over - 1] + self.seconds + self.MARGIN - now if over > 0 else 0.0
        return max(0.0, wait, self.blocked_until - now)

    def take(self, now: float, cost: float = 1) -> None:
        self._expire(now)
        for _ in range(int(min(cost, self.capacity))):
            bisect.insort(self.stamps, now)

    def drain(self, now: float, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, now + seconds)

    def settle(self, paid: float, now: float, cost: float) -> None:
        """Move the calls paid for at ``paid`` to ``now``, when they had surely
        arrived: the platform counts each from its arrival."""
        if now <= paid:
            return
        for _ in range(int(min(cost, self.capacity))):
            at = bisect.bisect_left(self.stamps, paid)
            if at == len(self.stamps) or self.stamps[at] != paid:
                break  # expired meanwhile (a call longer than the period)
            del self.stamps[at]
            bisect.insort(self.stamps, now)

    def refund(self, paid: float, cost: float) -> None:
        """The calls paid for at ``paid`` were refused: the platform did not count
        them."""
        for _ in range(int(min(cost, self.capacity))):
            at = bisect.bisect_left(self.stamps, paid)
            if at == len(self.stamps) or self.stamps[at] != paid:
                break
            del self.stamps[at]

    def used(self, now: float) -> float:
        self._expire(now)
        return float(len(self.stamps))
