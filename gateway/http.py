"""The gateway's HTTP server: health now, webhooks and metrics as channels add them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(
        self, host: str, port: int, health: Callable[[], Awaitable[dict[str, Any]]]
    ) -> None:
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=32 * 1024 * 1024)
        self._health = health
        self.app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None

    def add_route(self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]]) -> None:
        self.app.router.add_route(method, path, handler)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **await self._health()})

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None and server.sockets:  # type: ignore[union-attr]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("HTTP server listening on http://%s:%d (/healthz)", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
