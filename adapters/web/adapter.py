"""Web chat visitors: a widget on the site (``static/widget.js``) talks to the
gateway's own HTTP server over a WebSocket, or a long poll where sockets do not
get through; no platform in between.

A visitor's message is acknowledged to the widget only once the core has
committed it; the widget keeps it, and sends it again with the same client id,
until then (the client id is the dedupe key). What reaches the visitor is pushed
to their open connections when delivered, and read from the transcript by every
widget that (re)connects, from the last message it has: nothing is kept here that
a restart could lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters.web import wire
from adapters.web.absent import Absent
from adapters.web.chat import Chat
from adapters.web.config import WebSection
from adapters.web.fanout import Fanout
from adapters.web.files import FileStore
from adapters.web.hub import Hub
from adapters.web.routes import Routes
from gateway.adapter import AdapterBase, Host
from gateway.config import Config
from gateway.events import Attachment, Delivery, FileData, Receipt

log = logging.getLogger(__name__)

#: how often visitors' files no message carries any more are deleted
SWEEP_SECONDS = 3600.0


class WebAdapter(AdapterBase):
    name = "web"
    serves_workspace = False

    def __init__(self, section: WebSection, config: Config) -> None:
        self.section = section
        self.config = config
        self.hub = Hub()
        self.files = FileStore(section)
        self.chat: Chat | None = None
        self.absent: Absent | None = None
        self.routes: Routes | None = None
        self.fanout: Fanout | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def cost(self, delivery: Delivery) -> int:
        return 1

    async def start(self, host: Host) -> None:
        self.chat = Chat(self.section, self.config, host, self.hub, self.files)
        self.absent = Absent(self.section, host, self.hub)
        self.routes = Routes(self.chat, self.section.public_url)
        for method, path, handler in self.routes.table():
            host.add_route(method, path, handler)
        self.fanout = Fanout(host, self.hub)
        self.fanout.start()
        self._sweeper = asyncio.create_task(self._sweep(host), name="web-files")
        log.info(
            "web chat: /widget.js for %s, files in %s",
            ", ".join(self.section.origins),
            self.files.directory,
        )

    async def stop(self) -> None:
        """Turn new calls away, then end every connection: widgets come back to this
        process once it is up again, or to another one."""
        if self.routes is not None:
            self.routes.closing = True
        if self.fanout is not None:
            await self.fanout.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.hub.close()

    async def deliver(self, delivery: Delivery) -> Receipt:
        """Show it to the visitor where they are connected; the transcript has it
        for when they come back, and a visitor gone gets a person's reply by email."""
        outbound = delivery.outbound
        frame = wire.delivered(delivery)
        if frame is not None and outbound.chat_id:
            # a new message goes once; its edits and its deletion always go
            push = self.hub.push_new if outbound.kind == "message" else self.hub.push
            push(outbound.chat_id, frame)
        if self.absent is not None:
            await self.absent.follow(delivery)
        ids = (f"m{outbound.message_id}",) if outbound.message_id is not None else ()
        return Receipt(external_ids=ids, chat_id=outbound.chat_id)

    async def _sweep(self, host: Host) -> None:
        """Hourly: delete the visitors' files that no message carries any more (an
        erase, the retention period) and those never sent."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                gone = await self.files.sweep(host.message_files)
            except Exception as exc:  # the next hour tries again
                log.warning("web: could not clear old files from %s: %s", self.files.directory, exc)
                continue
            if gone:
                log.info("web: %d file(s) no message carries any more, deleted", gone)

    async def fetch(self, attachment: Attachment) -> FileData:
        return await self.files.read(attachment)
