"""Telegram intake: updates taken in and acknowledged only after commit.

In polling mode our own getUpdates loop moves the offset past an update only after
what it carries is committed (aiogram's polling moves it when updates are fetched);
a batch's chats run side by side, each in order (lanes.py), an album's parts
together. In webhook mode the answer is 200 only after commit. An update that keeps
failing is set aside after a few tries, with a placeholder for operators, so it
never holds up the ones behind it. Each update goes to its handler by the router
(routes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    Update,
)
from aiohttp import web
from pydantic import ValidationError

from adapters.telegram import normalise
from adapters.telegram.config import TelegramSection
from adapters.telegram.lanes import albums_together, id_of, lane_of
from adapters.telegram.routes import Routes
from gateway.adapter import Host
from gateway.errors import (
    ShuttingDown,
    StoreUnavailable,
)
from gateway.roles import Held

log = logging.getLogger(__name__)

#: tries before one failing update is set aside (see _give_up_on)
MAX_UPDATE_TRIES = 5


class TelegramIntake:
    """Taking updates in, for ``TelegramAdapter``, which sets these up."""

    name: str
    section: TelegramSection
    bot: Bot | None
    main_id: int
    host: Host | None
    routes: Routes
    _stopping: bool
    _polls: dict[int, asyncio.Task[None]]
    _long_polling: set[int]
    _poll_problem: str | None
    _webhook_failures: dict[int, int]

    @property
    def polling(self) -> bool:
        """Whether this process polls now (it holds the polling role)."""
        return bool(self._polls)

    async def _lead(self, host: Host, polls: list[tuple[Bot, list[str]]]) -> None:
        """Poll while this process holds the polling role; stand by while another
        does. Telegram answers one getUpdates caller per bot (a second gets 409
        Conflict), so with several processes one polls and the others take over
        when it dies or stops (``gateway.roles``)."""
        role = f"{self.name}:polling"
        while not self._stopping:
            try:
                async with host.role(role) as held:
                    if not await self._poll_while(held, polls):
                        return  # a poll loop died: another process may do better
            except ShuttingDown:
                return

    async def _poll_while(self, held: Held, polls: list[tuple[Bot, list[str]]]) -> bool:
        """Run every bot's getUpdates loop until the role is lost (True) or a loop
        ends by itself (False: a bug, logged)."""
        for bot, allowed in polls:
            self._polls[bot.id] = asyncio.create_task(
                self._poll(bot, allowed, held), name=f"telegram-poll-{bot.id}"
            )
        lost = asyncio.create_task(held.lost.wait())
        try:
            await asyncio.wait([lost, *self._polls.values()], return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        handed_over = held.lost.is_set() or self._stopping
        if not handed_over:
            for task in self._polls.values():
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("telegram: polling stopped", exc_info=task.exception())
        await self._end_polls()
        return handed_over

    async def _end_polls(self) -> None:
        """End the getUpdates loops: one waiting in a long poll at once (nothing is
        half-done there), one taking a batch in when the batch is committed."""
        polls, self._polls = self._polls, {}
        for bot_id, task in polls.items():
            if bot_id in self._long_polling:
                task.cancel()
        for task in polls.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _poll(self, bot: Bot, allowed: list[str], held: Held) -> None:
        """One bot's getUpdates loop (the main bot's, or a workspace bot's for presses
        of the buttons it posted), while this process holds the polling role."""
        main = bot is self.bot
        conflicts = 0
        failures: dict[int, int] = {}  # update id -> failed tries
        #: updates set aside for good, fetched again while an earlier one is retried
        settled: set[int] = set()
        offset: int | None = None
        pause = 1.0
        while not self._stopping and not held.lost.is_set():
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
            except TelegramConflictError:
                # another program polls this bot (a gateway on another database, a
                # developer's copy), or a webhook is set: say so, and keep trying
                conflicts += 1
                problem = (
                    "getUpdates answered 409 Conflict: another program polls this bot "
                    "token, or a webhook is set for it (telegram.mode)"
                )
                if main:
                    self._poll_problem = problem
                log.log(
                    logging.WARNING if conflicts == 1 else logging.DEBUG,
                    "telegram: bot %d: %s; retrying in %.0fs",
                    bot.id,
                    problem,
                    pause,
                )
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
            pause, conflicts = 1.0, 0
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
                        await self._album(unit)
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
        await self.routes.feed(update)

    async def _album(self, unit: list[Update | dict[str, Any]]) -> None:
        """An album's parts that arrived together, taken as one message."""
        messages = [u.message for u in unit if isinstance(u, Update) and u.message]
        first = next(u for u in unit if isinstance(u, Update) and u.message)
        await self.routes.feed(first, parts=messages[1:])
