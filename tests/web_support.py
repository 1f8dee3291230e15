"""A desk with the web chat on a real HTTP server, and a visitor that speaks the
widget's protocol (aiohttp's client: the same WebSocket and POSTs a browser makes)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from adapters.email.adapter import EmailAdapter
from adapters.web.adapter import WebAdapter
from gateway.adapter import Adapter
from gateway.app import Gateway
from gateway.config import Config, parse_config
from gateway.plugins import channel_models
from tests.support import SAFETY_SECONDS, RecordingAdapter, config_text, migrate

SITE = "https://shop.example.com"


def web_config(database_url: str, tmp_path: Any, web: str = "", **options: Any) -> Config:
    extra = options.pop("extra", "")
    text = (
        config_text(database_url, **options)
        + extra
        + (f'\n[web]\norigins = ["{SITE}"]\nfiles_dir = "{tmp_path}/web-files"\n' + web)
    )
    return parse_config(text, channel_models())


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


@dataclass
class Browser:
    """One visitor's browser: its token, the frames it got, its socket."""

    base: str
    http: aiohttp.ClientSession
    origin: str = SITE
    token: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    socket: aiohttp.ClientWebSocketResponse | None = None
    _reader: asyncio.Task[None] | None = None
    _cids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def call(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(
            f"{self.base}/web/{name}", json=body, headers={"Origin": self.origin}
        ) as reply:
            return reply.status, await reply.json()

    async def start(self, **body: Any) -> dict[str, Any]:
        status, answer = await self.call("session", {"token": self.token, **body})
        assert status == 200, answer
        self.token = answer["token"]
        return answer

    async def connect(self, after: int = 0, since: str | None = None) -> None:
        self.socket = await self.http.ws_connect(
            f"{self.base}/web/socket", headers={"Origin": self.origin}
        )
        await self.socket.send_json({"t": "hello", "token": self.token, "after": after,
                                     "since": since})  # fmt: skip
        self._reader = asyncio.create_task(self._read(self.socket))
        await self.wait(lambda f: f["t"] == "welcome", "the welcome")

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))

    async def disconnect(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            await self._reader
        self.socket = self._reader = None

    async def send(self, text: str, cid: str | None = None, **more: Any) -> str:
        cid = cid or f"c{next(self._cids)}"
        assert self.socket is not None
        await self.socket.send_json({"t": "send", "cid": cid, "text": text, **more})
        return cid

    async def wait(self, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        return await until(lambda: next((f for f in self.frames if match(f)), None), what)

    def shown(self) -> dict[int, dict[str, Any]]:
        """The messages on the page: by id, the last frame for each."""
        out: dict[int, dict[str, Any]] = {}
        for frame in self.frames:
            if frame["t"] == "msg":
                out[frame["id"]] = frame
        return out

    def replies(self) -> list[str]:
        return [m["text"] for m in self.shown().values() if m["side"] == "operator"]
