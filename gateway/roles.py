"""Roles only one process may have at a time, and the handing over between processes.

Telegram's getUpdates answers one poller per bot (a second gets 409 Conflict), and
one reader per mailbox is what IMAP wants. With several gateway processes on one
database, each role is held by one of them (``storage.leadership``: an advisory lock
on PostgreSQL, a file lock on SQLite); the others stand by and try again every
``TAKEOVER_SECONDS``, so when the holder dies another takes over within seconds. A
stopping process gives its roles back at once (``stand_down``) so that a rolling
restart hands them over without waiting.

Everything else runs in every process: webhooks and Slack events (behind a load
balancer), Socket Mode (Slack spreads events over an app's connections), the
outbox (claims with ``SKIP LOCKED``) and the deadlines (``SKIP LOCKED`` too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from gateway.errors import ShuttingDown

if TYPE_CHECKING:
    from storage.leadership import RoleBoard, RoleLocks

log = logging.getLogger(__name__)

#: how often a standby tries to take a role, and a holder checks that it still holds
#: its roles: a dead holder's role is taken over within about this long
TAKEOVER_SECONDS = 1.0
#: how often a holder's row in role_holders is refreshed (``gateway status``)
SEEN_SECONDS = 5.0


class Held:
    """A role this process holds: ``lost`` is set when it must stop acting on it (the
    lock's connection failed, or the gateway is stopping)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = asyncio.Event()


class Roles:
    def __init__(self, locks: RoleLocks, board: RoleBoard, holder: str) -> None:
        self.locks = locks
        self.board = board
        self.holder = holder
        self._held: dict[str, Held] = {}
        #: roles this process holds or stands by for
        self._wanted: set[str] = set()
        self._down = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    def holding(self) -> list[str]:
        return sorted(self._held)

    def states(self) -> dict[str, bool]:
        """Each role this process holds (True) or stands by for (False)."""
        return {name: name in self._held for name in sorted(self._wanted)}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[Held]:
        """Wait until this process holds ``name``, then hold it until the block ends.
        Raises ``ShuttingDown`` when the gateway stops first."""
        self._wanted.add(name)
        try:
            await self._take(name)
            held = self._held[name] = Held(name)
            log.info("roles: this process (%s) now holds %s", self.holder, name)
            with contextlib.suppress(Exception):
                await self.board.took(name, self.holder)
            self._ensure_watch()
            try:
                yield held
            finally:
                self._held.pop(name, None)
                held.lost.set()
                with contextlib.suppress(Exception):
                    await self.locks.give_back(name)
                with contextlib.suppress(Exception):
                    await self.board.gave_back(name, self.holder)
                log.info("roles: %s given back", name)
        finally:
            self._wanted.discard(name)

    async def _take(self, name: str) -> None:
        """Try the lock every TAKEOVER_SECONDS until it is this process's."""
        waited = False
        while True:
            if self._down.is_set():
                raise ShuttingDown(f"stopping: {name} is left to the other processes")
            try:
                if await self.locks.try_take(name):
                    return
            except Exception as exc:
                log.warning("roles: could not try to take %s (%s)", name, type(exc).__name__)
            if not waited:
                log.info("roles: %s is held by another process; standing by", name)
                waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._down.wait(), TAKEOVER_SECONDS)

    def _ensure_watch(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watching(), name="roles-watch")

    async def _watching(self) -> None:
        """While anything is held: check the locks still are, refresh the board."""
        since_seen = 0.0
        while self._held:
            await asyncio.sleep(TAKEOVER_SECONDS)
            if not self._held:
                return
            if not await self.locks.alive():
                for held in list(self._held.values()):
                    log.error("roles: %s was lost with the database connection", held.name)
                    held.lost.set()
                continue
            since_seen += TAKEOVER_SECONDS
            if since_seen >= SEEN_SECONDS:
                since_seen = 0.0
                with contextlib.suppress(Exception):
                    await self.board.seen(self.holding(), self.holder)

    def stand_down(self) -> None:
        """Stop taking roles, and tell the holders of those held to end: a stopping
        process hands them over at once."""
        self._down.set()
        for held in self._held.values():
            held.lost.set()

    async def close(self) -> None:
        self.stand_down()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.locks.close()
