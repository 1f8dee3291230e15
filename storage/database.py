"""The async engine, tuned per backend, and the schema's migration state."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import sqlite_inline

log = logging.getLogger(__name__)

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
SQLITE_BUSY_TIMEOUT_MS = 10_000


class DatabaseError(Exception):
    """The database cannot be used as configured; the message says what to do."""


class SchemaOutdated(DatabaseError):
    pass


def safe_url(url: str | URL) -> str:
    """The URL as it may appear in logs and CLI output: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One async engine plus what the backend needs to behave under concurrency.

    SQLite: run on the loop's thread (``storage.sqlite_inline``), WAL so readers
    never block the writer, a busy timeout so a second process waits instead of
    failing, and ``BEGIN IMMEDIATE`` so every transaction
    takes the write lock up front. Without the latter two read-then-write
    transactions can deadlock on the lock upgrade, which SQLite reports at once as
    "database is locked" whatever the busy timeout.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url)
        driver = f"{parsed.get_backend_name()}+{parsed.get_driver_name()}"
        if driver not in SUPPORTED_DRIVERS:
            raise DatabaseError(
                f"unsupported database driver {driver!r}: use one of {', '.join(SUPPORTED_DRIVERS)}"
            )
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise DatabaseError(
                    "an in-memory SQLite database loses everything on restart; "
                    "give a file path, e.g. sqlite+aiosqlite:///gateway.db"
                )
            path = Path(database).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            if parsed.query:
                # driver options in the URL: aiosqlite's own connect understands them
                kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            else:
                kwargs["async_creator"] = sqlite_inline.creator(
                    str(path), SQLITE_BUSY_TIMEOUT_MS / 1000
                )
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)

    @property
    def display_url(self) -> str:
        return safe_url(self.url)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver, so that our own BEGIN
        # (below) is the only one emitted.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        if not isinstance(dbapi_connection.driver_connection, sqlite_inline.InlineConnection):
            # (an inline connection waits for locks itself, off SQLite's busy handler)
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
