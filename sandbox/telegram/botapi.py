"""The Bot API methods the gateway uses, with Telegram's answers and errors.

Each method takes the request's parameters (already decoded: aiogram sends every
call as multipart form data with complex values JSON-encoded) and the uploaded files,
and returns the ``result`` or raises ``ApiError``. Reference:
https://core.telegram.org/bots/api#available-methods

One module over 500 lines on purpose: it is one table (``METHODS``), a short
function per method in the order of Telegram's reference, read side by side with
it; split by method family, the table a reader checks would be in several places.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sandbox.telegram.world import (
    JSON,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_TEXT,
    MAX_TOPIC_NAME,
    ApiError,
    World,
    bad_request,
    public,
)


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None
    content_type: str | None


Params = dict[str, Any]
Uploads = dict[str, Upload]
Method = Callable[[World, Params, Uploads], Awaitable[Any]]

JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "media",
    "allowed_updates",
    "commands",
    "scope",
    "reply_parameters",
    "link_preview_options",
    "message_ids",
}
INT_FIELDS = {
    "offset",
    "limit",
    "timeout",
    "message_id",
    "message_thread_id",
    "reply_to_message_id",
    "icon_color",
    "max_connections",
}
BOOL_FIELDS = {"drop_pending_updates", "show_alert", "disable_notification", "protect_content"}


def decode(raw: dict[str, str]) -> Params:
    out: Params = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            out[key] = value
        elif key in JSON_FIELDS:
            try:
                out[key] = json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {key} JSON object") from None
        elif key in INT_FIELDS:
            try:
                out[key] = int(value)
            except ValueError:
                raise bad_request(f"invalid {key} specified") from None
        elif key in BOOL_FIELDS:
            out[key] = value.lower() in ("true", "1")
        else:
            out[key] = value
    return out


METHODS: dict[str, Method] = {}


def method(*names: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        for name in names:
            METHODS[name.lower()] = fn
        return fn

    return register


def _required(params: Params, name: str) -> Any:
    if params.get(name) in (None, ""):
        raise bad_request(f"{name} is empty" if name in ("text",) else f"{name} is required")
    return params[name]


def _target_chat(world: World, params: Params) -> JSON:
    chat = world.chat(_required(params, "chat_id"))
    if chat["type"] == "private" and not world.is_main():
        raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
    if chat["type"] == "private" and chat["id"] in world.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    return chat


def _readable_chat(world: World, chat_id: Any) -> JSON:
    """A chat to copy from: a bot sees no private chat it was never started in."""
    chat = world.chat(chat_id)
    if chat["type"] == "private" and not world.is_main():
        raise bad_request("chat not found")
    return chat


def _thread(world: World, chat: JSON, params: Params) -> int | None:
    thread_id = params.get("message_thread_id")
    if thread_id in (None, 0):
        return None
    if not chat.get("is_forum"):
        return None  # Telegram ignores the thread outside forums
    topic = world.topics[chat["id"]].get(int(thread_id))
    if topic is None or topic.get("deleted"):
        raise bad_request("message thread not found")
    if topic.get("closed") and not world.bot_rights.get(chat["id"], {}).get("can_manage_topics"):
        raise bad_request("TOPIC_CLOSED")
    return int(thread_id)


def _extras(world: World, chat: JSON, params: Params) -> JSON:
    fields: JSON = {}
    if params.get("reply_markup"):
        fields["reply_markup"] = params["reply_markup"]
    reply_to = params.get("reply_to_message_id") or (params.get("reply_parameters") or {}).get(
        "message_id"
    )
    if reply_to:
        target = world.messages.get(chat["id"], {}).get(int(reply_to))
        if target is None:
            if (params.get("reply_parameters") or {}).get("allow_sending_without_reply"):
                return fields  # sent as a plain message, as Telegram does
            raise bad_request("message to be replied not found")
        fields["reply_to_message"] = public(
            {k: v for k, v in target.items() if k != "reply_to_message"}
        )
    return fields


def _check_text(text: str, limit: int, what: str) -> None:
    if len(text) > limit:
        raise bad_request(f"{what} is too long")


# -- identity and updates ------------------------------------------------------------


@method("getMe")
async def get_me(world: World, params: Params, uploads: Uploads) -> JSON:
    return world.bot


@method("getUpdates")
async def get_updates(world: World, params: Params, uploads: Uploads) -> list[JSON]:
    if world.webhook["url"]:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    inbox = world.inbox()
    # one caller at a time: a call still waiting when another comes is ended with
    # 409, as Telegram ends it ("terminated by other getUpdates request")
    inbox.poll += 1
    mine = inbox.poll
    inbox.superseded.set()
    inbox.superseded = asyncio.Event()
    superseded = inbox.superseded
    offset = params.get("offset")
    if offset:
        world.confirm(int(offset))
    limit = max(1, min(100, int(params.get("limit") or 100)))
    timeout = max(0, min(50, int(params.get("timeout") or 0)))
    if not world.pending(limit) and timeout:
        world.new_update.clear()
        waits = [
            asyncio.ensure_future(world.new_update.wait()),
            asyncio.ensure_future(superseded.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
    if inbox.poll != mine:
        world.stats.poll_conflicts += 1
        raise ApiError(
            409,
            "Conflict: terminated by other getUpdates request; make sure that only one "
            "bot instance is running",
        )
    return world.pending(limit)


@method("setWebhook")
async def set_webhook(world: World, params: Params, uploads: Uploads) -> bool:
    url = params.get("url") or ""
    if url and not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if params.get("drop_pending_updates"):
        world.updates.clear()
    connections = int(params.get("max_connections") or 40)
    if not 1 <= connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    world.webhook = {
        "url": url,
        "secret_token": params.get("secret_token"),
        "max_connections": connections,
    }
    world.new_update.set()
    return True


@method("deleteWebhook")
async def delete_webhook(world: World, params: Params, uploads: Uploads) -> bool:
    if params.get("drop_pending_updates"):
        world.updates.clear()
    world.webhook = {"url": "", "secret_token": None}
    return True


@method("getWebhookInfo")
async def get_webhook_info(world: World, params: Params, uploads: Uploads) -> JSON:
    return {
        "url": world.webhook["url"],
        "has_custom_certificate": False,
        "pending_update_count": len(world.updates),
    }


@method("setMyCommands")
async def set_my_commands(world: World, params: Params, uploads: Uploads) -> bool:
    world.commands = list(params.get("commands") or [])
    return True


@method("getChat")
async def get_chat(world: World, params: Params, uploads: Uploads) -> JSON:
    return {
        **world.chat(_required(params, "chat_id")),
        "accent_color_id": 0,
        "max_reaction_count": 11,
    }


# -- sending -------------------------------------------------------------------------


@method("sendMessage")
async def send_message(world: World, params: Params, uploads: Uploads) -> JSON:
    chat = _target_chat(world, params)
    text = str(params.get("text") or "")
    if not text.strip():
        raise bad_request("message text is empty")
    _check_text(text, MAX_TEXT, "message")
    thread = _thread(world, chat, params)
    fields: JSON = {"text": text, **_extras(world, chat, params)}
    if params.get("entities"):
        fields["entities"] = params["entities"]
    world.check_flood(chat["id"])
    sent = public(world.store_message(chat["id"], world.bot, fields, thread))
    world.record_relayed(text, chat["id"])
    return sent


MEDIA_KINDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendVideo": "video",
    "sendAudio": "audio",
    "sendAnimation": "animation",
    "sendSticker": "sticker",
    "sendVideoNote": "video_note",
}


def media_object(
    world: World, kind: str, source: Any, uploads: Uploads, filename: str | None = None
) -> JSON:
    """The object a message carries for a file sent by id, by upload or by URL."""
    if isinstance(source, str) and source.startswith("attach://"):
        upload = uploads.get(source.removeprefix("attach://"))
        if upload is None:
            raise bad_request(f"can't find attached file {source!r}")
        source = upload
    if isinstance(source, Upload):
        stored = world.store_file(
            source.data,
            name=source.filename or filename,
            mime=source.content_type,
            folder=f"{kind}s",
        )
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        stored = world.store_file(b"", name=source.rsplit("/", 1)[-1], folder=f"{kind}s")
    elif isinstance(source, str) and source:
        stored = world.file(source)
    else:
        raise bad_request(f"there is no {kind} in the request")
    return describe_file(
        kind, stored.file_id, stored.unique_id, stored.size, stored.name, stored.mime
    )


def describe_file(
    kind: str, file_id: str, unique_id: str, size: int, name: str | None, mime: str | None
) -> Any:
    base = {"file_id": file_id, "file_unique_id": unique_id, "file_size": size}
    if kind == "photo":
        return [{**base, "width": 1280, "height": 960}]
    if kind == "document":
        return {
            **base,
            **({"file_name": name} if name else {}),
            **({"mime_type": mime} if mime else {}),
        }
    if kind in ("voice", "audio"):
        return {**base, "duration": 3, **({"mime_type": mime} if mime else {})}
    if kind in ("video", "animation"):
        return {**base, "width": 640, "height": 360, "duration": 5}
    if kind == "video_note":
        return {**base, "length": 240, "duration": 5}
    if kind == "sticker":
        return {
            **base,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "🙂",
        }
    raise bad_request(f"unsupported media {kind}")


async def send_media(world: World, params: Params, uploads: Uploads, name: str) -> JSON:
    kind = MEDIA_KINDS[name]
    chat = _target_chat(world, params)
    caption = str(params.get("caption") or "")
    _check_text(caption, MAX_CAPTION, "message caption")
    thread = _thread(world, chat, params)
    source = uploads.get(kind) or params.get(kind)
    fields: JSON = {
        kind: media_object(world, kind, source, uploads),
        **_extras(world, chat, params),
    }
    if caption:
        fields["caption"] = caption
    world.check_flood(chat["id"])
    return public(world.store_message(chat["id"], world.bot, fields, thread))


for _name in MEDIA_KINDS:

    async def _send(world: World, params: Params, uploads: Uploads, _n: str = _name) -> JSON:
        return await send_media(world, params, uploads, _n)

    METHODS[_name.lower()] = _send


@method("sendMediaGroup")
async def send_media_group(world: World, params: Params, uploads: Uploads) -> list[JSON]:
    chat = _target_chat(world, params)
    media = params.get("media")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise bad_request("wrong number of media in the album (2-10)")
    thread = _thread(world, chat, params)
    for item in media:
        _check_text(str(item.get("caption") or ""), MAX_CAPTION, "message caption")
    world.check_flood(chat["id"], count=len(media))
    group_id = str(random.randint(10**17, 10**18))
    out = []
    for item in media:
        kind = item.get("type", "document")
        fields: JSON = {
            kind: media_object(world, kind, item.get("media"), uploads),
            "media_group_id": group_id,
        }
        if item.get("caption"):
            fields["caption"] = item["caption"]
        out.append(public(world.store_message(chat["id"], world.bot, fields, thread)))
    return out


COPYABLE = (
    "text",
    "entities",
    "photo",
    "document",
    "voice",
    "video",
    "audio",
    "animation",
    "sticker",
    "video_note",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "caption",
    "caption_entities",
)


#: what Telegram will not copy: its kinds, and a quiz (the bot does not know its answer)
UNCOPYABLE = (
    "invoice",
    "successful_payment",
    "game",
    "story",
    "giveaway",
    "giveaway_winners",
    "paid_media",
    "checklist",
)


def _copyable(source: JSON) -> bool:
    if any(kind in source for kind in UNCOPYABLE):
        return False
    poll = source.get("poll")
    return not (isinstance(poll, dict) and poll.get("type") == "quiz")


def _source_message(world: World, params: Params, purpose: str) -> JSON:
    source_chat = _readable_chat(world, _required(params, "from_chat_id"))
    source = world.messages.get(source_chat["id"], {}).get(int(_required(params, "message_id")))
    if source is None or source.get("_deleted"):
        raise bad_request(f"message to {purpose} not found")
    return source


@method("copyMessage")
async def copy_message(world: World, params: Params, uploads: Uploads) -> JSON:
    chat = _target_chat(world, params)
    source = _source_message(world, params, "copy")
    if not _copyable(source):
        raise bad_request("message can't be copied")
    thread = _thread(world, chat, params)
    fields = {k: source[k] for k in COPYABLE if k in source}
    if "caption" in params:
        caption = str(params.get("caption") or "")
        _check_text(caption, MAX_CAPTION, "message caption")
        fields["caption"] = caption
    fields.update(_extras(world, chat, params))
    world.check_flood(chat["id"])
    copied = world.store_message(chat["id"], world.bot, fields, thread)
    world.record_copy(source, chat["id"])
    return {"message_id": copied["message_id"]}


@method("copyMessages")
async def copy_messages(world: World, params: Params, uploads: Uploads) -> list[JSON]:
    """https://core.telegram.org/bots/api#copymessages: album grouping is kept;
    messages that cannot be found are skipped. Counted as one send for flood control
    (an assumption: Telegram does not document how it counts this method)."""
    chat = _target_chat(world, params)
    source_chat = _readable_chat(world, _required(params, "from_chat_id"))
    ids = params.get("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must list 1-100 message identifiers")
    if any(not isinstance(i, int) for i in ids) or ids != sorted(set(ids)):
        raise bad_request("message identifiers must be in strictly increasing order")
    thread = _thread(world, chat, params)
    stored = world.messages.get(source_chat["id"], {})
    # as Telegram does, those that cannot be copied are left out
    sources = [
        stored[i]
        for i in ids
        if i in stored and not stored[i].get("_deleted") and _copyable(stored[i])
    ]
    if not sources:
        raise bad_request("messages to copy not found")
    world.check_flood(chat["id"])  # one request, as Telegram's flood control counts it
    groups: dict[str, str] = {}
    out = []
    for source in sources:
        fields = {k: source[k] for k in COPYABLE if k in source}
        if source.get("media_group_id"):
            fields["media_group_id"] = groups.setdefault(
                source["media_group_id"], str(random.randint(10**17, 10**18))
            )
        copied = world.store_message(chat["id"], world.bot, fields, thread)
        world.record_copy(source, chat["id"])
        out.append({"message_id": copied["message_id"]})
    return out


@method("forwardMessage")
async def forward_message(world: World, params: Params, uploads: Uploads) -> JSON:
    chat = _target_chat(world, params)
    source = _source_message(world, params, "forward")
    thread = _thread(world, chat, params)
    fields = {k: source[k] for k in COPYABLE if k in source}
    fields["forward_origin"] = {
        "type": "user",
        "date": source["date"],
        "sender_user": source["from"],
    }
    world.check_flood(chat["id"])
    return public(world.store_message(chat["id"], world.bot, fields, thread))


# -- editing and deleting -------------------------------------------------------------


def _own_message(world: World, params: Params, purpose: str) -> JSON:
    chat = world.chat(_required(params, "chat_id"))
    message = world.find_message(chat["id"], int(_required(params, "message_id")), purpose)
    if message["from"].get("id") != world.bot["id"]:
        raise bad_request(f"message can't be {purpose}ed")
    return message


def _set_markup(message: JSON, markup: JSON | None) -> None:
    """An edit without reply_markup removes the inline keyboard, as on Telegram."""
    if markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


@method("editMessageText")
async def edit_message_text(world: World, params: Params, uploads: Uploads) -> JSON:
    message = _own_message(world, params, "edit")
    text = str(params.get("text") or "")
    if not text.strip():
        raise bad_request("message text is empty")
    _check_text(text, MAX_TEXT, "message")
    markup = params.get("reply_markup")
    if message.get("text") == text and markup == message.get("reply_markup"):
        raise bad_request(
            "message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup "
            "of the message"
        )
    message["text"] = text
    if params.get("entities") is not None:
        message["entities"] = params["entities"]
    _set_markup(message, markup)
    message["edit_date"] = world.now()
    return public(message)


@method("editMessageCaption")
async def edit_message_caption(world: World, params: Params, uploads: Uploads) -> JSON:
    message = _own_message(world, params, "edit")
    caption = str(params.get("caption") or "")
    _check_text(caption, MAX_CAPTION, "message caption")
    markup = params.get("reply_markup")
    if message.get("caption", "") == caption and markup == message.get("reply_markup"):
        raise bad_request("message is not modified")
    message["caption"] = caption
    _set_markup(message, markup)
    message["edit_date"] = world.now()
    return public(message)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(world: World, params: Params, uploads: Uploads) -> JSON:
    message = _own_message(world, params, "edit")
    markup = params.get("reply_markup")
    if markup == message.get("reply_markup"):
        raise bad_request("message is not modified")
    _set_markup(message, markup)
    message["edit_date"] = world.now()
    return public(message)


@method("deleteMessage")
async def delete_message(world: World, params: Params, uploads: Uploads) -> bool:
    chat = world.chat(_required(params, "chat_id"))
    message = world.find_message(chat["id"], int(_required(params, "message_id")), "delete")
    message["_deleted"] = True
    return True


# -- forum topics ----------------------------------------------------------------------


def _forum(world: World, params: Params) -> JSON:
    chat = world.chat(_required(params, "chat_id"))
    if not chat.get("is_forum"):
        raise bad_request("the chat is not a forum")
    if not world.bot_rights.get(chat["id"], {}).get("can_manage_topics"):
        raise bad_request("not enough rights to manage topics")
    return chat


def _topic(world: World, chat: JSON, params: Params) -> JSON:
    topic = world.topics[chat["id"]].get(int(_required(params, "message_thread_id")))
    if topic is None or topic.get("deleted"):
        raise bad_request("message thread not found")
    return topic


@method("createForumTopic")
async def create_forum_topic(world: World, params: Params, uploads: Uploads) -> JSON:
    chat = _forum(world, params)
    name = str(params.get("name") or "")
    if not 1 <= len(name) <= MAX_TOPIC_NAME:
        raise bad_request("TOPIC_NAME_INVALID")
    world.check_flood(chat["id"])
    service = world.store_message(
        chat["id"],
        world.bot,
        {
            "forum_topic_created": {
                "name": name,
                "icon_color": int(params.get("icon_color") or 7322096),
            },
        },
    )
    thread_id = service["message_id"]
    service["message_thread_id"] = thread_id
    service["is_topic_message"] = True
    topic = {
        "message_thread_id": thread_id,
        "name": name,
        "icon_color": int(params.get("icon_color") or 7322096),
    }
    world.topics[chat["id"]][thread_id] = dict(topic)
    return topic


@method("editForumTopic")
async def edit_forum_topic(world: World, params: Params, uploads: Uploads) -> bool:
    chat = _forum(world, params)
    topic = _topic(world, chat, params)
    name = params.get("name")
    if name is not None:
        if not 1 <= len(name) <= MAX_TOPIC_NAME:
            raise bad_request("TOPIC_NAME_INVALID")
        if name == topic["name"]:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic["name"] = name
    return True


async def _set_closed(world: World, params: Params, closed: bool) -> bool:
    chat = _forum(world, params)
    topic = _topic(world, chat, params)
    if bool(topic.get("closed")) == closed:
        raise bad_request("TOPIC_NOT_MODIFIED")
    topic["closed"] = closed
    return True


async def _close(world: World, params: Params, uploads: Uploads) -> bool:
    return await _set_closed(world, params, True)


async def _reopen(world: World, params: Params, uploads: Uploads) -> bool:
    return await _set_closed(world, params, False)


METHODS["closeforumtopic"] = _close
METHODS["reopenforumtopic"] = _reopen


@method("deleteForumTopic")
async def delete_forum_topic(world: World, params: Params, uploads: Uploads) -> bool:
    chat = _forum(world, params)
    world.delete_topic(chat["id"], int(_topic(world, chat, params)["message_thread_id"]))
    return True


# -- buttons, actions, files --------------------------------------------------------------


@method("answerCallbackQuery")
async def answer_callback_query(world: World, params: Params, uploads: Uploads) -> bool:
    query_id = str(_required(params, "callback_query_id"))
    if query_id in world.callback_answers:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    world.callback_answers[query_id] = {
        "text": params.get("text"),
        "show_alert": bool(params.get("show_alert")),
    }
    return True


@method("sendChatAction")
async def send_chat_action(world: World, params: Params, uploads: Uploads) -> bool:
    chat = _target_chat(world, params)
    world.chat_actions.append(
        {
            "chat_id": chat["id"],
            "action": params.get("action"),
            "message_thread_id": params.get("message_thread_id"),
        }
    )
    return True


@method("getFile")
async def get_file(world: World, params: Params, uploads: Uploads) -> JSON:
    stored = world.file(str(_required(params, "file_id")))
    if stored.size > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.unique_id,
        "file_size": stored.size,
        "file_path": stored.path,
    }


def new_query_id() -> str:
    return str(uuid.uuid4().int >> 64)
