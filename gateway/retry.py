"""Retrying one call of a delivery already under way.

A delivery can take several platform calls: a long text in parts, files after
their message, the messages a new thread's header carries. The first call's
failure is the delivery's, and the outbox retries the whole of it later, with
backoff. A later call's is not: part of the delivery is out, and a retry from the
start would send that part twice. So a later call that meets a rate limit waits it
out where it is, a few times (the limiter holds the 429's scope, so trying again
waits there for its Retry-After and for any 429 that came for that scope since);
any other failure, or a rate limit past the tries, is the delivery's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.errors import RateLimited

T = TypeVar("T")


def _no_wait(exc: Exception) -> float | None:
    return None


async def call_part(
    call: Callable[[], Awaitable[T]],
    *,
    first: bool,
    tries: int,
    waits: Callable[[Exception], float | None] = _no_wait,
) -> T:
    """``call`` as a delivery's first call (``first``: failures are the delivery's),
    or as a later one. ``waits``: how long a platform error the limiter does not
    pace asks to wait (a rate limit on a call outside it), or None for any other."""
    if first:
        return await call()
    for _ in range(tries):
        try:
            return await call()
        except RateLimited:
            continue
        except Exception as exc:
            delay = waits(exc)
            if delay is None:
                raise
            await asyncio.sleep(delay)
    return await call()
