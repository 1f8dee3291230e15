"""Telegram, both sides: customers in private chats, operators in a forum supergroup.

Intake acknowledges an update only after the core has committed it: in polling mode
the offset moves past an update only after ``ingest`` returned (we run our own
getUpdates loop rather than aiogram's, whose offset moves when updates are fetched);
in webhook mode the answer is 200 only after commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from html import escape
from typing import Any, TypeVar

import aiogram.methods
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    Message,
    ReplyParameters,
    Update,
)
from aiohttp import web
from pydantic import ValidationError

from adapters.telegram import normalise, render
from adapters.telegram.config import TelegramSection, bot_id
from adapters.telegram.lanes import albums_together, id_of, lane_of
from adapters.telegram.pacing import Pacing
from adapters.telegram.session import JsonSession
from gateway.actions import parse_command
from gateway.adapter import AdapterBase, Host, RateLimit, UnrecordedThreads
from gateway.cards import (
    file_line,
    long_text_file_name,
    long_text_preview,
    text_with_files,
    uploads,
)
from gateway.config import Config
from gateway.errors import (
    GatewayError,
    PermanentFailure,
    RateLimited,
    ShuttingDown,
    StoreUnavailable,
    TemporaryFailure,
)
from gateway.events import (
    Attachment,
    ConversationCard,
    Delivery,
    FileData,
    OperatorCommand,
    Outbound,
    Receipt,
)
from gateway.ratelimit import Key, Limiter
from gateway.retry import call_part
from gateway.textsplit import split_text

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
TEXT_LIMIT = 4096  # https://core.telegram.org/bots/api#sendmessage
#: a text longer than this goes to the workspace as a preview and a file with all of
#: it (a 200 KB mail would be 50 messages, minutes of the group's 20 a minute)
LONG_TEXT = 3 * (TEXT_LIMIT - 100)
#: tries of a call after a delivery's first, each after the 429 before it ran out
RETRIES_WITHIN = 8
#: how long a stopping adapter lets answers to operators' commands wait to go out
CAPTION_LIMIT = 1024
#: https://core.telegram.org/bots/api#getfile: bots download files up to 20 MB
DOWNLOAD_LIMIT = 20 * 2**20
#: https://core.telegram.org/bots/api#sendphoto: photos up to 10 MB, other files 50 MB
PHOTO_LIMIT = 10 * 2**20
#: tries before one failing update is set aside (see _give_up_on)
MAX_UPDATE_TRIES = 5
WORKSPACE_COMMANDS = [
    BotCommand(command="claim", description="take this conversation"),
    BotCommand(command="close", description="resolve this conversation"),
    BotCommand(command="reopen", description="reopen a closed conversation"),
    BotCommand(command="transfer", description="hand over: /transfer <operator>"),
    BotCommand(command="note", description="an internal note: /note <text>"),
    BotCommand(command="snooze", description="put aside until later: /snooze 2h"),
    BotCommand(command="online", description="take new conversations"),
    BotCommand(command="away", description="keep your chats, take no new ones"),
    BotCommand(command="status", description="the queue and who is online"),
]


def _reply_parameters(delivery: Delivery) -> ReplyParameters | None:
    """A reply to the target's copy in this chat (sent anyway if it is gone)."""
    ref = delivery.reply_ref
    if ref is None or not ref.isdigit():
        return None
    return ReplyParameters(message_id=int(ref), allow_sending_without_reply=True)


def _with_quote(delivery: Delivery) -> Outbound:
    """The outbound, quoting the message it answers where that is not in this chat."""
    out = delivery.outbound
    if delivery.reply_quote and delivery.reply_ref is None:
        return replace(out, text=f"↩ «{delivery.reply_quote}»\n{out.text}")
    return out


class TelegramAdapter(AdapterBase):
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
        self._poller: asyncio.Task[None] | None = None
        self._shard_pollers: list[asyncio.Task[None]] = []
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

    def _shard(self, conversation_id: int) -> int:
        """The bot a new conversation's topic goes to: rendezvous hashing, so adding a
        bot moves new conversations only, in an even share."""
        if len(self.bot_ids) == 1:
            return self.main_id

        def weight(bot: int) -> bytes:
            return hashlib.blake2b(f"{bot}:{conversation_id}".encode(), digest_size=8).digest()

        return max(self.bot_ids, key=weight)

    def _owner(self, delivery: Delivery) -> int:
        """The bot that posted the thread's header (its id prefixes the header ref when
        it is not the main bot); without a header yet, the conversation's shard."""
        ref = delivery.header_ref
        if ref is None:
            return self._shard(delivery.outbound.conversation_id)
        owner, _, _ = ref.rpartition(":")
        if owner and int(owner) in self.bot_ids:
            return int(owner)
        return self.main_id  # before sharding, or a bot since removed from the config

    def _sender(self, delivery: Delivery) -> int:
        """The bot making a delivery's calls. Customers' chats and their Telegram files
        (file ids are per bot; another bot cannot copy from a chat it is not in) are
        the main bot's; the rest of a thread is its owner's."""
        out = delivery.outbound
        if out.audience == "customer" or self._needs_main(delivery):
            return self.main_id
        return self._owner(delivery)

    @staticmethod
    def _needs_main(delivery: Delivery) -> bool:
        out = delivery.outbound
        return out.kind == "message" and any(a.origin == "telegram" for a in out.attachments)

    def _bot(self, bot: int) -> Bot:
        found = self.bots.get(bot) or self.bot
        assert found is not None
        return found

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
                    WORKSPACE_COMMANDS, scope=BotCommandScopeChat(chat_id=self.workspace)
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
            self._poller = asyncio.create_task(
                self._poll(self.bot, ALLOWED_UPDATES), name="telegram-polling"
            )
            log.info("telegram: polling mode")
        for shard in list(self.bots.values())[1:]:
            self._shard_pollers.append(
                asyncio.create_task(self._poll(shard, SHARD_UPDATES), name=f"telegram-{shard.id}")
            )

    async def readiness(self) -> str | None:
        """None when updates reach us; otherwise why they do not."""
        if self.bot is None:
            return "not started"
        if self.section.mode == "webhook":
            return None
        if self._poller is None or self._poller.done():
            return "polling stopped"
        return self._poll_problem

    async def stop(self) -> None:
        self._stopping = True
        for bot, poller in zip(self.bots, [self._poller, *self._shard_pollers], strict=False):
            if poller is None:
                continue
            if bot in self._long_polling:
                poller.cancel()  # nothing is half-done inside a long poll
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if self.bot is not None:
            await self.bot.session.close()

    # -- intake ---------------------------------------------------------------------------

    async def _poll(self, bot: Bot, allowed: list[str]) -> None:
        """One bot's getUpdates loop (the main bot's, or a workspace bot's for presses
        of the buttons it posted)."""
        main = bot is self.bot
        failures: dict[int, int] = {}  # update id -> failed tries
        #: updates set aside for good, fetched again while an earlier one is retried
        settled: set[int] = set()
        offset: int | None = None
        pause = 1.0
        while not self._stopping:
            updates: list[Update | dict[str, Any]]
            try:
                self._long_polling.add(bot.id)
                updates = list(
                    await bot.get_updates(
                        offset=offset,
                        timeout=self.section.poll_timeout_seconds,
                        allowed_updates=allowed,
                    )
                )
            except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
                if main:
                    self._poll_problem = f"getUpdates failed: {exc}"[:200]
                log.warning("telegram: getUpdates failed (%s); retrying in %.0fs", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
                continue
            except TelegramUnauthorizedError:
                if main:
                    self._poll_problem = "the bot token was revoked"
                log.error("telegram: bot %d's token was revoked; fix it and restart", bot.id)
                await asyncio.sleep(30)
                continue
            except ClientDecodeError as exc:
                # one update aiogram cannot parse must not block the others forever
                updates = self._salvage(exc.data, bot)
            finally:
                self._long_polling.discard(bot.id)
            if main:
                self._poll_problem = None
            pause = 1.0
            if not updates:
                continue
            try:
                retry_from = await self._take(updates, failures, settled, bot.id)
            except ShuttingDown:
                return  # not acknowledged: Telegram gives them again after the restart
            if retry_from is None:
                offset = id_of(updates[-1]) + 1
            else:
                # acknowledged up to the first update not committed: it and the ones
                # after it come again (those committed meanwhile are known duplicates)
                offset = retry_from
                await asyncio.sleep(pause)
            settled.difference_update([i for i in settled if i < offset])

    async def _take(
        self,
        updates: list[Update | dict[str, Any]],
        failures: dict[int, int],
        settled: set[int] | None = None,
        source: int | None = None,
    ) -> int | None:
        """Handle one batch of updates; returns the id of the first one that was not
        committed, or None when all were.

        Each chat (each topic, in the operators' group) is a lane: its updates are
        taken one after the other, in order, and its first failure stops it. Lanes
        run side by side, so a batch's customers share transactions
        (``GroupCommit``) instead of taking one each. An update set aside for good
        (``settled``) is skipped when it comes again behind one still retried.
        """
        settled = set() if settled is None else settled
        lanes: dict[tuple[object, ...], list[list[Update | dict[str, Any]]]] = {}
        for unit in albums_together(updates):
            lanes.setdefault(lane_of(unit[0]), []).append(unit)
        stopped_at: list[int] = []

        async def run(lane: list[list[Update | dict[str, Any]]]) -> None:
            for unit in lane:
                update, update_id = unit[0], id_of(unit[-1])
                if update_id in settled:
                    continue
                try:
                    if len(unit) == 1:
                        await self.handle_any(update)
                    else:
                        await self._on_message(
                            [u.message for u in unit if isinstance(u, Update) and u.message],
                            edited=False,
                        )
                except ShuttingDown:
                    raise
                except StoreUnavailable:
                    # not this update's fault: taken again, its tries not counted
                    stopped_at.append(id_of(unit[0]))
                    return
                except Exception as exc:
                    if not await self._give_up_on(update, update_id, failures, exc, source):
                        stopped_at.append(id_of(unit[0]))
                        return
                    settled.add(update_id)
                failures.pop(update_id, None)

        outcomes = await asyncio.gather(
            *(run(lane) for lane in lanes.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return min(stopped_at, default=None)

    async def _on_webhook(self, request: web.Request) -> web.Response:
        secret = self.section.webhook_secret
        assert secret is not None
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            log.warning("telegram: webhook call without the right secret from %s", request.remote)
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            raw = await request.json()
        except ValueError:
            log.warning("telegram: a webhook body that is not JSON was refused")
            return web.json_response({"error": "malformed update"}, status=400)
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            log.warning("telegram: a webhook body that is not an update was refused")
            return web.json_response({"error": "malformed update"}, status=400)
        update: Update | dict[str, Any]
        try:
            update = Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError:
            update = raw
        try:
            await self.handle_any(update)
        except ShuttingDown:
            return web.json_response({"error": "restarting"}, status=503)
        except StoreUnavailable:
            log.warning("telegram: update %s waits for the database", raw["update_id"])
            return web.json_response({"error": "not committed"}, status=500)  # retried
        except Exception as exc:
            update_id = raw["update_id"]
            if not await self._give_up_on(update, update_id, self._webhook_failures, exc):
                return web.json_response({"error": "not committed"}, status=500)  # retried
        self._webhook_failures.pop(raw["update_id"], None)
        return web.json_response({"ok": True})

    async def _give_up_on(
        self,
        update: Update | dict[str, Any],
        update_id: int,
        tries: dict[int, int],
        failure: Exception,
        source: int | None = None,
    ) -> bool:
        """After repeated failures, stop retrying one update so the rest can flow.

        A database outage fails every update alike and is retried (the update is fetched
        again); one update that keeps failing (a bug meeting an unusual message) must not
        hold up every customer behind it. Operators still see that the customer wrote,
        where it is a customer's message. Logged once at warning as it first fails, and
        once at error, with the traceback, when set aside.
        """
        failures = tries.get(update_id, 0) + 1
        tries[update_id] = failures
        assert self.host is not None
        key = f"update:{source or self.main_id}:{update_id}"  # update ids are per bot
        if failures == 1 and await self._was_set_aside(key):
            tries.pop(update_id, None)
            log.info("telegram: update %d was set aside before; skipped", update_id)
            return True
        if failures < MAX_UPDATE_TRIES:
            log.log(
                logging.WARNING if failures == 1 else logging.DEBUG,
                "telegram: update %d was not committed (try %d of %d): %s",
                update_id,
                failures,
                MAX_UPDATE_TRIES,
                type(failure).__name__,
            )
            return False
        try:
            raw = (
                update.model_dump(mode="json", by_alias=True, exclude_none=True)
                if isinstance(update, Update)
                else update
            )
            placeholder = normalise.unreadable_message(raw)
        except Exception:
            placeholder = None
        try:
            if placeholder is not None and self.host is not None:
                await self.host.ingest(placeholder)
        except StoreUnavailable:
            log.warning("telegram: update %d waits for the database", update_id)
            return False
        except Exception:
            placeholder = None  # not even a placeholder: skipped, with the reason below
        with contextlib.suppress(Exception):  # a retry after a restart then costs tries
            await self.host.set_aside(self.name, key)
        log.error(
            "telegram: gave up on update %d after %d tries; %s",
            update_id,
            failures,
            "operators see a placeholder" if placeholder else "it was skipped",
            exc_info=failure,
        )
        tries.pop(update_id, None)
        return True

    async def _was_set_aside(self, key: str) -> bool:
        """Whether an update failing now was given up on before (then it is skipped at
        once, not tried again from the start after a restart)."""
        assert self.host is not None
        try:
            return await self.host.set_aside(self.name, key, check=True)
        except Exception:
            return False

    def _salvage(self, data: Any, bot: Bot) -> list[Update | dict[str, Any]]:
        """Parse a batch update by update, keeping what cannot be parsed as raw data."""
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list):
            log.error("telegram: getUpdates answered something that is not a list of updates")
            return []
        out: list[Update | dict[str, Any]] = []
        for raw in result:
            try:
                out.append(Update.model_validate(raw, context={"bot": bot}))
            except ValidationError:
                if isinstance(raw, dict) and isinstance(raw.get("update_id"), int):
                    out.append(raw)
        return out

    async def handle_any(self, update: Update | dict[str, Any]) -> None:
        if isinstance(update, Update):
            await self.handle(update)
            return
        assert self.host is not None
        log.warning(
            "telegram: update %s could not be parsed (a newer Bot API kind?)",
            update.get("update_id"),
        )
        placeholder = normalise.unreadable_message(update)
        if placeholder is not None:
            await self.host.ingest(placeholder)

    async def handle(self, update: Update) -> None:
        """Route one update; returns once whatever it carries is committed."""
        if update.message is not None:
            await self._on_message([update.message], edited=False)
        elif update.edited_message is not None:
            await self._on_message([update.edited_message], edited=True)
        elif update.callback_query is not None:
            await self._on_button(update.callback_query)
        elif update.my_chat_member is not None:
            status = update.my_chat_member.new_chat_member.status
            log.info("telegram: the bot's membership in a chat changed to %s", status)
        else:
            log.info("telegram: update %d of a kind we do not handle, skipped", update.update_id)

    def recorded(self, receipt: Receipt) -> None:
        self._unrecorded.recorded(receipt)

    def _is_operator(self, user_id: int) -> bool:
        return any(op.identity(self.name) == str(user_id) for op in self.config.operators)

    async def _on_message(self, album: list[Message], *, edited: bool) -> None:
        """One message, or the parts of an album that arrived together."""
        assert self.host is not None
        message, parts = album[0], album[1:]
        user = message.from_user
        if user is None or user.is_bot or normalise.is_silent(message):
            return
        if message.chat.type == "private":
            await self.host.ingest(normalise.customer_message(message, edited=edited, parts=parts))
            return
        if self.workspace is None or message.chat.id != self.workspace:
            log.info("telegram: message in an unknown group %s ignored", message.chat.id)
            return
        inbound = normalise.operator_message(message, edited=edited, parts=parts)
        command = parse_command(message.text or "") if not edited else None
        if inbound.workspace_thread is None:
            # the general topic: commands only; chatter there stays there
            if command is not None:
                await self.host.act(
                    OperatorCommand(
                        channel=self.name,
                        event_id=inbound.event_id,
                        operator_external_id=str(user.id),
                        name=command[0],
                        args=command[1],
                        # answered in the group only to operators: an outsider's
                        # command is logged, and the group not spammed
                        answer="always" if self._is_operator(user.id) else "never",
                    )
                )
            return
        await self._unrecorded.known(inbound.workspace_thread)
        await self.host.ingest(inbound)  # a command there answers its failures itself

    async def _on_button(self, query: CallbackQuery) -> None:
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
            and self._is_operator(query.from_user.id)
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

    # -- delivery ---------------------------------------------------------------------------

    def cost(self, delivery: Delivery) -> int:
        """Calls ``deliver`` will make, so the outbox claims it only when the limits
        let them all go now (``Limiter.reserve``)."""
        out = delivery.outbound
        if out.kind == "notice":
            return 1
        if out.kind == "header":
            # open: create the topic and post the header; refresh: edit header, rename topic
            if not delivery.more:
                return 2
            # and the messages it carries, into a thread that exists by then
            first = replace(delivery.more[0], thread_ref="", more=delivery.more[1:])
            return 2 + self.cost(first)
        if out.kind in ("edit", "delete"):
            return max(1, len(delivery.edit_refs))
        if delivery.more:
            copyable = all(d.source_ids for d in (delivery, *delivery.more))
            return 1 if copyable else 1 + len(delivery.more)
        if delivery.source_ids and (out.author_role == "customer" or out.attachments):
            return 1  # one copyMessage(s)
        long = out.audience == "workspace" and len(out.text) > LONG_TEXT
        parts = 2 if long else len(split_text(out.text or " ", TEXT_LIMIT - 100))
        calls = parts + len(uploads(out))
        if out.audience == "workspace" and delivery.thread_ref is None:
            calls += 2
        return calls

    async def deliver(self, delivery: Delivery) -> Receipt:
        known = self._opened.get(delivery.outbound.conversation_id)
        if (
            known is not None
            and delivery.thread_ref == known.thread_ref
            and (delivery.header_ref is not None or known.header_ref is None)
        ):
            del self._opened[delivery.outbound.conversation_id]  # the core has recorded it
        try:
            if delivery.outbound.audience == "customer":
                return await self._to_customer(delivery)
            if delivery.outbound.kind == "header":
                return await self._header(delivery)
            if delivery.outbound.kind == "notice":
                return await self._notice(delivery)
            return await self._to_workspace(delivery)
        except TelegramRetryAfter as exc:
            raise RateLimited(float(exc.retry_after), scope="chat") from None
        except TelegramForbiddenError as exc:
            if "blocked" in exc.message:
                raise PermanentFailure("the customer blocked the bot") from None
            raise PermanentFailure(f"Telegram refused: {exc.message}") from None
        except (TelegramBadRequest, TelegramNotFound) as exc:
            raise PermanentFailure(f"Telegram: {exc.message}") from None
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise TemporaryFailure(f"Telegram: {exc}") from None

    async def _to_customer(self, delivery: Delivery) -> Receipt:
        assert self.bot is not None
        out = _with_quote(delivery)
        chat = int(out.chat_id or 0)
        if out.kind == "edit":
            for ref in delivery.edit_refs:
                await self._edit(chat, int(ref), render.customer_text(out))
            return Receipt(chat_id=out.chat_id)
        if out.kind == "delete":
            await self._delete(chat, delivery.edit_refs)
            return Receipt(chat_id=out.chat_id)
        ids: list[str] = []
        if out.attachments and delivery.source_ids:
            # an operator's file from the topic: copied, so nothing is downloaded
            caption = render.customer_text(out) if out.text else None
            ids = await self._copy(chat, delivery, caption=caption)
            return Receipt(external_ids=tuple(ids), chat_id=out.chat_id)
        name = out.author_name if out.author_role == "operator" else None
        budget = TEXT_LIMIT - (len(name) + 1 if name else 0)
        text = text_with_files(out)
        if text or not uploads(out):
            parts = split_text(text or " ", budget)
            for number, part in enumerate(parts):
                shown = replace(out, text=part, author_name=name if number == 0 else None)
                rendered = render.customer_text(shown)
                # choices go under the last part: one tap answers
                markup = render.choice_buttons(out.choices) if number == len(parts) - 1 else None
                if number == 0:
                    sent = await self.bot.send_message(
                        chat,
                        rendered,
                        reply_markup=markup,
                        reply_parameters=_reply_parameters(delivery),
                    )
                else:
                    sent = await self._then(
                        partial(self.bot.send_message, chat, rendered, reply_markup=markup)
                    )
                ids.append(str(sent.message_id))
        ids += await self._upload_all(chat, None, out, first=not ids)
        return Receipt(external_ids=tuple(ids), chat_id=out.chat_id)

    async def _upload_all(
        self, chat: int, thread: int | None, out: Outbound, *, first: bool, bot: Bot | None = None
    ) -> list[str]:
        """Send each file; one that cannot be (too big, gone) is named in a message
        saying why, never dropped."""
        assert self.bot is not None and self.host is not None
        sender = bot or self.bot
        ids: list[str] = []
        for number, attachment in enumerate(uploads(out)):
            try:
                if attachment.origin == self.name:  # Telegram's own file: sent by its id
                    upload: FileData | None = None
                else:
                    upload = await self.host.fetch(attachment)
                sent = await self._call(
                    partial(self._upload, chat, thread, attachment, upload, sender),
                    first=first and number == 0,
                )
            except (PermanentFailure, TelegramEntityTooLarge) as exc:
                reason = str(exc) if isinstance(exc, PermanentFailure) else "too big for Telegram"
                notice = f"{file_line(attachment.name, attachment.kind, attachment.size)}: {reason}"
                sent = await self._call(
                    partial(sender.send_message, chat, escape(notice), message_thread_id=thread),
                    first=first and number == 0,
                )
            ids.append(str(sent.message_id))
        return ids

    async def _call(self, call: Callable[[], Awaitable[T]], *, first: bool) -> T:
        return await call_part(call, first=first, tries=RETRIES_WITHIN)

    async def _upload(
        self,
        chat: int,
        thread: int | None,
        attachment: Attachment,
        file: FileData | None,
        bot: Bot,
    ) -> Message:
        assert self.bot is not None
        if file is None:  # a file id is the main bot's own
            return await self.bot.send_document(chat, attachment.file_ref, message_thread_id=thread)
        upload = BufferedInputFile(file.data, filename=file.name)
        if attachment.kind == "photo" and len(file.data) <= PHOTO_LIMIT:
            return await bot.send_photo(chat, upload, message_thread_id=thread)
        return await bot.send_document(chat, upload, message_thread_id=thread)

    async def _delete(self, chat: int, refs: Sequence[str], bot: Bot | None = None) -> None:
        for number, ref in enumerate(refs):
            try:
                await self._call(
                    partial(self._by_author, bot, _deleting(chat, int(ref)), "deleted"),
                    first=number == 0,
                )
            except TelegramBadRequest as exc:
                # gone already, or older than the 48 hours Telegram allows deleting in
                log.info("telegram: message %s not deleted: %s", ref, exc.message)

    async def _by_author(
        self, bot: Bot | None, call: Callable[[Bot], Awaitable[T]], purpose: str
    ) -> T:
        """A call only a message's author may make: by ``bot`` (the thread's owner),
        and by the main bot when the owner did not write it (a customer's media)."""
        assert self.bot is not None
        first = bot or self.bot
        try:
            return await call(first)
        except TelegramBadRequest as exc:
            if first is self.bot or f"can't be {purpose}" not in exc.message:
                raise
        return await call(self.bot)

    async def fetch(self, attachment: Attachment) -> FileData:
        assert self.bot is not None
        if attachment.size is not None and attachment.size > DOWNLOAD_LIMIT:
            raise PermanentFailure(
                f"over the {DOWNLOAD_LIMIT // 2**20} MB Telegram lets bots download; "
                "ask the customer for a link"
            )
        try:
            found = await self.bot.get_file(attachment.file_ref)
            assert found.file_path is not None
            buffer = await self.bot.download_file(found.file_path)
        except TelegramBadRequest as exc:
            raise PermanentFailure(f"Telegram: {exc.message}") from None
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise TemporaryFailure(f"Telegram: {exc}") from None
        assert buffer is not None
        return FileData(
            name=attachment.name or found.file_path.rsplit("/", 1)[-1],
            mime=attachment.mime or "application/octet-stream",
            data=buffer.read(),
        )

    async def _copy(
        self,
        chat: int,
        delivery: Delivery,
        *,
        thread: int | None = None,
        caption: str | None = None,
    ) -> list[str]:
        """Copy the message from where it was written: one part, or a whole album.
        Always the main bot: only it is in the customers' chats."""
        assert self.bot is not None and delivery.source_chat is not None
        source = int(delivery.source_chat)
        ids = [int(i) for i in delivery.source_ids]
        if len(ids) == 1:
            copied = await self.bot.copy_message(
                chat,
                source,
                ids[0],
                message_thread_id=thread,
                caption=caption[:CAPTION_LIMIT] if caption else None,
                reply_parameters=_reply_parameters(delivery),
            )
            return [str(copied.message_id)]
        copies = await self.bot.copy_messages(chat, source, ids, message_thread_id=thread)
        return [str(c.message_id) for c in copies]

    async def _edit(self, chat: int, message_id: int, text: str, bot: Bot | None = None) -> None:
        async def edit(by: Bot) -> None:
            try:
                await by.edit_message_text(text[:TEXT_LIMIT], chat_id=chat, message_id=message_id)
            except TelegramBadRequest as exc:
                if "not modified" in exc.message:
                    return
                if "no text in the message" in exc.message:
                    await by.edit_message_caption(
                        chat_id=chat, message_id=message_id, caption=text[:CAPTION_LIMIT]
                    )
                    return
                raise

        await self._by_author(bot, edit, "edited")

    async def _header(self, delivery: Delivery) -> Receipt:
        receipt = await self._card(delivery)
        if not delivery.more:
            return receipt
        return await self._carry(delivery, receipt)

    async def _carry(self, delivery: Delivery, receipt: Receipt) -> Receipt:
        """Post the messages an opening header carries, in the thread it opened (or
        found). The header is out by now, so none of theirs may fail it: a message
        that cannot go here is handed back to be sent on its own, where its own
        retries and failures apply."""
        assert self.workspace is not None
        thread_ref = receipt.thread_ref or delivery.thread_ref
        followers = delivery.more
        # which bot posts them goes by the header's ref (``_owner``); a thread just
        # opened has none on them, and its owner is then the bot that opened it
        if receipt.thread_ref and any(d.header_ref for d in followers):
            followers = tuple(replace(d, header_ref=receipt.header_ref) for d in followers)
        first = replace(followers[0], more=followers[1:])
        try:
            if thread_ref is None:
                raise TemporaryFailure("the header opened no thread")
            ids = await self._then(lambda: self._post_all(first, int(thread_ref)))
        except Exception as exc:
            log.warning(
                "telegram: %d message(s) for topic %s go on their own: %s",
                len(followers),
                thread_ref,
                exc,
                exc_info=not isinstance(exc, (TelegramAPIError, TemporaryFailure)),
            )
            reason = str(exc) or type(exc).__name__
            more = tuple(Receipt(extra={"handed_back": reason}) for _ in followers)
        else:
            more = tuple(Receipt(external_ids=tuple(i), chat_id=str(self.workspace)) for i in ids)
        return replace(receipt, more=more)

    async def _card(self, delivery: Delivery) -> Receipt:
        assert self.bot is not None and self.workspace is not None
        card = delivery.outbound.card
        assert card is not None
        if delivery.thread_ref is None:
            return await self._open_topic(card.conversation_id, card)
        owner = self._bot(self._owner(delivery))
        if delivery.header_ref is None:
            # the topic exists but its header never made it (see _open_topic)
            header = await self._post_header(int(delivery.thread_ref), card, owner)
            return Receipt(
                thread_ref=delivery.thread_ref, header_ref=header, chat_id=str(self.workspace)
            )
        try:
            await owner.edit_message_text(
                render.header_text(card),
                chat_id=self.workspace,
                message_id=int(delivery.header_ref.rpartition(":")[2]),
                reply_markup=render.header_buttons(card),
            )
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                if "not found" in exc.message:
                    log.warning(
                        "telegram: the topic of conversation %d was deleted; opening a new one",
                        card.conversation_id,
                    )
                    return await self._open_topic(
                        card.conversation_id, card, replacing=delivery.thread_ref
                    )
                raise
        with contextlib.suppress(TelegramBadRequest):  # TOPIC_NOT_MODIFIED
            await self._then(
                lambda: owner.edit_forum_topic(
                    self.workspace,  # type: ignore[arg-type]
                    int(delivery.thread_ref),  # type: ignore[arg-type]
                    name=render.topic_name(card),
                )
            )
        return Receipt()

    async def _open_topic(
        self,
        conversation_id: int,
        card: ConversationCard | None,
        *,
        replacing: str | None = None,
    ) -> Receipt:
        """Open a topic (and post its header), once per conversation, by the
        conversation's shard bot.

        A topic this process opened but the core has not recorded yet (the delivery
        failed after it) is reused, never opened twice.
        """
        assert self.bot is not None and self.workspace is not None
        known = self._opened.get(conversation_id)
        if known is not None and known.thread_ref != replacing:
            return known
        bot = self._bot(self._shard(conversation_id))
        name = render.topic_name(card) if card else f"Conversation #{conversation_id}"
        try:
            topic = await bot.create_forum_topic(self.workspace, name)
        except TelegramBadRequest as exc:
            if "not enough rights" in exc.message or "not a forum" in exc.message:
                raise PermanentFailure(
                    f"Telegram: {exc.message}. Make telegram.workspace_chat_id a forum "
                    "supergroup and the bot an admin with the 'Manage topics' right "
                    f"(bot id {bot.id})"
                ) from None
            raise
        thread = topic.message_thread_id
        self._opened[conversation_id] = Receipt(thread_ref=str(thread), chat_id=str(self.workspace))
        assert self.host is not None
        await self._unrecorded.record(self.host, self.name, conversation_id, str(thread))
        try:
            header = await self._post_header(thread, card, bot, conversation_id=conversation_id)
        except (
            TelegramBadRequest,
            TelegramServerError,
            TelegramNetworkError,
            TelegramNotFound,
            RateLimited,
        ) as exc:
            # the topic exists: record it without a header; the next refresh posts one
            log.warning("telegram: topic %d opened, its header failed (%s)", thread, exc)
            return self._opened[conversation_id]
        receipt = Receipt(thread_ref=str(thread), header_ref=header, chat_id=str(self.workspace))
        self._opened[conversation_id] = receipt
        return receipt

    async def _post_header(
        self,
        thread: int,
        card: ConversationCard | None,
        bot: Bot,
        *,
        conversation_id: int | None = None,
    ) -> str:
        """Post the card; its ref names the bot that posted it when that is not the
        main bot, so the thread stays with that bot (``_owner``)."""
        assert self.workspace is not None
        text = render.header_text(card) if card else f"Conversation #{conversation_id}"
        sent = await self._then(
            lambda: bot.send_message(
                self.workspace,  # type: ignore[arg-type]
                text,
                message_thread_id=thread,
                reply_markup=render.header_buttons(card) if card else None,
            )
        )
        if bot.id == self.main_id:
            return str(sent.message_id)
        return f"{bot.id}:{sent.message_id}"

    async def _then(self, call: Callable[[], Awaitable[T]]) -> T:
        """A call after the first of a delivery (``gateway.retry``)."""
        return await call_part(call, first=False, tries=RETRIES_WITHIN)

    async def _notice(self, delivery: Delivery) -> Receipt:
        """The answer to an operator's command, in the topic it was typed in (the
        general one, or a conversation's: if an admin deleted that meanwhile, the
        general one)."""
        assert self.workspace is not None
        out = delivery.outbound
        bot = self._bot(self._sender(delivery))
        text = f"{'✅' if out.ok else '⚠️'} {escape(out.text[: TEXT_LIMIT - 100])}"
        thread = int(delivery.thread_ref) if delivery.thread_ref else None
        try:
            sent = await bot.send_message(self.workspace, text, message_thread_id=thread)
        except TelegramBadRequest as exc:
            if thread is None or "thread not found" not in exc.message:
                raise
            sent = await self._then(lambda: bot.send_message(self.workspace, text))  # type: ignore[arg-type]
        return Receipt(external_ids=(str(sent.message_id),), chat_id=str(self.workspace))

    async def _to_workspace(self, delivery: Delivery) -> Receipt:
        assert self.workspace is not None
        out = delivery.outbound
        opened: Receipt | None = None
        if delivery.thread_ref is None:
            opened = await self._open_topic(out.conversation_id, None)
            delivery = replace(delivery, header_ref=opened.header_ref)
        thread = int((opened or delivery).thread_ref)  # type: ignore[arg-type]
        try:
            ids = await self._post_all(delivery, thread)
        except TelegramBadRequest as exc:
            if "thread not found" not in exc.message:
                raise
            log.warning(
                "telegram: the topic of conversation %d was deleted; opening a new one",
                out.conversation_id,
            )
            opened = await self._open_topic(
                out.conversation_id, None, replacing=delivery.thread_ref
            )
            delivery = replace(delivery, header_ref=opened.header_ref)
            ids = await self._post_all(delivery, int(opened.thread_ref))  # type: ignore[arg-type]
        return Receipt(
            external_ids=tuple(ids[0]),
            chat_id=str(self.workspace),
            thread_ref=opened.thread_ref if opened else None,
            header_ref=opened.header_ref if opened else None,
            more=tuple(
                Receipt(external_ids=tuple(i), chat_id=str(self.workspace)) for i in ids[1:]
            ),
        )

    def _relayed_as_text(self, delivery: Delivery) -> bool:
        """A Telegram customer's text in a thread another bot owns: that bot cannot
        copy from the customer's chat, so it posts the text."""
        out = delivery.outbound
        return (
            out.author_role == "customer"
            and bool(delivery.source_ids)
            and not out.attachments
            and self._owner(delivery) != self.main_id
        )

    async def _post_all(self, delivery: Delivery, thread: int) -> list[list[str]]:
        """Post a delivery and those coalesced with it; the ids each one got."""
        assert self.bot is not None and self.workspace is not None
        group = [delivery, *delivery.more]
        if len(group) == 1:
            return [await self._post(delivery, thread)]
        if all(self._relayed_as_text(d) for d in group):
            # a backlog of a customer's texts in a thread of a workspace bot: one
            # message carries them all, a line each
            return await self._post_texts(group, thread)
        if all(
            d.source_ids and d.source_chat == delivery.source_chat and d.reply_ref is None
            for d in group
        ):
            # a backlog of one customer's messages: one call copies them all, each
            # keeping its formatting, media and (for edits later) its own id
            ids = [int(i) for d in group for i in d.source_ids]
            copies = await self.bot.copy_messages(
                self.workspace,
                int(delivery.source_chat),  # type: ignore[arg-type]
                ids,
                message_thread_id=thread,
            )
            got = [str(c.message_id) for c in copies]
            if len(got) != len(ids):  # some could not be copied: keep them all on one
                return [got] + [[] for _ in group[1:]]
            out, at = [], 0
            for d in group:
                out.append(got[at : at + len(d.source_ids)])
                at += len(d.source_ids)
            return out
        out = [await self._post(delivery, thread)]
        for later in group[1:]:
            out.append(await self._then(partial(self._post, later, thread)))
        return out

    async def _post_texts(self, group: list[Delivery], thread: int) -> list[list[str]]:
        """Customers' texts, as few messages as the length limit allows; each delivery
        gets the id of the message its text went into."""
        owner = self._bot(self._owner(group[0]))
        out: list[list[str]] = []
        batch: list[str] = []

        async def flush() -> None:
            text = "\n".join(batch)

            def call() -> Awaitable[Message]:
                return owner.send_message(
                    self.workspace,  # type: ignore[arg-type]
                    text,
                    message_thread_id=thread,
                )

            sent = await self._call(call, first=not out)
            out.extend([str(sent.message_id)] for _ in batch)
            batch.clear()

        for delivery in group:
            line = escape(delivery.outbound.text or "")
            if batch and len("\n".join(batch)) + 1 + len(line) > TEXT_LIMIT - 100:
                await flush()
            if len(line) > TEXT_LIMIT - 100:  # a long text goes alone, split as usual
                if batch:
                    await flush()
                out.append(await self._call(partial(self._post, delivery, thread), first=not out))
                continue
            batch.append(line)
        if batch:
            await flush()
        return out

    async def _post(self, delivery: Delivery, thread: int) -> list[str]:
        assert self.bot is not None and self.workspace is not None
        out = _with_quote(delivery)
        owner = self._bot(self._owner(delivery))
        if out.kind == "edit":
            text = render.edited_text(out)
            for ref in delivery.edit_refs:
                await self._mend(owner, thread, int(ref), text, out)
            return []
        if out.kind == "delete":
            if out.author_role == "customer":  # operators keep the record, marked
                for ref in delivery.edit_refs:
                    await self._mend(owner, thread, int(ref), render.deleted_text(out), out)
            else:
                await self._delete(self.workspace, delivery.edit_refs, owner)
            return []
        as_text = self._relayed_as_text(delivery)
        if out.author_role == "customer" and delivery.source_ids and not as_text:
            # from a Telegram customer: a copy keeps formatting and media, and one
            # copyMessages call keeps an album together
            return await self._copy(self.workspace, delivery, thread=thread)
        ids: list[str] = []
        text = text_with_files(out)
        if not text and uploads(out):
            return await self._upload_all(self.workspace, thread, out, first=True, bot=owner)
        if len(text) > LONG_TEXT:
            return await self._post_long(delivery, out, text, thread, owner)
        for number, part in enumerate(split_text(text or " ", TEXT_LIMIT - 100)):
            shown = replace(out, text=part)
            if as_text:
                rendered = escape(part)
            elif out.author_role == "note":
                rendered = render.note_text(shown)
            else:
                rendered = render.workspace_text(shown)
            if number == 0 and out.mentions:
                rendered += "\n" + render.mention_line(out.mentions, self.config.operators)

            def send(r: str = rendered, first: bool = number == 0) -> Awaitable[Message]:
                return owner.send_message(
                    self.workspace,  # type: ignore[arg-type]
                    r,
                    message_thread_id=thread,
                    reply_parameters=_reply_parameters(delivery) if first else None,
                )

            sent = await (send() if number == 0 else self._then(send))
            ids.append(str(sent.message_id))
        ids += await self._upload_all(self.workspace, thread, out, first=False, bot=owner)
        return ids

    async def _post_long(
        self, delivery: Delivery, out: Outbound, text: str, thread: int, owner: Bot
    ) -> list[str]:
        """A very long text (a mail with a long history): its start to read at a glance,
        and the whole of it as a file, in two messages rather than dozens."""
        assert self.workspace is not None
        preview = replace(out, text=long_text_preview(text))
        sent = await owner.send_message(
            self.workspace,
            render.workspace_text(preview),
            message_thread_id=thread,
            reply_parameters=_reply_parameters(delivery),
        )
        name = long_text_file_name(out)
        document = await self._then(
            lambda: owner.send_document(
                self.workspace,  # type: ignore[arg-type]
                BufferedInputFile(text.encode(), filename=name),
                message_thread_id=thread,
            )
        )
        ids = [str(sent.message_id), str(document.message_id)]
        ids += await self._upload_all(self.workspace, thread, out, first=False, bot=owner)
        return ids

    async def _mend(self, owner: Bot, thread: int, ref: int, text: str, out: Outbound) -> None:
        """Show a customer's edit (or deletion) on the copy operators see. A text a
        workspace bot posted may carry several of their messages at once, so rather
        than rewrite it, that bot answers it with the new version."""
        assert self.workspace is not None
        if owner is self.bot or out.author_role != "customer":
            await self._edit(self.workspace, ref, text, owner)
            return
        try:
            await self._edit(self.workspace, ref, text, self.bot)  # a media copy is the main's
        except TelegramBadRequest as exc:
            if "can't be edited" not in exc.message:
                raise
            await owner.send_message(
                self.workspace,
                text,
                message_thread_id=thread,
                reply_parameters=ReplyParameters(message_id=ref, allow_sending_without_reply=True),
            )


async def _answer_press(bot: Bot, query_id: str, **toast: Any) -> None:
    """Stop the button's spinner (with a toast). What the press did is committed by
    now: a refusal here ("query is too old", after a restart or a slow commit) must
    not have the update taken again."""
    try:
        await bot.answer_callback_query(query_id, **toast)
    except (TelegramAPIError, RateLimited) as exc:
        log.info("telegram: a button press was not answered: %s", type(exc).__name__)


def _deleting(chat: int, message_id: int) -> Callable[[Bot], Awaitable[bool]]:
    """Deleting one message, by whichever bot is given."""
    return lambda bot: bot.delete_message(chat, message_id)
