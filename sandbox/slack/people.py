"""What people do in the sandbox's Slack: write, edit, delete, press buttons, type
slash commands, and what they see; the same over HTTP (the control API) for
benchmarks and ``gateway demo``. Each action becomes the event Slack would send
(``emit``). Part of ``SlackSandbox`` (server.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.slack.world import JSON, StoredFile, World


class People:
    """The control API, for ``SlackSandbox``, which sets these up."""

    world: World
    host: str
    port: int
    #: queue an event for the app (``SlackSandbox.emit``)
    emit: Callable[..., None]
    #: events not yet sent
    pending: Callable[[], int]

    @property
    def origin(self) -> str:
        """The sandbox's own URL (the response URLs in what people send name it)."""
        return f"http://{self.host}:{self.port}"

    def add_user(self, real_name: str, **kwargs: Any) -> JSON:
        return self.world.add_user(real_name, **kwargs)

    def add_channel(self, name: str, **kwargs: Any) -> JSON:
        return self.world.add_channel(name, **kwargs)

    def dm(self, user: JSON) -> JSON:
        return self.world.dm(user)

    def post(
        self,
        user: JSON,
        text: str = "",
        *,
        channel: JSON | None = None,
        thread_ts: str | None = None,
        files: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
    ) -> JSON:
        """``user`` writes: in their DM with the app (the default), a channel, a thread.

        ``files`` are (name, content, mime type) shared with the message.
        """
        world = self.world
        place = channel or world.dm(user)
        stored = [world.store_file(data, name, mime, user["id"]) for name, data, mime in files]
        message = world.user_message(
            user, place, text, thread_ts=thread_ts, files=stored, base=self.origin
        )
        self.emit(world.event_callback(world.message_event(place, message)))
        if f"<@{world.bot_user}>" in text and world.channel_type(place) != "im":
            # Slack sends an app_mention as well, to apps subscribed to it
            mention = {
                "type": "app_mention",
                "user": user["id"],
                "text": text,
                "ts": message["ts"],
                "channel": place["id"],
                "event_ts": message["ts"],
            }
            if thread_ts:
                mention["thread_ts"] = thread_ts
            self.emit(world.event_callback(mention))
        return message

    def resend(self, channel: JSON, message: JSON) -> None:
        """The same message again under a new event_id, as Slack sometimes does."""
        self.emit(self.world.event_callback(self.world.message_event(channel, message)))

    def edit(self, user: JSON, channel: JSON, message: JSON, text: str) -> JSON:
        world = self.world
        stored = world.message(channel["id"], message["ts"])
        previous = dict(stored)
        stored["text"] = text
        stored["edited"] = {"user": user["id"], "ts": world.new_ts()}
        event = {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel["id"],
            "message": {k: v for k, v in stored.items() if k != "reactions"},
            "previous_message": previous,
            "ts": stored["edited"]["ts"],
            "event_ts": stored["edited"]["ts"],
            "channel_type": world.channel_type(channel),
        }
        self.emit(world.event_callback(event))
        return stored

    def delete(self, user: JSON, channel: JSON, message: JSON) -> None:
        world = self.world
        stored = world.message(channel["id"], message["ts"])
        stored["deleted"] = True
        ts = world.new_ts()
        self.emit(
            world.event_callback(
                {
                    "type": "message",
                    "subtype": "message_deleted",
                    "hidden": True,
                    "channel": channel["id"],
                    "deleted_ts": stored["ts"],
                    "previous_message": {k: v for k, v in stored.items() if k != "deleted"},
                    "ts": ts,
                    "event_ts": ts,
                    "channel_type": world.channel_type(channel),
                }
            )
        )

    def press(
        self,
        user: JSON,
        channel: JSON,
        message: JSON,
        action_id: str,
        *,
        value: str | None = None,
        selected: str | None = None,
    ) -> None:
        """``user`` presses a button (``value``) or picks an option (``selected``) on
        a message, or on an ephemeral one (``ephemeral(channel, user)``), which Slack
        names only by its container."""
        action: JSON = {
            "action_id": action_id,
            "block_id": "actions",
            "action_ts": self.world.new_ts(),
        }
        if selected is not None:
            action.update(type="static_select", selected_option={"value": selected})
        else:
            action.update(type="button", value=value or action_id)
        container: JSON = {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel["id"],
            "is_ephemeral": bool(message.get("ephemeral")),
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        body: JSON = {
            "type": "block_actions",
            "user": {"id": user["id"], "username": user["name"], "team_id": self.world.team["id"]},
            "api_app_id": self.world.app_id,
            "token": "sandbox-verification-token",
            "container": container,
            "trigger_id": uuid.uuid4().hex,
            "team": {"id": self.world.team["id"], "domain": "sandbox"},
            "channel": {"id": channel["id"], "name": channel.get("name", "")},
            "response_url": f"{self.origin}/actions/{uuid.uuid4().hex}",
            "actions": [action],
        }
        if not message.get("ephemeral"):
            body["message"] = self.world.message(channel["id"], message["ts"])
        self.emit(body, "interactive")

    def command(self, user: JSON, channel: JSON, command: str, text: str = "") -> None:
        """``user`` types a slash command (``/support online``) in ``channel``; the
        app's answer lands in ``ephemeral(channel, user)``."""
        self.emit(
            {
                "token": "sandbox-verification-token",
                "team_id": self.world.team["id"],
                "team_domain": "sandbox",
                "channel_id": channel["id"],
                "channel_name": channel.get("name", "directmessage"),
                "user_id": user["id"],
                "user_name": user["name"],
                "command": command,
                "text": text,
                "api_app_id": self.world.app_id,
                "response_url": f"{self.origin}/commands/{uuid.uuid4().hex}",
                "trigger_id": uuid.uuid4().hex,
            },
            "slash_commands",
        )

    def top_level(self, channel: JSON | str) -> list[JSON]:
        return self.world.top_level(channel if isinstance(channel, str) else channel["id"])

    def thread(self, channel: JSON | str, thread_ts: str) -> list[JSON]:
        return self.world.thread(channel if isinstance(channel, str) else channel["id"], thread_ts)

    def ephemeral(self, channel: JSON, user: JSON) -> list[JSON]:
        return list(self.world.ephemeral[(channel["id"], user["id"])])

    def file(self, file_id: str) -> StoredFile:
        return self.world.files[file_id]

    # -- the control API over HTTP (for benchmarks and `gateway demo`) ---------------------------

    async def _control_add_user(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(self.add_user(body.pop("real_name", "Customer"), **body))

    async def _control_post(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.world.users.get(str(body.get("user_id")))
        if user is None:
            return web.json_response({"error": "no such user"}, status=404)
        channel = (
            self.world.channels.get(str(body.get("channel_id"))) if body.get("channel_id") else None
        )
        message = self.post(
            user, str(body.get("text") or ""), channel=channel, thread_ts=body.get("thread_ts")
        )
        return web.json_response(message)

    async def _control_channel(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        thread = request.query.get("thread")
        shown = self.thread(cid, thread) if thread else self.top_level(cid)
        return web.json_response(shown)

    async def _control_stats(self, request: web.Request) -> web.Response:
        stats = self.world.stats
        return web.json_response(
            {
                "requests": stats.requests,
                "posted": stats.posted,
                "rate_limited": stats.rate_limited,
                "early_retries": stats.early_retries,
                "events_sent": stats.events_sent,
                "events_retried": stats.events_retried,
                "pending_events": self.pending(),
            }
        )
