"""The Bot API on loopback: Telegram's wire protocol, limits and faults, for real SDKs.

``TelegramSandbox`` serves ``/bot<token>/<method>`` (JSON, form or multipart bodies,
answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"}``), file downloads at ``/file/bot<token>/<path>``, pushes updates to a
webhook when one is set, and offers tests a control API: make users write, edit,
press buttons, block the bot, delete topics; read what each chat received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.common import Faults
from sandbox.telegram.botapi import (
    METHODS,
    Upload,
    decode,
    describe_file,
    new_query_id,
)
from sandbox.telegram.world import (
    JSON,
    ApiError,
    Limits,
    World,
    acting_bot,
    public,
)

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:SANDBOX-token-not-for-production"


class TelegramSandbox:
    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        limits: Limits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.world = World(token=token, limits=limits, clock=clock, wall=wall)
        self.host, self.port = host, port
        self.webhook_retry_delay = webhook_retry_delay
        self.faults = Faults()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._bot_api)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self.app.router.add_post("/sandbox/users", self._control_add_user)
        self.app.router.add_post("/sandbox/send", self._control_send)
        self.app.router.add_get("/sandbox/chats/{chat_id}", self._control_received)
        self.app.router.add_get("/sandbox/stats", self._control_stats)
        self._runner: web.AppRunner | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.webhook_deliveries = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str:
        return self.world.token

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._pusher = asyncio.create_task(self._push_webhook(), name="sandbox-webhook")

    async def stop(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        self.world.new_update.set()  # release long polls
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> TelegramSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults -----------------------------------------------------------------------------

    def inject(self, kind: str, *, method: str | None = None, **details: Any) -> None:
        """Misbehave on the next calls (of ``method``, or any): see ``Faults.inject``."""
        self.faults.inject(kind, method=method.lower() if method else None, **details)

    # -- the Bot API ------------------------------------------------------------------------

    async def _bot_api(self, request: web.Request) -> web.StreamResponse:
        self.world.stats.requests += 1
        bot = self.world.bots.get(request.match_info["token"])
        if bot is None:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        acting = acting_bot.set(bot)  # what world.bot means while this request runs
        try:
            return await self._answer(request)
        finally:
            acting_bot.reset(acting)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        world = self.world
        name = request.match_info["method"].lower()
        try:
            raw, uploads = await self._read_params(request)
        except ApiError as error:
            return web.json_response(error.to_json(), status=error.code)
        fault = self.faults.take(name, raw.get("chat_id"))
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "flood":
                retry_after = max(1, round(fault.delay))
                world.flood(retry_after)
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {retry_after}",
                        "parameters": {"retry_after": retry_after},
                    },
                    status=429,
                )
            elif fault.kind == "drop":
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            else:
                said = "Bad Request: refused" if fault.status < 500 else "Bad Gateway"
                return web.json_response(
                    {"ok": False, "error_code": fault.status, "description": said},
                    status=fault.status,
                )
        handler = METHODS.get(name)
        world.stats.calls[name] += 1
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
                status=404,
            )
        try:
            result = await handler(world, decode(raw), uploads)
        except ApiError as error:
            return web.json_response(error.to_json(), status=error.code)
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.method != "POST" or not request.can_read_body:
            return raw, uploads
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: the body must be a JSON object")
            raw.update(
                {
                    k: json.dumps(v)
                    if isinstance(v, (dict, list))
                    else (str(v).lower() if isinstance(v, bool) else v)
                    for k, v in body.items()
                }
            )
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    uploads[part.name] = Upload(
                        await part.read(),
                        part.filename,
                        part.headers.get(aiohttp.hdrs.CONTENT_TYPE),
                    )
                else:
                    raw[part.name] = await part.text()
        else:
            raw.update(dict(await request.post()))
        return {k: str(v) if isinstance(v, (int, float)) else v for k, v in raw.items()}, uploads

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self.world.bots:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        stored = next((f for f in self.world.files.values() if f.path == path), None)
        if stored is None or stored.data is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(
            body=stored.data, content_type=stored.mime or "application/octet-stream"
        )

    # -- webhook ------------------------------------------------------------------------------

    async def _push_webhook(self) -> None:
        """POST pending updates to the webhook as Telegram does: several at once (up to
        the webhook's ``max_connections``, 40 unless set), but one at a time per chat,
        in order; an update not answered 2xx is sent again after a pause."""
        world = self.world
        in_flight: dict[object, asyncio.Task[None]] = {}  # chat -> its update's POST
        done = asyncio.Event()
        async with aiohttp.ClientSession() as session:

            async def push(update: JSON, chat: object) -> None:
                try:
                    if await self._post_update(session, update):
                        with contextlib.suppress(ValueError):
                            world.updates.remove(update)
                        self.webhook_deliveries += 1
                    else:
                        await asyncio.sleep(self.webhook_retry_delay)
                finally:
                    in_flight.pop(chat, None)
                    done.set()

            while True:
                webhook = world.webhook
                room = int(webhook.get("max_connections") or 40) - len(in_flight)
                ready = []
                if webhook["url"] and room > 0:
                    waiting: set[object] = set()
                    for update in world.updates:
                        chat = _chat_of(update)
                        if chat in in_flight or chat in waiting:
                            waiting.add(chat)  # behind an earlier one of its chat
                            continue
                        ready.append((update, chat))
                        waiting.add(chat)
                        if len(ready) >= room:
                            break
                for update, chat in ready:
                    in_flight[chat] = asyncio.create_task(push(update, chat))
                if ready:
                    continue
                world.new_update.clear()
                done.clear()
                waits = [asyncio.ensure_future(world.new_update.wait())]
                if in_flight:
                    waits.append(asyncio.ensure_future(done.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiting_task in waits:
                        waiting_task.cancel()

    async def _post_update(self, session: aiohttp.ClientSession, update: JSON) -> bool:
        world = self.world
        headers = {}
        if world.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = world.webhook["secret_token"]
        try:
            async with session.post(
                world.webhook["url"],
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as reply:
                return 200 <= reply.status < 300
        except (aiohttp.ClientError, TimeoutError):
            return False

    # -- what people do (the control API) ------------------------------------------------------

    def add_user(self, first_name: str, **kwargs: Any) -> JSON:
        return self.world.add_user(first_name, **kwargs)

    def add_forum(self, title: str = "Support desk", **kwargs: Any) -> JSON:
        return self.world.add_forum(title, **kwargs)

    def send(
        self,
        user: JSON,
        text: str | None = None,
        *,
        chat_id: int | None = None,
        thread_id: int | None = None,
        entities: list[JSON] | None = None,
        media: str | None = None,
        caption: str | None = None,
        file_size: int = 2048,
        file_name: str | None = None,
        mime: str | None = None,
        media_group_id: str | None = None,
        reply_to: JSON | None = None,
        fields: JSON | None = None,
    ) -> JSON:
        """A user writes: into their private chat with the bot, or a group's topic.

        ``media`` is a kind (photo, document, voice, video, audio, animation, sticker,
        video_note) with generated content of ``file_size`` bytes; ``fields`` adds any
        other content as-is (location, venue, contact, poll, dice).
        """
        world = self.world
        content: JSON = dict(fields or {})
        if text is not None:
            content["text"] = text
            if entities:
                content["entities"] = entities
        if media:
            data = bytes(range(256)) * (file_size // 256) + bytes(file_size % 256)
            stored = world.store_file(
                data if file_size <= 25 * 1024 * 1024 else None,
                size=file_size,
                name=file_name,
                mime=mime,
                folder=f"{media}s",
            )
            content[media] = describe_file(
                media, stored.file_id, stored.unique_id, stored.size, stored.name, stored.mime
            )
            if caption:
                content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        if reply_to is not None:
            content["reply_to_message"] = public(reply_to)
        target = chat_id if chat_id is not None else user["id"]
        message = world.store_message(target, user, content, thread_id)
        world.push_update("message", message)
        return public(message)

    def edit(self, message: JSON, text: str) -> JSON:
        stored = self.world.messages[message["chat"]["id"]][message["message_id"]]
        stored["text" if "text" in stored else "caption"] = text
        stored["edit_date"] = self.world.now()
        self.world.push_update("edited_message", stored)
        return public(stored)

    def press(self, user: JSON, message: JSON, data: str) -> str:
        """A user presses an inline button under ``message``; returns the query id."""
        query_id = new_query_id()
        stored = self.world.messages[message["chat"]["id"]][message["message_id"]]
        self.world.push_update(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "message": stored,
                "chat_instance": str(abs(message["chat"]["id"])),
                "data": data,
            },
            bot=stored["from"] if stored["from"].get("is_bot") else None,  # the sender's
        )
        return query_id

    def add_bot(self, token: str, username: str | None = None) -> JSON:
        """A further bot (its own token, limits and updates), admin of every group."""
        return self.world.add_bot(token, username)

    def block_bot(self, user: JSON) -> None:
        self.world.blocked.add(user["id"])
        self.world.push_update(
            "my_chat_member",
            {
                "chat": self.world.chats[user["id"]],
                "from": user,
                "date": self.world.now(),
                "old_chat_member": {"status": "member", "user": self.world.bot},
                "new_chat_member": {"status": "kicked", "user": self.world.bot, "until_date": 0},
            },
        )

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """A group admin deletes a topic (and with it, its messages)."""
        self.world.delete_topic(chat_id, thread_id)

    def received(self, chat_id: int, thread_id: int | None = None) -> list[JSON]:
        return self.world.received(chat_id, thread_id)

    def topics(self, chat_id: int) -> list[JSON]:
        return [dict(t) for t in self.world.topics[chat_id].values() if not t.get("deleted")]

    # -- the control API over HTTP (for benchmarks and `gateway sandbox`) ------------------------

    async def _control_add_user(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.add_user(body.pop("first_name", "Customer"), **body)
        return web.json_response(user)

    async def _control_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.world.users.get(int(body.pop("user_id", 0)))
        if user is None:
            return web.json_response({"error": "no such user"}, status=404)
        try:
            message = self.send(user, body.pop("text", None), **body)
        except (ApiError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(message)

    async def _control_received(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        thread = request.query.get("thread")
        return web.json_response(self.received(chat_id, int(thread) if thread else None))

    async def _control_stats(self, request: web.Request) -> web.Response:
        stats = self.world.stats
        return web.json_response(
            {
                "requests": stats.requests,
                "sent": stats.sent,
                "rate_limited": stats.rate_limited,
                "early_retries": stats.early_retries,
                "pending_updates": len(self.world.updates),
                "written": stats.written,
                "copied": len(stats.copied),
                "duplicates": sum(n - 1 for n in stats.copied.values()),
                "copy_latencies": stats.copy_latencies,
                "calls": dict(stats.calls),
                "sent_per_bot": {str(k): v for k, v in stats.sent_per_bot.items()},
            }
        )


def _chat_of(update: JSON) -> object:
    """The chat an update is about (its updates go out one after the other), or the
    update itself when it is about none."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if isinstance(update.get(kind), dict):
            return (update[kind].get("chat") or {}).get("id")
    query = update.get("callback_query")
    if isinstance(query, dict):
        return ((query.get("message") or {}).get("chat") or {}).get("id")
    member = update.get("my_chat_member")
    if isinstance(member, dict):
        return (member.get("chat") or {}).get("id")
    return ("update", update.get("update_id"))
