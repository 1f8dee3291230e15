"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: where the time comes from: the system clock, or a test's controllable one
_clock: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """Now, in UTC. Every timestamp and deadline in the gateway comes from here, so a
    test can move time forward (``set_clock``) instead of sleeping."""
    return _clock() if _clock is not None else datetime.now(UTC)


def set_clock(clock: Callable[[], datetime] | None) -> Callable[[], datetime] | None:
    """Use ``clock`` for ``utcnow`` (None: the system clock); returns the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type and hands back naive values; PostgreSQL keeps the
    offset. Normalising to aware UTC on the way out means the core can compare
    timestamps from either backend without caring which one it runs on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
