"""Bot API calls as JSON bodies, and the answers to sends read for their ids only.

aiogram's ``AiohttpSession`` sends every call as an urlencoded or multipart form,
with each nested object JSON-encoded first and then percent-encoded. The Bot API
takes ``application/json`` bodies as well, and one ``json.dumps`` of the call costs
half as much: 130 µs → 67 µs for a header card with its buttons, on every one of
the several hundred calls a burst of new conversations makes. A call that uploads
a file still goes as multipart, the only way a file can go.

A send answers with the whole message it made, and aiogram validates all of it
into a ``Message`` (text, entities, buttons, the chat, the sender): 50-90 µs for a
header card, a quarter of what the call itself costs the gateway. The adapter reads
nothing of those answers but the new message's id, and a new topic's thread id:
``SLIM`` reads just those (5-10 µs). What it returns stands in for the full type
and has only those fields, so reading any other is an ``AttributeError``, never a
silent ``None``; a method whose answer the adapter reads more of stays off the list.
An error, or an answer that does not have the ids, goes through aiogram's own
checks, which raise its usual exceptions.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import ForumTopic, Message, MessageId
from aiohttp import FormData
from aiohttp.payload import JsonPayload
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError


class SentMessage(BaseModel):
    """A message the bot sent, as far as the adapter reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    message_id: int
    message_thread_id: int | None = None


class OpenedTopic(BaseModel):
    """A forum topic the bot created, as far as the adapter reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    message_thread_id: int
    name: str


#: the answers read for their ids: aiogram's type -> how to read it
SLIM: dict[Any, TypeAdapter[Any]] = {
    Message: TypeAdapter(SentMessage),
    list[Message]: TypeAdapter(list[SentMessage]),
    MessageId: TypeAdapter(SentMessage),
    list[MessageId]: TypeAdapter(list[SentMessage]),
    ForumTopic: TypeAdapter(OpenedTopic),
}


class _Answer:
    """What ``make_request`` reads of a checked response: its result."""

    __slots__ = ("result",)

    def __init__(self, result: object) -> None:
        self.result = result


class JsonSession(AiohttpSession):
    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData:
        files: dict[str, Any] = {}
        body: dict[str, Any] = {}
        # None is left out either way; dumped, every button carries a dozen of them
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            # as the form leaves them out: None, and empty or false values
            if prepared:
                body[key] = prepared
        if files:
            return super().build_form_data(bot, method)
        # ``make_request`` posts whatever this returns as the body
        return JsonPayload(body, dumps=self.json_dumps)  # type: ignore[return-value]

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        slim = SLIM.get(method.__returning__)
        if slim is not None and HTTPStatus.OK <= status_code <= HTTPStatus.IM_USED:
            try:
                data = self.json_loads(content)
                if isinstance(data, dict) and data.get("ok") is True:
                    return cast("Response[Any]", _Answer(slim.validate_python(data.get("result"))))
            except (ValueError, ValidationError):
                pass  # aiogram's checks below say what is wrong with it
        return super().check_response(
            bot=bot, method=method, status_code=status_code, content=content
        )
