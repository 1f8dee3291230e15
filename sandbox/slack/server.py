"""Slack on loopback: the Web API, the Events API and Socket Mode, with limits and faults.

``SlackSandbox`` serves the Web API at ``<api_base>/<method>`` (query, form or JSON
parameters, the token as ``Authorization: Bearer``), the external upload URL, file
downloads that need the bot token, and Socket Mode websockets from
``apps.connections.open``. Events go to the app the way Slack sends them: signed
HTTP requests retried when no 2xx comes within 3 seconds, or Socket Mode envelopes
redelivered until acknowledged. Tests drive people through the control API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from sandbox.common import Faults
from sandbox.slack.people import People
from sandbox.slack.webapi import METHODS
from sandbox.slack.world import JSON, ApiError, Limits, World

log = logging.getLogger(__name__)

BOT_TOKEN = "xoxb-0000-sandbox-bot-token"
APP_TOKEN = "xapp-1-sandbox-app-token"
SIGNING_SECRET = "sandbox-signing-secret-0123456789"


@dataclass
class Pending:
    """An event on its way to the app: its body, and how often it was tried."""

    body: JSON
    kind: str = "events_api"  # or "interactive"
    attempt: int = 0
    reason: str = ""


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: v0= HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSandbox(People):
    def __init__(
        self,
        *,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        signing_secret: str = SIGNING_SECRET,
        limits: Limits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ack_timeout: float = 3.0,
        retry_delays: tuple[float, ...] = (0.0, 60.0, 300.0),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.world = World(
            bot_token=bot_token,
            app_token=app_token,
            signing_secret=signing_secret,
            limits=limits,
            clock=clock,
            wall=wall,
        )
        self.host, self.port = host, port
        #: Slack waits 3 s for a 2xx or an ack, then retries, up to 3 times
        self.ack_timeout = ack_timeout
        self.retry_delays = retry_delays
        self.request_url: str | None = None
        self.faults = Faults()
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._sockets: list[web.WebSocketResponse] = []
        self._transports: dict[web.WebSocketResponse, asyncio.BaseTransport | None] = {}
        self._reachable = asyncio.Event()  # a socket is open or a Request URL is set
        self._acks: dict[str, asyncio.Future[JSON]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._busy = False  # an event is being delivered
        self._retrying = 0  # events waiting for their next try
        self._socket_turn = 0  # the connection the next event goes to
        self._idle = asyncio.Event()  # nothing queued, sending or waiting to retry
        self._idle.set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/api/{method}", self._web_api)
        self.app.router.add_post("/upload/v1/{file_id}", self._upload)
        self.app.router.add_get("/files-pri/{team_file}/{name}", self._download)
        self.app.router.add_get("/socket-mode", self._socket)
        self.app.router.add_post("/sandbox/users", self._control_add_user)
        self.app.router.add_post("/sandbox/post", self._control_post)
        self.app.router.add_get("/sandbox/channels/{cid}", self._control_channel)
        self.app.router.add_get("/sandbox/stats", self._control_stats)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def base(self) -> str:
        return self.origin

    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def api_base(self) -> str:
        """What the app's ``[slack] api_base`` is set to (slack_sdk's base_url)."""
        return f"{self.base}/api/"

    @property
    def bot_token(self) -> str:
        return self.world.bot_token

    @property
    def app_token(self) -> str:
        return self.world.app_token

    @property
    def signing_secret(self) -> str:
        return self.world.signing_secret

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()
        self._sender = asyncio.create_task(self._send_events(), name="slack-sandbox-events")

    async def stop(self) -> None:
        for task in [self._sender, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for ws in list(self._sockets):
            await ws.close()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> SlackSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults -------------------------------------------------------------------------------

    def inject(self, kind: str, *, method: str | None = None, **details: Any) -> None:
        """Misbehave on the next Web API calls (of ``method``, or any): see ``Faults``."""
        self.faults.inject(kind, method=method, **details)

    async def drop_sockets(self) -> None:
        """Cut every Socket Mode connection, as a network blip or a Slack deploy does."""
        for ws in list(self._sockets):
            transport = self._transports.pop(ws, None)
            if transport is not None:
                if isinstance(transport, asyncio.Transport):
                    transport.abort()  # no close frame: the connection just dies
                else:
                    transport.close()
        self._sockets.clear()
        self._update_reachable()

    @property
    def connected(self) -> int:
        return len([ws for ws in self._sockets if not ws.closed])

    # -- the Web API ----------------------------------------------------------------------------

    async def _web_api(self, request: web.Request) -> web.StreamResponse:
        world = self.world
        world.stats.requests += 1
        name = request.match_info["method"]
        fault = self.faults.take(name)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "drop":
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            else:
                return web.Response(status=fault.status, text="upstream connect error")
        params = await self._read_params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(params.get("token") or "")
        if name == "apps.connections.open":
            if token != world.app_token:
                return self._error(ApiError("invalid_auth" if token else "not_authed"))
            url = f"ws://{self.host}:{self.port}/socket-mode?ticket={uuid.uuid4().hex}"
            return web.json_response({"ok": True, "url": url})
        if not token:
            return self._error(ApiError("not_authed"))
        if token != world.bot_token:
            return self._error(ApiError("invalid_auth"))
        handler = METHODS.get(name)
        if handler is None:
            return self._error(ApiError("unknown_method"))
        try:
            result = await handler(world, params, self.base, self.emit)
        except ApiError as error:
            return self._error(error)
        return web.json_response({"ok": True, **result})

    @staticmethod
    def _error(error: ApiError) -> web.Response:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return web.json_response(error.to_json(), status=error.status, headers=headers)

    @staticmethod
    async def _read_params(request: web.Request) -> JSON:
        params: JSON = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                return params
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.world.pending_uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="upload not found")
        data = await request.read()
        if len(data) != upload["length"]:
            return web.Response(status=400, text="length does not match")
        upload["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        file_id = request.match_info["team_file"].rsplit("-", 1)[-1]
        stored = self.world.files.get(file_id)
        if token != self.world.bot_token:
            # Slack answers an unauthenticated download with its login page, not an error
            return web.Response(
                text="<html><body>Sign in to Slack</body></html>", content_type="text/html"
            )
        if stored is None:
            return web.Response(status=404, text="file not found")
        return web.Response(body=stored.data, content_type=stored.mime)

    # -- events ---------------------------------------------------------------------------------

    def emit(self, body: JSON, kind: str = "events_api") -> None:
        self._queue.put_nowait(Pending(body, kind))
        self._update_idle()

    async def quiet(self) -> None:
        """Until every event so far was delivered (or given up): for tests that check
        that something did *not* happen."""
        await self._idle.wait()

    def _update_idle(self) -> None:
        if self._queue.qsize() or self._busy or self._retrying:
            self._idle.clear()
        else:
            self._idle.set()

    def events_to(self, url: str | None) -> None:
        """Where events go in HTTP mode (the app's Request URL)."""
        self.request_url = url
        self._update_reachable()

    async def _send_events(self) -> None:
        """One event at a time, in order; each waits for its 2xx or ack, up to 3 s."""
        while True:
            pending = await self._queue.get()
            self._busy = True
            await self._reachable.wait()
            try:
                delivered = await self._deliver(pending)
            except Exception:
                log.exception("sandbox: an event could not be sent")
                delivered = False
            finally:
                self._busy = False
            if not delivered:
                self._retry(pending)
            self._update_idle()

    def _update_reachable(self) -> None:
        if self._sockets or self.request_url is not None:
            self._reachable.set()
        else:
            self._reachable.clear()

    def _retry(self, pending: Pending) -> None:
        if pending.attempt >= len(self.retry_delays):
            log.warning("sandbox: an event was given up after %d retries", pending.attempt)
            return
        delay = self.retry_delays[pending.attempt]
        pending.attempt += 1
        self.world.stats.events_retried += 1

        self._retrying += 1
        self._idle.clear()

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
                self._queue.put_nowait(pending)
            finally:
                self._retrying -= 1
                self._update_idle()

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, pending: Pending) -> bool:
        self.world.stats.events_sent += 1
        sockets = [ws for ws in self._sockets if not ws.closed]
        if sockets:
            # Slack spreads an app's events over its open connections
            self._socket_turn += 1
            return await self._over_socket(sockets[self._socket_turn % len(sockets)], pending)
        if self.request_url is not None:
            return await self._over_http(pending)
        return False

    async def _over_http(self, pending: Pending) -> bool:
        assert self._session is not None and self.request_url is not None
        if pending.kind == "interactive":
            body = urlencode({"payload": json.dumps(pending.body)})
            ctype = "application/x-www-form-urlencoded"
        elif pending.kind == "slash_commands":
            body = urlencode(pending.body)
            ctype = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(pending.body)
            ctype = "application/json"
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": ctype,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.world.signing_secret, timestamp, body),
        }
        if pending.attempt:
            headers["X-Slack-Retry-Num"] = str(pending.attempt)
            headers["X-Slack-Retry-Reason"] = pending.reason or "http_error"
        # the request goes on when Slack stops waiting for it: the app may still
        # commit it, and the retry must then be recognised as the same event
        call = asyncio.create_task(self._post(body, headers))
        self._tasks.add(call)
        call.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait({call}, timeout=self.ack_timeout)
        if not done:
            pending.reason = "http_timeout"
            return False
        status, answer = call.result()
        if status is None or not 200 <= status < 300:
            pending.reason = "http_error"
            return False
        self._answered(pending, answer)
        return True

    async def _post(self, body: str, headers: dict[str, str]) -> tuple[int | None, str]:
        assert self._session is not None and self.request_url is not None
        try:
            async with self._session.post(
                self.request_url, data=body.encode(), headers=headers
            ) as reply:
                return reply.status, await reply.text()
        except aiohttp.ClientError:
            return None, ""

    def _answered(self, pending: Pending, answer: str | JSON | None) -> None:
        """What the app answered a slash command with: shown to the one who typed it."""
        if pending.kind != "slash_commands" or not answer:
            return
        if isinstance(answer, str):
            try:
                answer = json.loads(answer)
            except ValueError:
                answer = {"text": answer}
        key = (str(pending.body["channel_id"]), str(pending.body["user_id"]))
        self.world.ephemeral[key].append(answer if isinstance(answer, dict) else {"text": answer})

    async def _over_socket(self, ws: web.WebSocketResponse, pending: Pending) -> bool:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": pending.body,
            "type": pending.kind,
            "accepts_response_payload": pending.kind != "events_api",
            "retry_attempt": pending.attempt,
            "retry_reason": pending.reason,
        }
        acked: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = acked
        try:
            await ws.send_json(envelope)
            ack = await asyncio.wait_for(acked, self.ack_timeout)
            self._answered(pending, ack.get("payload"))
            return True
        except (TimeoutError, ConnectionError, RuntimeError, aiohttp.ClientError):
            pending.reason = "timeout"
            return False
        finally:
            self._acks.pop(envelope_id, None)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self._transports[ws] = request.transport
        self._update_reachable()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.world.app_id},
            }
        )
        try:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(frame.data)
                except ValueError:
                    continue
                acked = self._acks.get(str(data.get("envelope_id")))
                if acked is not None and not acked.done():
                    acked.set_result(data)
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
            self._transports.pop(ws, None)
            self._update_reachable()
        return ws
