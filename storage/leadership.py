"""Locks that let one process at a time hold a role, whatever the number of processes.

PostgreSQL: a session advisory lock per role, taken on a connection of its own
that stays open while the process holds anything. When the process dies, its
connection closes and PostgreSQL frees the lock at once: a standby takes the role
at its next try, with no lease to run out and no clock to trust. A holder checks
its connection every few seconds (``alive``); one that cannot reach the database
any more stops acting as the holder, since the server frees its locks when it sees
the connection gone.

SQLite: one file, one machine. An exclusive ``flock`` on a file beside the database,
one per role, which the kernel frees when the process dies. A second process on the
same file (by mistake, or during a restart) stands by instead of polling too.

``RoleBoard`` keeps the ``role_holders`` rows that say who holds what.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from storage.database import Database
from storage.models import RoleHolder
from storage.repository import Repository
from storage.types import utcnow

log = logging.getLogger(__name__)

#: how long a liveness check of the lock's connection may take before it counts as lost
CHECK_TIMEOUT_SECONDS = 3.0


class RoleLocks(Protocol):
    async def try_take(self, role: str) -> bool:
        """Take ``role`` if nobody holds it; True when this process holds it now."""

    async def give_back(self, role: str) -> None:
        """Free ``role`` (this process held it)."""

    async def alive(self) -> bool:
        """Whether the roles taken are still held (False: all of them are lost)."""

    async def close(self) -> None:
        """Give every role back."""


def lock_key(role: str) -> int:
    """A role's advisory lock key: a signed 64-bit number from its name."""
    digest = hashlib.blake2b(f"support-gateway:{role}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLocks:
    """PostgreSQL session advisory locks, on one connection kept for them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._use = asyncio.Lock()
        self._held: set[str] = set()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self.db.engine.connect()
            # autocommit: the session holds the locks, not a transaction left open
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def try_take(self, role: str) -> bool:
        async with self._use:
            conn = await self._connection()
            taken = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(role)}
            )
            if taken:
                self._held.add(role)
            return bool(taken)

    async def give_back(self, role: str) -> None:
        async with self._use:
            if role not in self._held or self._conn is None:
                return
            self._held.discard(role)
            try:
                await self._conn.scalar(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(role)}
                )
            except Exception:
                # the connection is gone, and the lock with it; a fresh one next time
                await self._drop()

    async def alive(self) -> bool:
        async with self._use:
            if self._conn is None:
                return not self._held
            try:
                await asyncio.wait_for(self._conn.scalar(text("SELECT 1")), CHECK_TIMEOUT_SECONDS)
                return True
            except Exception as exc:
                log.warning(
                    "roles: the connection holding the roles failed (%s)", type(exc).__name__
                )
                self._held.clear()
                await self._drop()
                return False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        async with self._use:
            self._held.clear()
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with contextlib.suppress(Exception):
                    await conn.scalar(text("SELECT pg_advisory_unlock_all()"))
                with contextlib.suppress(Exception):
                    await conn.close()


class FileLocks:
    """``flock`` on a file per role beside the SQLite database (a local file: opening
    it does not wait on anything)."""

    def __init__(self, database_file: str) -> None:
        self.base = Path(database_file)
        self._fds: dict[str, int] = {}

    def _path(self, role: str) -> Path:
        safe = "".join(c if c.isalnum() else "-" for c in role)
        return self.base.with_name(f"{self.base.name}.{safe}.lock")

    async def try_take(self, role: str) -> bool:
        if role in self._fds:
            return True
        fd = os.open(self._path(role), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fds[role] = fd
        return True

    async def give_back(self, role: str) -> None:
        fd = self._fds.pop(role, None)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def alive(self) -> bool:
        return True  # a lock the kernel holds for a live process stays held

    async def close(self) -> None:
        for role in list(self._fds):
            await self.give_back(role)


def role_locks(db: Database) -> RoleLocks:
    if db.is_sqlite:
        return FileLocks(db.url.database or "gateway.db")
    return AdvisoryLocks(db)


def holder_name(port: int | None = None) -> str:
    """How this process is named among the holders: host, process id, HTTP port."""
    name = f"{os.uname().nodename}:{os.getpid()}"
    return f"{name}:{port}" if port else name


class RoleBoard:
    """The ``role_holders`` rows: written by the holders, read by ``gateway status``."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    async def took(self, role: str, holder: str) -> None:
        now = utcnow()
        async with self.repository.transaction() as tx:
            row = await tx.session.get(RoleHolder, role, with_for_update=True)
            if row is None:
                row = RoleHolder(name=role, holder=holder, since=now, seen_at=now)
            else:
                row.holder, row.since, row.seen_at = holder, now, now
            tx.add(row)

    async def seen(self, roles: list[str], holder: str) -> None:
        if not roles:
            return
        now = utcnow()
        async with self.repository.transaction() as tx:
            for role in roles:
                row = await tx.session.get(RoleHolder, role, with_for_update=True)
                if row is not None and row.holder == holder:
                    row.seen_at = now
                    tx.add(row)

    async def gave_back(self, role: str, holder: str) -> None:
        async with self.repository.transaction() as tx:
            await tx.session.exec(
                delete(RoleHolder).where(
                    col(RoleHolder.name) == role, col(RoleHolder.holder) == holder
                )
            )

    @staticmethod
    async def read(repository: Repository) -> list[tuple[str, str, datetime, datetime]]:
        """(role, holder, since, seen at) for every role someone holds."""
        async with repository.transaction() as tx:
            rows = await tx.role_holders()
        return [(r.name, r.holder, r.since, r.seen_at) for r in rows]
