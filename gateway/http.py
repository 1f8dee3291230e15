"""The gateway's HTTP server: /healthz (the process is alive), /readyz (the database
answers and every channel is connected), /metrics (Prometheus), and the webhooks
channels add."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], Awaitable[dict[str, Any]]],
        ready: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]] | None = None,
        metrics: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=32 * 1024 * 1024)
        self._health = health
        self._ready = ready
        self._metrics = metrics
        self.app.router.add_get("/healthz", self._healthz)
        if ready is not None:
            self.app.router.add_get("/readyz", self._readyz)
        if metrics is not None:
            self.app.router.add_get("/metrics", self._metrics_page)
        self._runner: web.AppRunner | None = None

    def add_route(self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]]) -> None:
        self.app.router.add_route(method, path, handler)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **await self._health()})

    async def _readyz(self, _request: web.Request) -> web.Response:
        assert self._ready is not None
        ready, details = await self._ready()
        return web.json_response(
            {"status": "ready" if ready else "not ready", **details},
            status=200 if ready else 503,
        )

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        assert self._metrics is not None
        body = await self._metrics()
        # text/plain; version=0.0.4: the exposition format Prometheus scrapes
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or ()  # an asyncio.Server
        if self.port == 0 and sockets:
            self.port = sockets[0].getsockname()[1]
        log.info(
            "HTTP server listening on http://%s:%d (/healthz, /readyz, /metrics)",
            self.host,
            self.port,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
