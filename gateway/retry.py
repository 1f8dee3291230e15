"""When and whether to try a failed delivery again: the one retry policy.

``decide`` maps a failure and the tries made so far to a ``Decision``; the outbox
acts on it (reschedules the rows, holds off a chat or the whole destination, or
marks them failed) and nothing else reads ``retry_after`` or counts attempts.

A delivery can take several platform calls: a long text in parts, files after
their message, the messages a new thread's header carries. The first call's
failure is the delivery's, and the outbox retries the whole of it later. A later
call's is not: part of the delivery is out, and a retry from the start would send
that part twice. So ``call_part`` has a later call that meets a rate limit wait it
out where it is, a few times (``wait_within``), and any other failure is the
delivery's.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from gateway.errors import PermanentFailure, RateLimited, TemporaryFailure

T = TypeVar("T")

Scope = Literal["chat", "destination"]


@dataclass(frozen=True)
class Policy:
    """How many tries a delivery gets and how far apart (``[outbox]`` settings)."""

    max_attempts: int
    base_delay: float
    max_delay: float


@dataclass(frozen=True)
class Decision:
    """What to do with a delivery that failed.

    ``retry_in`` is None when it is given up on; ``held`` names what the platform
    throttled (the chat, or the whole destination) when it did; ``counts`` says
    whether the try is used up (being throttled is not the delivery's fault);
    ``unexpected`` marks a failure no adapter meant to raise (a bug: its traceback
    belongs in the log)."""

    retry_in: float | None
    reason: str
    counts: bool = True
    held: Scope | None = None
    unexpected: bool = False

    @property
    def gives_up(self) -> bool:
        return self.retry_in is None


def backoff(
    attempt: int,
    base: float,
    cap: float,
    jitter: Callable[[float, float], float] = random.uniform,
) -> float:
    """Exponential backoff with jitter: spreads retries after an outage."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return jitter(delay / 2, delay)


def decide(
    exc: BaseException,
    attempts: int,
    policy: Policy,
    jitter: Callable[[float, float], float] = random.uniform,
) -> Decision:
    """The decision for a delivery whose ``attempts``-th try raised ``exc``."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, RateLimited):
        held: Scope = "destination" if exc.scope == "destination" else "chat"
        return Decision(exc.retry_after, reason, counts=False, held=held)
    if isinstance(exc, PermanentFailure):
        return Decision(None, reason)
    unexpected = not isinstance(exc, TemporaryFailure)
    if attempts >= policy.max_attempts:
        return Decision(None, f"gave up after {attempts} attempts: {reason}", unexpected=unexpected)
    delay = backoff(attempts, policy.base_delay, policy.max_delay, jitter)
    return Decision(delay, reason, unexpected=unexpected)


def _no_wait(exc: Exception) -> float | None:
    return None


def wait_within(
    exc: Exception, waits: Callable[[Exception], float | None] = _no_wait
) -> float | None:
    """How long a later call of a delivery waits before it is tried again where it
    is, or None when the failure is the delivery's. A rate limit the limiter paces
    waits in the limiter (it holds the 429's scope for its Retry-After and for any
    429 that came for that scope since), so no time here; ``waits`` reads a platform
    error the limiter does not pace (a rate limit on a call outside it)."""
    if isinstance(exc, RateLimited):
        return 0.0
    return waits(exc)


async def call_part(
    call: Callable[[], Awaitable[T]],
    *,
    first: bool,
    tries: int,
    waits: Callable[[Exception], float | None] = _no_wait,
) -> T:
    """``call`` as a delivery's first call (``first``: failures are the delivery's),
    or as a later one, tried again up to ``tries`` times as ``wait_within`` says."""
    if first:
        return await call()
    for _ in range(tries):
        try:
            return await call()
        except Exception as exc:
            delay = wait_within(exc, waits)
            if delay is None:
                raise
            if delay > 0:
                await asyncio.sleep(delay)
    return await call()
