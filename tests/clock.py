"""A clock a test moves forward instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class ManualClock:
    """Time that runs at its normal pace from a chosen instant, and jumps when told.

    It keeps running between jumps so that what needs real seconds to pass (an
    outbox retry, an album's short wait) still happens; the deadlines under test
    are minutes and hours away and are reached only by ``advance``.
    """

    def __init__(self, start: datetime) -> None:
        self.set(start)

    def set(self, when: datetime) -> None:
        assert when.tzinfo is not None
        self._base = when.astimezone(UTC)
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._started)

    def advance(self, **amount: float) -> datetime:
        self._base += timedelta(**amount)
        return self.now()

    def timestamp(self) -> float:
        """For the sandboxes: the time their messages are dated with."""
        return self.now().timestamp()
