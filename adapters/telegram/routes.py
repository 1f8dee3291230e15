"""Which of the adapter's handlers takes a Telegram update: an aiogram Router.

The adapter keeps its own intake (a getUpdates loop that moves the offset only
after commit, lanes, albums, the webhook) and hands each update to ``Routes.feed``;
the router picks the handler by the update's kind and by filters on the chat it
came from, the way an aiogram bot declares its handlers. What no handler takes (a
kind the gateway does not serve, a message in a group that is not the workspace)
is logged and skipped.

``OperatorCheck``, an outer middleware, tells every handler whether the person is a
configured operator (``operator``), so no handler looks it up itself. Operator
actions are still authorised by the core, whichever channel they come from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiogram import F, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, TelegramObject, Update
from aiogram.types.update import UpdateTypeLookupError

from adapters.telegram import normalise

log = logging.getLogger(__name__)


class Takers(Protocol):
    """What the adapter does with each kind of update it serves."""

    async def customer_message(self, message: Message, parts: list[Message], edited: bool) -> None:
        """A customer's message in their private chat with the bot (an album's first
        part, with the ``parts`` that arrived with it)."""

    async def workspace_message(
        self, message: Message, parts: list[Message], edited: bool, operator: bool
    ) -> None:
        """A message in the operators' group (``operator``: from a configured one)."""

    async def button(self, query: CallbackQuery, operator: bool) -> None:
        """A press of one of the bot's buttons, by a customer or in the workspace."""


class Speaks(Filter):
    """A person's message that says something: not a bot's, not a service message
    (a topic edited, a member joined) that only records what Telegram did."""

    async def __call__(self, message: Message) -> bool:
        user = message.from_user
        return user is not None and not user.is_bot and not normalise.is_silent(message)


class InChat(Filter):
    """Messages in one chat (the workspace group; None: no workspace, none match)."""

    def __init__(self, chat_id: int | None) -> None:
        self.chat_id = chat_id

    async def __call__(self, message: Message) -> bool:
        return self.chat_id is not None and message.chat.id == self.chat_id


class OperatorCheck:
    """Outer middleware: ``operator`` is True when the update's sender is one of the
    configured operators on this channel."""

    def __init__(self, is_operator: Callable[[int], bool]) -> None:
        self.is_operator = is_operator

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user = getattr(event, "from_user", None)
        data["operator"] = user is not None and self.is_operator(user.id)
        return await handler(event, data)


def _build(take: Takers, workspace: int | None, is_operator: Callable[[int], bool]) -> Router:
    router = Router(name="telegram")
    check = OperatorCheck(is_operator)
    for observer, edited in ((router.message, False), (router.edited_message, True)):
        observer.filter(Speaks())
        observer.outer_middleware(check)

        async def customer(message: Message, parts: list[Message], edited: bool = edited) -> None:
            await take.customer_message(message, parts, edited)

        async def workspace_message(
            message: Message, parts: list[Message], operator: bool, edited: bool = edited
        ) -> None:
            await take.workspace_message(message, parts, edited, operator)

        async def outsider(message: Message) -> None:
            log.info("telegram: message in an unknown group %s ignored", message.chat.id)

        observer.register(customer, F.chat.type == "private")
        observer.register(workspace_message, InChat(workspace))
        observer.register(outsider)
    router.callback_query.outer_middleware(check)
    router.callback_query.register(take.button)

    async def membership(update: ChatMemberUpdated) -> None:
        status = update.new_chat_member.status
        log.info("telegram: the bot's membership in a chat changed to %s", status)

    router.my_chat_member.register(membership)
    return router


class Routes:
    """The adapter's router, fed one update (or album) at a time."""

    def __init__(
        self, take: Takers, workspace: int | None, is_operator: Callable[[int], bool]
    ) -> None:
        self.router = _build(take, workspace, is_operator)

    async def feed(self, update: Update, parts: list[Message] | None = None) -> bool:
        """Hand ``update`` to its handler; returns once whatever it carries is
        committed. False when no handler serves it (it is logged and skipped)."""
        try:
            kind = update.event_type
        except UpdateTypeLookupError:
            kind = None
        if kind is not None:
            outcome = await self.router.propagate_event(kind, update.event, parts=parts or [])
            if outcome is not UNHANDLED:
                return True
        if kind not in ("message", "edited_message"):  # those log their own reason
            log.info("telegram: update %d of a kind we do not handle, skipped", update.update_id)
        return False
