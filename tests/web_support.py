"""A desk with the web chat on a real HTTP server, and a visitor that speaks the
widget's protocol (aiohttp's client: the same WebSocket and POSTs a browser makes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.email.adapter import EmailAdapter
from adapters.web.adapter import WebAdapter
from gateway.adapter import Adapter
from gateway.app import Gateway
from gateway.config import Config, parse_config
from gateway.plugins import channel_models
from sandbox.visitor import WebVisitor
from tests.support import SAFETY_SECONDS, RecordingAdapter, config_text, migrate

SITE = "https://shop.example.com"


def web_config_text(database_url: str, tmp_path: Any, web: str = "", **options: Any) -> str:
    extra = options.pop("extra", "")
    return (
        config_text(database_url, **options)
        + extra
        + (f'\n[web]\norigins = ["{SITE}"]\nfiles_dir = "{tmp_path}/web-files"\n' + web)
    )


def web_config(database_url: str, tmp_path: Any, web: str = "", **options: Any) -> Config:
    return parse_config(web_config_text(database_url, tmp_path, web, **options), channel_models())


@dataclass
class WebDesk:
    gateway: Gateway
    tg: RecordingAdapter
    web: WebAdapter

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.gateway.http.port}"


@asynccontextmanager
async def web_desk(config: Config, *, email: bool = False) -> AsyncIterator[WebDesk]:
    """The gateway with a recording Telegram workspace, the web chat, and (``email``)
    the real email channel of the config."""
    await migrate(config.gateway.database_url)
    tg = RecordingAdapter()
    web = WebAdapter(config.channels["web"], config)  # type: ignore[arg-type]
    adapters: list[Adapter] = [tg, web]
    if email:
        adapters.append(EmailAdapter(config.channels["email"], config))  # type: ignore[arg-type]
    gateway = Gateway(config, plugins={}, adapters=adapters, serve_http=True)
    await gateway.start()
    try:
        yield WebDesk(gateway, tg, web)
    finally:
        await gateway.stop()


async def until(condition: Callable[[], Any], what: str, limit: float = SAFETY_SECONDS) -> Any:
    """Wait for ``condition()`` to be truthy (the limit only stops a broken test)."""
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        value = condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.01)


def Browser(base: str, http: aiohttp.ClientSession, origin: str = SITE, **more: Any) -> WebVisitor:
    """A visitor's browser on the test site (the sandbox's protocol client)."""
    return WebVisitor(base, http, origin, patience=SAFETY_SECONDS, **more)
