"""Telegram, both sides: customers in private chats, operators in a forum supergroup.

Intake acknowledges an update only after the core has committed it: in polling mode
the offset moves past an update only after ``ingest`` returned (we run our own
getUpdates loop rather than aiogram's, whose offset moves when updates are fetched);
in webhook mode the answer is 200 only after commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, TypeVar

import aiogram.methods
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    Message,
)

from adapters.telegram import normalise, render
from adapters.telegram.config import TelegramSection, bot_id
from adapters.telegram.deliver import TelegramDelivery
from adapters.telegram.intake import TelegramIntake
from adapters.telegram.pacing import Pacing
from adapters.telegram.routes import Routes
from adapters.telegram.session import JsonSession
from gateway.actions import parse_command
from gateway.adapter import AdapterBase, Host, RateLimit, UnrecordedThreads
from gateway.config import Config
from gateway.errors import (
    GatewayError,
    RateLimited,
)
from gateway.events import (
    Delivery,
    OperatorCommand,
    Receipt,
)
from gateway.ratelimit import Key, Limiter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: aiogram reads every reply as ``Response[<the method's return type>]``, a pydantic
#: generic class made on first use. Pydantic keeps such classes only weakly, so once
#: the garbage collector takes one, the next call builds it again: measured at about
#: 13% of the gateway's CPU under load. Holding them here builds each once (41 types,
#: 50 ms at import).
_RESPONSE_TYPES = tuple(
    Response[returning]  # type: ignore[valid-type]
    for returning in {
        method.__returning__
        for method in vars(aiogram.methods).values()
        if isinstance(method, type)
        and issubclass(method, TelegramMethod)
        and method is not TelegramMethod
        and hasattr(method, "__returning__")
    }
)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
#: what the workspace bots (telegram.workspace_bots) are asked for: the main bot gets
#: every message in the group; a press of a button reaches the bot that posted it
SHARD_UPDATES = ["callback_query"]
#: Telegram's limit on a command menu entry's description
COMMAND_DESCRIPTION_LIMIT = 256


def command_menu(actions: list[tuple[str, str]]) -> list[BotCommand]:
    """The workspace's "/" menu: the operator actions the core registered."""
    return [
        BotCommand(command=name, description=(help or name)[:COMMAND_DESCRIPTION_LIMIT])
        for name, help in actions
    ]


class TelegramAdapter(TelegramIntake, TelegramDelivery, AdapterBase):
    name = "telegram"

    def __init__(self, section: TelegramSection, config: Config) -> None:
        self.section = section
        self.config = config
        self.workspace = section.workspace_chat_id
        self.serves_workspace = self.workspace is not None
        # https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
        #: a backlog of customer messages for one topic goes out as one copyMessages
        #: call (up to 100 allowed; 20 keeps a retry small)
        self.max_batch = 20
        #: replies are threaded by topic or thread, not by earlier messages' ids
        self.wants_history = False
        #: a new conversation's topic opens with its first messages in the same
        #: delivery: createForumTopic, the card, one copyMessages (``_carry``)
        self.opens_with_messages = True
        per_chat, per_group = section.chat_messages_per_second, section.group_messages_per_minute
        overall = section.messages_per_second
        # a chat tolerates a short burst, then one a second; a group and the bot
        # count messages over a period: 20 in any minute, 30 in any second
        self.rate_limits = (
            RateLimit(
                "chat", rate=per_chat, per_seconds=1.0, burst=max(3, int(per_chat)),
                key=self._chat_key, serial=True,
            ),
            RateLimit(
                "group", rate=per_group, per_seconds=60.0, key=self._group_key, window=True,
            ),
            RateLimit(
                "bot", rate=overall, per_seconds=1.0, key=self._bot_key, scope="destination",
                window=True,
            ),
        )  # fmt: skip
        #: every call that puts a message out waits here (``pacing``), deliveries'
        #: and the rest alike; the outbox claims by the same counters
        self._pace = Limiter(self.rate_limits)
        self.limiter = self._pace
        self.paces_calls = True
        self.bot: Bot | None = None
        #: every bot by id, the main one (customers' bot) first
        self.bot_ids = [bot_id(t) for t in (section.token, *section.workspace_bots)]
        self.main_id = self.bot_ids[0]
        self.bots: dict[int, Bot] = {}
        self.host: Host | None = None
        #: polling while this process holds the polling role (``_lead``)
        self._leading: asyncio.Task[None] | None = None
        #: the getUpdates loops running now, by bot id
        self._polls: dict[int, asyncio.Task[None]] = {}
        self._long_polling: set[int] = set()  # bots waiting in a long poll now
        self._stopping = False
        #: why polling does not reach Telegram now (None: it does)
        self._poll_problem: str | None = None
        #: webhook updates that failed, by id: tries so far (``_give_up_on``)
        self._webhook_failures: dict[int, int] = {}
        #: topics opened here that the core may not have recorded yet
        self._opened: dict[int, Receipt] = {}
        #: the same by topic id, until recorded: an operator quick enough to act in
        #: a topic before that waits for it instead of meeting "no conversation"
        self._unrecorded = UnrecordedThreads()
        self.routes = Routes(self, self.workspace, self._is_operator)

    def _chat_key(self, delivery: Delivery) -> str:
        out = delivery.outbound
        if out.audience == "customer":
            return f"chat:{out.chat_id}"
        return f"workspace:{self._sender(delivery)}"

    def _group_key(self, delivery: Delivery) -> str | None:
        if delivery.outbound.audience != "workspace":
            return None
        return f"workspace:{self._sender(delivery)}"

    def _bot_key(self, delivery: Delivery) -> str:
        return f"bot:{self._sender(delivery)}"

    def _call_keys(self, bot: int, chat: int | str) -> tuple[Key, ...]:
        """The counters a call by ``bot`` into ``chat`` draws from: the same as the
        deliveries' (``_chat_key``, ``_group_key``, ``_bot_key``)."""
        if str(chat) == str(self.workspace):
            place = f"workspace:{bot}"
            return (("chat", place), ("group", place), ("bot", f"bot:{bot}"))
        return (("chat", f"chat:{chat}"), ("bot", f"bot:{bot}"))

    # -- which bot: limits are per bot and group, so topics are spread over bots ----------

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self.host = host
        session = JsonSession(api=TelegramAPIServer.from_base(self.section.api_base))
        session.middleware(Pacing(self._pace, self._call_keys))
        self.bot = Bot(
            self.section.token.get_secret_value(),
            session=session,
            default=DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=True),
        )
        try:
            me = await self.bot.get_me()
        except TelegramUnauthorizedError:
            await session.close()
            raise GatewayError(
                "telegram: the bot token was refused (telegram.token); check it with @BotFather"
            ) from None
        except (TelegramNetworkError, TelegramServerError) as exc:
            await session.close()
            raise GatewayError(
                f"telegram: cannot reach {self.section.api_base} (telegram.api_base): {exc}"
            ) from None
        log.info("telegram: connected as @%s", me.username)
        self.bots[self.main_id] = self.bot
        for number, token in enumerate(self.section.workspace_bots):
            shard = Bot(token.get_secret_value(), session=session, default=self.bot.default)
            try:
                shard_me = await shard.get_me()
                await shard.delete_webhook(drop_pending_updates=False)
            except TelegramUnauthorizedError:
                await session.close()
                raise GatewayError(
                    f"telegram: the token of telegram.workspace_bots[{number}] was refused"
                ) from None
            self.bots[shard.id] = shard
            log.info("telegram: workspace bot @%s shares the group", shard_me.username)
        if self.workspace is not None:
            with contextlib.suppress(TelegramBadRequest):
                await self.bot.set_my_commands(
                    command_menu(host.commands()),
                    scope=BotCommandScopeChat(chat_id=self.workspace),
                )
        if self.section.mode == "webhook":
            host.add_route("POST", self.section.served_path, self._on_webhook)
            secret = self.section.webhook_secret
            assert secret is not None and self.section.webhook_url
            await self.bot.set_webhook(
                self.section.webhook_url,
                secret_token=secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram: webhook mode, updates arrive at %s", self.section.served_path)
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            log.info("telegram: polling mode")
        # the workspace bots are asked for their buttons' presses by polling, in
        # either mode; one process at a time polls (the polling role)
        polls = [(shard, SHARD_UPDATES) for shard in list(self.bots.values())[1:]]
        if self.section.mode != "webhook":
            polls.insert(0, (self.bot, ALLOWED_UPDATES))
        if polls:
            self._leading = asyncio.create_task(self._lead(host, polls), name="telegram-polling")

    async def readiness(self) -> str | None:
        """None when updates reach us; otherwise why they do not."""
        if self.bot is None:
            return "not started"
        if self.section.mode == "webhook":
            return None
        if self._leading is None or self._leading.done():
            return "polling stopped"
        if not self.polling:
            return None  # another process holds the polling role; this one stands by
        return self._poll_problem

    async def stop(self) -> None:
        self._stopping = True
        await self._end_polls()
        if self._leading is not None:
            self._leading.cancel()  # still waiting for the role, if anything
            with contextlib.suppress(asyncio.CancelledError):
                await self._leading
        if self.bot is not None:
            await self.bot.session.close()

    def recorded(self, receipt: Receipt) -> None:
        self._unrecorded.recorded(receipt)

    def _is_operator(self, user_id: int) -> bool:
        return any(op.identity(self.name) == str(user_id) for op in self.config.operators)

    async def customer_message(self, message: Message, parts: list[Message], edited: bool) -> None:
        assert self.host is not None
        await self.host.ingest(normalise.customer_message(message, edited=edited, parts=parts))

    async def workspace_message(
        self, message: Message, parts: list[Message], edited: bool, operator: bool
    ) -> None:
        assert self.host is not None and message.from_user is not None
        inbound = normalise.operator_message(message, edited=edited, parts=parts)
        command = parse_command(message.text or "") if not edited else None
        if inbound.workspace_thread is None:
            # the general topic: commands only; chatter there stays there
            if command is not None:
                await self.host.act(
                    OperatorCommand(
                        channel=self.name,
                        event_id=inbound.event_id,
                        operator_external_id=str(message.from_user.id),
                        name=command[0],
                        args=command[1],
                        # answered in the group only to operators: an outsider's
                        # command is logged, and the group not spammed
                        answer="always" if operator else "never",
                    )
                )
            return
        await self._unrecorded.known(inbound.workspace_thread)
        await self.host.ingest(inbound)  # a command there answers its failures itself

    async def show_typing(self, thread_ref: str) -> None:
        """ "typing…" in the topic for a few seconds (Telegram's chat action: not a
        message, so not one of the group's 20 a minute)."""
        if self.bot is None or not self.workspace or not thread_ref.isdigit():
            return
        await self.bot.send_chat_action(
            chat_id=self.workspace, action="typing", message_thread_id=int(thread_ref)
        )

    def thread_link(self, thread_ref: str) -> str | None:
        """``https://t.me/c/<group>/<topic>``: opens the topic for a member of the
        group (a supergroup's id is -100 followed by the number the link takes)."""
        group = str(self.workspace or "")
        if not group.startswith("-100") or not thread_ref.isdigit():
            return None
        return f"https://t.me/c/{group.removeprefix('-100')}/{thread_ref}"

    async def button(self, query: CallbackQuery, operator: bool) -> None:
        assert self.host is not None and self.bot is not None
        bot = query.bot or self.bot  # a press is answered by the bot whose button it was
        picked = normalise.customer_pick(query)
        if picked is not None:
            # a customer tapped one of the choices under our message: their answer
            await self.host.ingest(picked)
            await _answer_press(bot, query.id)
            return
        command = normalise.button_command(query)
        if command is None:
            await _answer_press(bot, query.id)
            return
        if (
            command.name == "transfer"
            and not command.args
            and operator
            and command.workspace_thread
        ):
            others = [
                op
                for op in self.config.operators
                if op.identity(self.name) != str(query.from_user.id)
            ]
            assert self.workspace is not None
            await bot.send_message(
                self.workspace,
                "Transfer to whom?",
                message_thread_id=int(command.workspace_thread),
                reply_markup=render.transfer_buttons(others),
            )
            await _answer_press(bot, query.id)
            return
        await self._unrecorded.known(command.workspace_thread)
        result = await self.host.act(command)
        await _answer_press(bot, query.id, text=result.message[:200], show_alert=not result.ok)


async def _answer_press(bot: Bot, query_id: str, **toast: Any) -> None:
    """Stop the button's spinner (with a toast). What the press did is committed by
    now: a refusal here ("query is too old", after a restart or a slow commit) must
    not have the update taken again."""
    try:
        await bot.answer_callback_query(query_id, **toast)
    except (TelegramAPIError, RateLimited) as exc:
        log.info("telegram: a button press was not answered: %s", type(exc).__name__)
