"""A visitor on a site with the web chat, speaking the widget's protocol over HTTP
and a WebSocket (as ``widget.js`` does in a browser), for the demo, the tests and
the benchmarks. It knows the protocol only, not the gateway's code."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

Frame = dict[str, Any]


@dataclass
class WebVisitor:
    """One visitor's browser: its token, the frames it got, its socket."""

    base: str  # where the gateway is: "http://127.0.0.1:8080"
    http: aiohttp.ClientSession
    origin: str  # the site's origin, as a browser sends it
    token: str | None = None
    frames: list[Frame] = field(default_factory=list)
    socket: aiohttp.ClientWebSocketResponse | None = None
    #: called with each frame as it arrives
    on_frame: Callable[[Frame], None] | None = None
    #: how long ``wait`` waits before it gives up
    patience: float = 120.0
    _reader: asyncio.Task[None] | None = None
    _cids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def call(self, name: str, body: dict[str, Any]) -> tuple[int, Frame]:
        async with self.http.post(
            f"{self.base}/web/{name}", json=body, headers={"Origin": self.origin}
        ) as reply:
            return reply.status, await reply.json()

    async def start(self, **body: Any) -> Frame:
        """Open the session (as a page load does); its answer."""
        status, answer = await self.call("session", {"token": self.token, **body})
        if status != 200:
            raise RuntimeError(f"the session was refused: {status} {answer}")
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
                frame = json.loads(message.data)
                self.frames.append(frame)
                if self.on_frame is not None:
                    self.on_frame(frame)

    async def disconnect(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            await self._reader
        self.socket = self._reader = None

    async def send(self, text: str, cid: str | None = None, **more: Any) -> str:
        """Send a message over the socket; its client id."""
        cid = cid or f"c{next(self._cids)}"
        assert self.socket is not None, "connect first"
        await self.socket.send_json({"t": "send", "cid": cid, "text": text, **more})
        return cid

    async def wait(self, match: Callable[[Frame], bool], what: str) -> Frame:
        """The first frame that ``match``es, once there is one."""
        deadline = asyncio.get_running_loop().time() + self.patience
        while True:
            found = next((f for f in self.frames if match(f)), None)
            if found is not None:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"still waiting for {what}")
            await asyncio.sleep(0.01)

    def shown(self) -> dict[int, Frame]:
        """The messages on the page: by id, the last frame for each."""
        out: dict[int, Frame] = {}
        for frame in self.frames:
            if frame["t"] == "msg":
                out[frame["id"]] = frame
        return out

    def replies(self) -> list[str]:
        return [m["text"] for m in self.shown().values() if m["side"] == "operator"]
