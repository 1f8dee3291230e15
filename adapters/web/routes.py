"""The web chat's HTTP face on the gateway's server: the script, the session, the
socket, the long poll and its sends, files both ways.

Every call but the script's is a POST or a WebSocket from an allowed origin
(``guard``), answered with CORS headers for that origin only. A failure is a JSON
``{"t": "error", "code", "message"}`` with a status; a database outage is 503,
which the widget retries, keeping the visitor's message until it is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from adapters.web.chat import Chat, now_text
from adapters.web.files import clean_name
from adapters.web.guard import Refused
from adapters.web.hub import Listener
from adapters.web.visitors import CHANNEL
from gateway.errors import GatewayError, PermanentFailure, ShuttingDown, StoreUnavailable

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).parent / "static" / "widget.js"
#: how long a long poll waits for something to say
POLL_SECONDS = 25.0
#: a JSON body (a message, a session) is small; files come as multipart
MAX_BODY = 256 * 1024
#: the first frame on a socket must come this soon
HELLO_SECONDS = 15.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def busy(why: str) -> Refused:
    """Come back in a moment: the database is out of reach, or the gateway stops."""
    return Refused(503, "busy", why, retry_after=2)


class Routes:
    def __init__(self, chat: Chat, public_url: str | None) -> None:
        self.chat = chat
        self.guard = chat.guard
        #: the gateway is stopping: new calls are told to come back (a long poll
        #: begun now would hold the server's shutdown up for its whole wait)
        self.closing = False
        self._script = SCRIPT.read_text().replace('"__PUBLIC_URL__"', json.dumps(public_url or ""))

    def table(self) -> list[tuple[str, str, Handler]]:
        api = self._api
        return [
            ("GET", "/widget.js", self.script),
            ("OPTIONS", "/web/{call}", self.preflight),
            ("POST", "/web/session", api(self.session)),
            ("POST", "/web/poll", api(self.poll)),
            ("POST", "/web/send", api(self.send)),
            ("POST", "/web/contact", api(self.contact)),
            ("POST", "/web/typing", api(self.typing)),
            ("POST", "/web/upload", self._guarded(self.upload)),
            ("POST", "/web/file", self._guarded(self.file)),
            ("GET", "/web/socket", self.socket),
        ]

    # -- plumbing -------------------------------------------------------------------

    @staticmethod
    def _cors(response: web.StreamResponse, origin: str) -> web.StreamResponse:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    @staticmethod
    def _refusal(refused: Refused, origin: str | None) -> web.Response:
        headers = {}
        if refused.retry_after:
            headers["Retry-After"] = str(max(1, round(refused.retry_after)))
        response = web.json_response(refused.frame(), status=refused.status, headers=headers)
        if origin is not None:
            Routes._cors(response, origin)
        return response

    def _guarded(self, handler: Handler) -> Handler:
        """Check origin and rate, answer a refusal or an outage as JSON."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            origin = None
            try:
                origin = self.guard.request(request)
                if self.closing:
                    raise busy("the chat is restarting")
                return self._cors(await handler(request), origin)
            except Refused as refused:
                return self._refusal(refused, origin)
            except (StoreUnavailable, ShuttingDown) as exc:
                log.warning("web: %s", exc)
                return self._refusal(busy("try again in a moment"), origin)

        return guarded

    def _api(self, handler: Callable[[web.Request, dict[str, Any]], Awaitable[Any]]) -> Handler:
        """A JSON call: its body read (small, an object), its answer as JSON."""

        async def call(request: web.Request) -> web.StreamResponse:
            if (request.content_length or 0) > MAX_BODY:
                raise Refused(413, "too_big", "the request is too big")
            try:
                raw = await request.content.read(MAX_BODY + 1)
                body = json.loads(raw) if raw else {}
            except (ValueError, UnicodeDecodeError):
                raise Refused(400, "json", "the request is not JSON") from None
            if len(raw) > MAX_BODY:
                raise Refused(413, "too_big", "the request is too big")
            if not isinstance(body, dict):
                raise Refused(400, "json", "the request is not a JSON object")
            return web.json_response(await handler(request, body))

        return self._guarded(call)

    # -- the calls ----------------------------------------------------------------------

    async def script(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=self._script,
            content_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def preflight(self, request: web.Request) -> web.Response:
        try:
            origin = self.guard.origin(request)
        except Refused as refused:
            return self._refusal(refused, None)
        response = web.Response(status=204)
        self._cors(response, origin)
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    async def session(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        return await self.chat.session(body, lambda: self.guard.visitor_made(request))

    async def send(self, _request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        chat_id = await self.chat.visitors.check(body.get("token"))
        return await self.chat.take(chat_id, body)

    async def contact(self, _request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        chat_id = await self.chat.visitors.check(body.get("token"))
        return await self.chat.contact(chat_id, body)

    async def typing(self, _request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        chat_id = await self.chat.visitors.check(body.get("token"))
        await self.chat.typing(chat_id)
        return {"t": "typing"}

    async def poll(self, _request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        """The long poll: what the widget has not seen, as soon as there is any."""
        chat_id = await self.chat.visitors.check(body.get("token"))
        listener = Listener(chat_id)
        self.chat.hub.join(listener)  # before reading: what is delivered now is pushed
        try:
            now = now_text()
            frames = await self.chat.catch_up(chat_id, body)
            if not frames and body.get("wait", True):
                frames = [json.loads(frame) for frame in await listener.wait(POLL_SECONDS)]
        finally:
            self.chat.hub.leave(listener)
        await self.chat.seen(chat_id)
        return {"frames": frames, "now": now}

    async def upload(self, request: web.Request) -> web.Response:
        """A file, before the message that carries it: multipart, the token first."""
        limit = int(self.chat.section.max_file_mb * 2**20)
        if (request.content_length or 0) > limit + 64 * 1024:
            raise Refused(413, "file_size", f"files up to {self.chat.section.max_file_mb:g} MB")
        try:
            reader = await request.multipart()
            token_part = await reader.next()
            if token_part is None or getattr(token_part, "name", None) != "token":
                raise Refused(400, "upload", "the token comes first")
            chat_id = await self.chat.visitors.check(
                (await token_part.read(decode=False)).decode(errors="replace")  # type: ignore[union-attr]
            )
            part = await reader.next()
            if part is None or getattr(part, "name", None) != "file":
                raise Refused(400, "upload", "no file")
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):  # type: ignore[union-attr]
                data.extend(chunk)
                if len(data) > limit:
                    raise Refused(
                        413, "file_size", f"files up to {self.chat.section.max_file_mb:g} MB"
                    )
        except (ValueError, AssertionError, KeyError) as exc:
            raise Refused(400, "upload", f"not a file upload: {exc}") from None
        self.guard.message(chat_id)
        name = getattr(part, "filename", None) or "file"
        mime = part.headers.get("Content-Type", "application/octet-stream")
        upload = await self.chat.files.keep(chat_id, name, mime, bytes(data))
        return web.json_response(
            {"t": "file", "key": upload.key, "name": upload.name, "mime": upload.mime,
             "size": upload.size}
        )  # fmt: skip

    async def file(self, request: web.Request) -> web.Response:
        """A file in the visitor's own transcript, by message and place: never
        another's, whatever numbers are asked for."""
        try:
            body = json.loads(await request.content.read(MAX_BODY))
            message_id, index = int(body["id"]), int(body["n"])
        except (ValueError, KeyError, TypeError):
            raise Refused(400, "file", "which file?") from None
        chat_id = await self.chat.visitors.check(body.get("token"))
        entries = await self.chat.host.transcript(CHANNEL, chat_id, after=message_id - 1, limit=1)
        if not entries or entries[0].id != message_id or entries[0].deleted:
            raise Refused(404, "file", "no such file")
        attachments = entries[0].attachments
        if not 0 <= index < len(attachments):
            raise Refused(404, "file", "no such file")
        try:
            data = await self.chat.host.fetch(attachments[index])
        except (PermanentFailure, GatewayError) as exc:
            raise Refused(410, "file_gone", f"the file cannot be had: {exc}") from None
        name = clean_name(data.name)
        return web.Response(
            body=data.data,
            headers={
                "Content-Type": data.mime if "/" in data.mime else "application/octet-stream",
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
                "Cache-Control": "private, max-age=3600",
            },
        )

    # -- the socket -----------------------------------------------------------------------

    async def socket(self, request: web.Request) -> web.StreamResponse:
        try:
            self.guard.request(request)
            if self.closing:
                raise busy("the chat is restarting")
        except Refused as refused:
            return self._refusal(refused, None)
        address = self.guard.address(request)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_BODY)
        await ws.prepare(request)
        try:
            hello = json.loads(await ws.receive_str(timeout=HELLO_SECONDS))
            if not isinstance(hello, dict) or hello.get("t") != "hello":
                raise Refused(400, "hello", "say hello first")
            chat_id = await self.chat.visitors.check(hello.get("token"))
        except Refused as refused:
            await ws.send_json(refused.frame())
            await ws.close(code=4000 + refused.status)
            return ws
        except (TimeoutError, ValueError, TypeError, asyncio.CancelledError):
            await ws.close(code=4400)
            return ws
        except (StoreUnavailable, ShuttingDown):
            await ws.close(code=1013)  # try again later
            return ws
        listener = Listener(
            chat_id, ws.send_str, lambda: ws.close(code=1001, message=b"going away")
        )
        self.chat.hub.join(listener)
        try:
            await self._converse(ws, listener, hello, address)
        finally:
            self.chat.hub.leave(listener)
            await listener.close()
            with contextlib.suppress(GatewayError):
                await self.chat.seen(chat_id, leaving=True)
        return ws

    async def _converse(
        self, ws: web.WebSocketResponse, listener: Listener, hello: dict[str, Any], address: str
    ) -> None:
        chat_id = listener.chat_id
        now = now_text()
        for item in await self.chat.catch_up(chat_id, hello):
            listener.push(json.dumps(item, ensure_ascii=False))
        listener.push(json.dumps({"t": "welcome", "now": now}))
        await self.chat.seen(chat_id)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                if message.type == WSMsgType.BINARY:
                    listener.push(json.dumps(Refused(400, "frame", "text frames only").frame()))
                continue
            frame: dict[str, Any] = {}
            answer: dict[str, Any] | None = None
            refused: Refused | None = None
            try:
                self.guard.frame(address)
                parsed = json.loads(message.data)
                if not isinstance(parsed, dict):
                    raise Refused(400, "frame", "a frame is a JSON object")
                frame = parsed
                answer = await self._answer(chat_id, frame)
            except Refused as refusal:
                refused = refusal
            except ValueError:
                refused = Refused(400, "frame", "a frame is a JSON object")
            except (StoreUnavailable, ShuttingDown) as exc:
                log.warning("web: %s", exc)
                refused = busy("try again in a moment")
            if refused is not None:
                # the widget matches a refusal to the message it was about
                answer = refused.frame()
                if "cid" not in answer and isinstance(frame.get("cid"), str):
                    answer["cid"] = frame["cid"]
            if answer is not None:
                listener.push(json.dumps(answer, ensure_ascii=False))

    async def _answer(self, chat_id: str, frame: dict[str, Any]) -> dict[str, Any] | None:
        kind = frame.get("t")
        if kind == "send":
            return await self.chat.take(chat_id, frame)
        if kind == "contact":
            return await self.chat.contact(chat_id, frame)
        if kind == "ping":
            return {"t": "pong"}
        if kind == "typing":
            await self.chat.typing(chat_id)
            return None
        raise Refused(400, "frame", "unknown frame type")
