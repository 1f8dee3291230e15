"""Messages another gateway process delivered, to the visitors connected here.

With several processes on PostgreSQL, the outbox worker that delivers a reply to a
visitor may run in a process their socket is not connected to: its push reaches
nobody. Each process therefore reads, once a second while it holds connections,
the customer-visible web messages past the last id it has read (a primary-key
range, a few rows), and pushes those its own visitors have not had. The read
starts a little behind: ids are taken in one order and committed in another, so
it looks again at the ids of the last ``LOOK_BACK`` seconds; the hub remembers
what it pushed, so nothing is sent twice (and the widget drops a repeat anyway).
On a SQLite file there is one process, which pushes every delivery itself: the
host says so and this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from adapters.web import wire
from adapters.web.hub import Hub
from adapters.web.visitors import CHANNEL
from gateway.adapter import Host
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

#: how often the messages past the last read are read
EVERY = 1.0
#: a transaction that took its message id earlier than this may commit after
#: later ones: ids this recent are read again
LOOK_BACK = 10.0


class Fanout:
    def __init__(self, host: Host, hub: Hub) -> None:
        self.host = host
        self.hub = hub
        #: (when, the highest id read then): the floor is the newest one older
        #: than LOOK_BACK
        self._marks: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="web-fanout")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        floor = await self._start_floor()
        if floor is None:
            return
        while True:
            await asyncio.sleep(EVERY)
            if not self.hub.connections():
                continue
            try:
                floor = await self.once(floor)
            except GatewayError as exc:
                log.warning("web: could not read what other processes delivered: %s", exc)

    async def _start_floor(self) -> int | None:
        """Where reading begins: the newest message now (what came before, widgets
        read from the transcript when they connect); None on one process."""
        while True:
            try:
                latest = await self.host.latest_message_id()
                break
            except GatewayError:
                await asyncio.sleep(EVERY)
        if latest is not None:
            self._marks = [(time.monotonic(), latest)]
        return latest

    async def once(self, floor: int) -> int:
        """Push what is new past ``floor``; the next floor."""
        rows = await self.host.shown_since(CHANNEL, floor)
        now = time.monotonic()
        top = max((said.id for _chat, said in rows), default=self._marks[-1][1])
        for chat_id, said in rows:
            if self.hub.present(chat_id):
                self.hub.push_new(chat_id, wire.said(said))
        self._marks.append((now, max(top, self._marks[-1][1])))
        old = [mark for mark in self._marks if now - mark[0] >= LOOK_BACK]
        if old:
            self._marks = [old[-1], *(m for m in self._marks if now - m[0] < LOOK_BACK)]
            return old[-1][1]
        return floor
