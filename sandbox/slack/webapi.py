"""The Web API methods the gateway uses, as Slack answers them.

Each method takes the world, the call's parameters (query, form or JSON alike) and
the sandbox's base URL, and returns the ``result`` fields or raises ``ApiError``.
Messages the app posts raise events too, as in Slack, so an app that takes its own
messages in again would loop here as it would there.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.slack.world import (
    JSON,
    MAX_BLOCKS,
    MAX_FILE,
    MAX_SECTION_TEXT,
    MAX_TEXT,
    TIER3,
    ApiError,
    StoredFile,
    World,
)

Emit = Callable[[JSON], None]
Method = Callable[[World, JSON, str, Emit], Awaitable[JSON]]
METHODS: dict[str, Method] = {}


def method(name: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


def _json_param(params: JSON, name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(f"invalid_{name}") from None
    return value


def _blocks(params: JSON) -> list[JSON] | None:
    blocks = _json_param(params, "blocks")
    if blocks is None or blocks == "":
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        raise ApiError("invalid_blocks")
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            raise ApiError("invalid_blocks")
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > MAX_SECTION_TEXT:
            raise ApiError("invalid_blocks")
        for element in block.get("elements", ()):
            if not isinstance(element, dict) or "type" not in element:
                raise ApiError("invalid_blocks")
    return blocks


def _text(params: JSON, blocks: list[JSON] | None) -> str:
    text = str(params.get("text") or "")
    if not text and not blocks:
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return text


def _member(world: World, cid: str) -> JSON:
    channel = world.channel(cid)
    if not channel["is_im"] and world.bot_user not in channel.get("members", ()):
        raise ApiError("not_in_channel")
    return channel


def bot_message(world: World, channel: JSON, text: str, params: JSON) -> JSON:
    message: JSON = {
        "type": "message",
        "text": text,
        "ts": world.new_ts(),
        "bot_id": world.bot_id,
        "app_id": world.app_id,
        "user": world.bot_user,
        "team": world.team["id"],
        "bot_profile": {"id": world.bot_id, "app_id": world.app_id, "name": "Support"},
    }
    if params.get("username"):
        message["subtype"] = "bot_message"
        message["username"] = str(params["username"])
        if params.get("icon_url"):
            message["icons"] = {"image_48": str(params["icon_url"])}
    return message


@method("auth.test")
async def auth_test(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    return {
        "url": f"{base}/",
        "team": world.team["name"],
        "user": "support",
        "team_id": world.team["id"],
        "user_id": world.bot_user,
        "bot_id": world.bot_id,
        "is_enterprise_install": False,
    }


@method("chat.postMessage")
async def post_message(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    channel = _member(world, str(params.get("channel") or ""))
    blocks = _blocks(params)
    text = _text(params, blocks)
    thread_ts = params.get("thread_ts") or None
    if thread_ts is not None:
        root = world.messages[channel["id"]].get(str(thread_ts))
        if root is None or root.get("deleted"):
            raise ApiError("thread_not_found")
    world.charge_post(channel["id"])
    message = bot_message(world, channel, text, params)
    if blocks:
        message["blocks"] = blocks
    if thread_ts:
        message["thread_ts"] = str(thread_ts)
        if str(params.get("reply_broadcast")).lower() in ("true", "1"):
            # "also send to channel": the reply shows in the channel as well
            message["subtype"] = "thread_broadcast"
    world.store(channel["id"], message)
    world.count_post(channel["id"])
    emit(world.event_callback(world.message_event(channel, message)))
    return {"channel": channel["id"], "ts": message["ts"], "message": message}


@method("chat.update")
async def update(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    channel = world.channel(str(params.get("channel") or ""))
    message = world.message(channel["id"], str(params.get("ts") or ""))
    if message.get("bot_id") != world.bot_id:
        raise ApiError("cant_update_message")
    blocks = _blocks(params)
    text = _text(params, blocks) if ("text" in params or blocks is None) else message["text"]
    world.charge_tier3("chat.update")
    previous = dict(message)
    message["text"] = text
    if blocks is not None:
        message["blocks"] = blocks
    message["edited"] = {"user": world.bot_user, "ts": world.new_ts()}
    event = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel["id"],
        "message": message,
        "previous_message": previous,
        "ts": message["edited"]["ts"],
        "event_ts": message["edited"]["ts"],
        "channel_type": world.channel_type(channel),
    }
    emit(world.event_callback(event))
    return {"channel": channel["id"], "ts": message["ts"], "text": text}


@method("chat.delete")
async def delete(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    channel = world.channel(str(params.get("channel") or ""))
    message = world.message(channel["id"], str(params.get("ts") or ""))
    if message.get("bot_id") != world.bot_id:
        raise ApiError("cant_delete_message")
    world.charge_tier3("chat.delete")
    message["deleted"] = True
    ts = world.new_ts()
    emit(
        world.event_callback(
            {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": channel["id"],
                "deleted_ts": message["ts"],
                "previous_message": {k: v for k, v in message.items() if k != "deleted"},
                "ts": ts,
                "event_ts": ts,
                "channel_type": world.channel_type(channel),
            }
        )
    )
    return {"channel": channel["id"], "ts": message["ts"]}


@method("chat.postEphemeral")
async def post_ephemeral(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    channel = _member(world, str(params.get("channel") or ""))
    user = str(params.get("user") or "")
    if user not in world.users:
        raise ApiError("user_not_found")
    blocks = _blocks(params)
    text = _text(params, blocks)
    world.charge_tier3("chat.postephemeral")
    ts = world.new_ts()
    world.ephemeral[(channel["id"], user)].append(
        {
            "text": text,
            "ts": ts,
            "thread_ts": params.get("thread_ts") or None,
            "blocks": blocks,
            "ephemeral": True,
        }
    )
    return {"message_ts": ts}


@method("reactions.add")
async def reactions_add(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    channel = world.channel(str(params.get("channel") or ""))
    message = world.message(channel["id"], str(params.get("timestamp") or ""))
    name = str(params.get("name") or "")
    if not name:
        raise ApiError("invalid_name")
    world.charge_tier3("reactions.add")
    reactions = message.setdefault("reactions", [])
    for reaction in reactions:
        if reaction["name"] == name:
            if world.bot_user in reaction["users"]:
                raise ApiError("already_reacted")
            reaction["users"].append(world.bot_user)
            reaction["count"] += 1
            return {}
    reactions.append({"name": name, "users": [world.bot_user], "count": 1})
    return {}


@method("conversations.info")
async def conversations_info(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    return {"channel": world.channel(str(params.get("channel") or ""))}


@method("users.info")
async def users_info(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    user = world.users.get(str(params.get("user") or ""))
    if user is None:
        raise ApiError("user_not_found")
    shown = dict(user)
    if str(params.get("include_locale", "")).lower() not in ("true", "1"):
        shown.pop("locale", None)
    return {"user": shown}


@method("files.getUploadURLExternal")
async def upload_url(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    name = str(params.get("filename") or "")
    try:
        length = int(params.get("length") or 0)
    except ValueError:
        raise ApiError("invalid_arguments") from None
    if not name or length <= 0:
        raise ApiError("invalid_arguments")
    if length > MAX_FILE:
        raise ApiError("file_too_large")
    file_id = world.new_id("F")
    world.pending_uploads[file_id] = {"name": name, "length": length, "data": None}
    return {"upload_url": f"{base}/upload/v1/{file_id}", "file_id": file_id}


@method("files.completeUploadExternal")
async def complete_upload(world: World, params: JSON, base: str, emit: Emit) -> JSON:
    items = _json_param(params, "files")
    if not isinstance(items, list) or not items:
        raise ApiError("invalid_arguments")
    pending = []
    for item in items:
        upload = world.pending_uploads.get(str(item.get("id")))
        if upload is None or upload["data"] is None:
            raise ApiError("file_not_found")
        pending.append((str(item["id"]), item, upload))
    cid = params.get("channel_id")
    channel = _member(world, str(cid)) if cid else None
    thread_ts = params.get("thread_ts") or None
    if channel is not None and thread_ts is not None:
        if str(thread_ts) not in world.messages[channel["id"]]:
            raise ApiError("thread_not_found")
    if channel is not None:
        world.charge_post(channel["id"])
    stored = []
    for file_id, item, upload in pending:
        del world.pending_uploads[file_id]
        data: bytes = upload["data"]
        mime = mimetypes.guess_type(upload["name"])[0] or "application/octet-stream"
        title = str(item.get("title") or "")
        file = StoredFile(file_id, upload["name"], mime, len(data), data, title, world.bot_user)
        world.files[file_id] = file
        stored.append(file)
    if channel is not None:
        message = bot_message(world, channel, str(params.get("initial_comment") or ""), {})
        message["subtype"] = "file_share"
        message["files"] = [f.describe(base) for f in stored]
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        world.store(channel["id"], message)
        world.count_post(channel["id"])
        emit(world.event_callback(world.message_event(channel, message)))
    return {"files": [{"id": f.id, "title": f.title or f.name} for f in stored]}


__all__ = ["METHODS", "TIER3", "bot_message"]
