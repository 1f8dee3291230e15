"""Every Bot API call that puts a message in a chat, paced by the adapter's limiter.

A request middleware on the bots' session, so no call goes around it: the parts
of a long text, a header's edits, an operator's command answer, each waits for
room in the counters of its chat, its group and its bot (``Limiter.call``), and
is counted from when it ended. A 429 is read for its scope (``Limiter.scope_of``:
Telegram does not say whether it is about the chat, the group or the bot), holds
off that scope for ``retry_after``, is logged once at warning, and comes out as
``RateLimited`` with that scope for the outbox to reschedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from gateway.errors import RateLimited
from gateway.ratelimit import Key, Limiter

log = logging.getLogger(__name__)

#: the methods that put messages in a chat (or change one there), and how much one
#: call counts against the limits: a request, and an album sent anew a message each
#: (a batch of copies, copyMessages, is one request)
PACED: dict[str, Callable[[Any], int]] = {
    **{
        name: lambda _method: 1
        for name in (
            "sendMessage",
            "sendPhoto",
            "sendDocument",
            "sendVideo",
            "sendAudio",
            "sendVoice",
            "sendAnimation",
            "sendVideoNote",
            "sendSticker",
            "sendLocation",
            "sendVenue",
            "sendContact",
            "sendPoll",
            "sendDice",
            "copyMessage",
            "forwardMessage",
            "createForumTopic",
            "editForumTopic",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
        )
    },
    "sendMediaGroup": lambda method: len(method.media),
    "copyMessages": lambda _method: 1,
    "forwardMessages": lambda _method: 1,
}

#: changes to messages already in a chat: paced with the chat's and the bot's calls,
#: but not counted among a group's 20 new messages a minute (header refreshes would
#: otherwise take a third of it)
EDITS = frozenset(
    {"editForumTopic", "editMessageText", "editMessageCaption", "editMessageReplyMarkup"}
)

#: "scope" as the log says it
SCOPE_NAMES = {"chat": "this chat or group", "destination": "the whole bot"}


class Pacing(BaseRequestMiddleware):
    def __init__(self, limiter: Limiter, keys: Callable[[int, int | str], Sequence[Key]]) -> None:
        self.limiter = limiter
        #: (bot id, chat id) -> the counters a call there draws from
        self.keys = keys

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        count = PACED.get(method.__api_method__)
        chat = getattr(method, "chat_id", None)
        if count is None or chat is None:
            return await make_request(bot, method)
        keys = self.keys(bot.id, chat)
        if method.__api_method__ in EDITS:
            keys = tuple(key for key in keys if key[0] != "group")
        async with self.limiter.call(keys, count(method)) as made:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                made.refused = True
                scope = self.limiter.scope_of(keys)
                self.limiter.penalise_keys(keys, exc.retry_after, scope)
                log.warning(
                    "telegram: 429 on %s to chat %s: retry after %ss, held off for %s",
                    method.__api_method__,
                    chat,
                    exc.retry_after,
                    SCOPE_NAMES.get(scope, scope),
                )
                raise RateLimited(float(exc.retry_after), scope=scope) from None
