"""The composition root: builds storage, core, handlers, adapters and workers.

Nothing else wires parts together or reads global state. Channel adapters are found
by scanning the ``adapters`` package for modules that expose ``PLUGIN``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import adapters as adapters_package
import handlers
from gateway.actions import ActionRegistry
from gateway.adapter import Adapter, ChannelPlugin
from gateway.config import Config, load_config
from gateway.core import Core
from gateway.errors import PermanentFailure, ShuttingDown
from gateway.events import (
    ActionResult,
    Attachment,
    FileData,
    Inbound,
    IngestResult,
    OperatorCommand,
)
from gateway.http import HttpServer
from gateway.outbox import OutboxWorker
from storage import Database, Repository
from storage.migrate import ensure_schema
from storage.models import Presence

log = logging.getLogger(__name__)

#: files relayed from one channel to another pass through memory; Telegram takes
#: uploads up to 50 MB from bots, so a bigger file could go nowhere anyway
MAX_RELAYED_FILE = 50 * 2**20


def discover_plugins() -> dict[str, ChannelPlugin]:
    plugins: dict[str, ChannelPlugin] = {}
    for module_info in pkgutil.iter_modules(adapters_package.__path__):
        module = importlib.import_module(f"adapters.{module_info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if isinstance(plugin, ChannelPlugin):
            plugins[plugin.name] = plugin
    return plugins


def load(path: str | Path, plugins: dict[str, ChannelPlugin] | None = None) -> Config:
    plugins = discover_plugins() if plugins is None else plugins
    return load_config(path, {name: p.config_model for name, p in plugins.items()})


class _Host:
    """What adapters see of the gateway (the ``Host`` protocol)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def ingest(self, inbound: Inbound) -> IngestResult:
        self._gateway.check_accepting()
        return await self._gateway.core.ingest(inbound)

    async def act(self, command: OperatorCommand) -> ActionResult:
        self._gateway.check_accepting()
        return await self._gateway.core.act(command)

    def add_route(self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]]) -> None:
        self._gateway.http.add_route(method, path, handler)

    async def fetch(self, attachment: Attachment) -> FileData:
        origin = next((a for a in self._gateway.adapters if a.name == attachment.origin), None)
        if origin is None:
            raise PermanentFailure(
                f"the file came from {attachment.origin or 'an unknown channel'}, "
                "which is not configured now"
            )
        if attachment.size is not None and attachment.size > MAX_RELAYED_FILE:
            raise PermanentFailure(
                f"over the {MAX_RELAYED_FILE // 2**20} MB the gateway passes between channels"
            )
        return await origin.fetch(attachment)


class Gateway:
    def __init__(
        self,
        config: Config,
        *,
        plugins: dict[str, ChannelPlugin] | None = None,
        adapters: Sequence[Adapter] = (),
        serve_http: bool = True,
    ) -> None:
        self.config = config
        plugins = discover_plugins() if plugins is None else plugins
        given = {a.name for a in adapters}  # an adapter passed in takes its channel's place
        built = [
            plugins[name].create(section, config)
            for name, section in config.channels.items()
            if name not in given
        ]
        self.adapters: list[Adapter] = [*built, *adapters]
        names = [a.name for a in self.adapters]
        if len(set(names)) != len(names):
            raise ValueError(f"two adapters share a name: {names}")
        self.db = Database(config.gateway.database_url)
        self.repository = Repository(self.db)
        actions = ActionRegistry()
        handlers.register(actions)
        self.core = Core(
            self.repository,
            lambda: self.config,
            workspaces=tuple(a.name for a in self.adapters if a.serves_workspace),
            actions=actions,
            on_enqueued=self._wake,
        )
        self.workers = {a.name: OutboxWorker(self.core, a, config.outbox) for a in self.adapters}
        self.http = HttpServer(config.gateway.http_host, config.gateway.http_port, self._health)
        self._serve_http = serve_http
        self._started: list[Adapter] = []
        self._stopped = asyncio.Event()
        self._accepting = True

    def _wake(self, destinations: Iterable[str]) -> None:
        for name in destinations:
            worker = self.workers.get(name)
            if worker is not None:
                worker.wake()

    async def _health(self) -> dict[str, Any]:
        return {
            "channels": [a.name for a in self.adapters],
            "workspaces": list(self.core.desk.workspaces),
        }

    async def start(self) -> None:
        config = self.config
        log.info("database: %s", self.db.display_url)
        await ensure_schema(self.db, config_path=str(config.path or "config.toml"))
        async with self.repository.transaction() as tx:
            await tx.ensure_operators(
                (op.id for op in config.operators), Presence(config.routing.initial_presence)
            )
            if self.db.is_sqlite:
                # one process owns a SQLite file: whatever was in flight died with
                # the previous process and can go out again at once
                released = await tx.release_leases()
                if released:
                    log.info("%d deliveries interrupted by the last stop will be retried", released)
            backlog = await tx.outbox_counts()
        orphans = sorted(
            {d for (d, s), n in backlog.items() if s != "failed" and n and d not in self.workers}
        )
        for destination in orphans:
            log.warning(
                "deliveries to %r are waiting, but no %r channel is configured: they go out "
                "once its section is back in the config",
                destination,
                destination,
            )
        for worker in self.workers.values():
            worker.start()
        host = _Host(self)
        try:
            for adapter in self.adapters:
                await adapter.start(host)
                self._started.append(adapter)
            # after the adapters: they add their webhook routes, and aiohttp freezes the
            # router when the server starts
            if self._serve_http:
                await self.http.start()
        except BaseException:
            await self.stop()
            raise
        if not self.adapters:
            log.warning(
                "no channel is configured: the gateway runs (database, HTTP /healthz) but no "
                "customer can reach it; add a [telegram], [slack] or [email] section"
            )
        else:
            log.info("channels: %s", ", ".join(a.name for a in self.adapters))
        log.info(
            "gateway started: %d operator(s), routing %s",
            len(config.operators),
            config.routing.strategy,
        )

    def check_accepting(self) -> None:
        if not self._accepting:
            raise ShuttingDown("the gateway is stopping; send this event again after restart")

    async def stop(self) -> None:
        """Stop intake, let in-flight deliveries finish within the timeout, close.

        Safe to call twice (a signal during a stop already under way)."""
        if not self._accepting:
            return
        self._accepting = False
        timeout = self.config.gateway.shutdown_timeout_seconds
        log.info("stopping: finishing in-flight deliveries (up to %gs)", timeout)
        await asyncio.gather(*(w.stop(timeout) for w in self.workers.values()))
        for adapter in reversed(self._started):
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter %s did not stop cleanly", adapter.name)
        self._started.clear()
        await self.http.stop()
        await self.db.dispose()
        log.info("stopped")

    def request_stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM, stop gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            await self._stopped.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
