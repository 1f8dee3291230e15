"""Telegram deliveries: what the gateway sends, to customers' chats and the forum group.

A customer's chat gets copies of what operators write (and their files); the
workspace gets a topic per conversation: opened with its card and the messages
queued behind it (topics.py), then each message copied in (topic_posts.py), edits
and deletions followed. Each delivery's calls go out through one bot: the main bot
in customers' chats, the topic's owner in the group (sending.py). The adapter's
intake and lifecycle are in adapter.py; ``TelegramAdapter`` inherits this.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from html import escape

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)

from adapters.telegram import render
from adapters.telegram.sending import LONG_TEXT, TEXT_LIMIT, reply_parameters, with_quote
from adapters.telegram.topics import TopicOpening
from gateway.cards import (
    text_with_files,
    uploads,
)
from gateway.errors import (
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from gateway.events import (
    Delivery,
    Receipt,
)
from gateway.textsplit import split_text

log = logging.getLogger(__name__)


class TelegramDelivery(TopicOpening):
    """Sending, for ``TelegramAdapter``: each delivery by its kind and audience."""

    # -- delivery ---------------------------------------------------------------------------

    def cost(self, delivery: Delivery) -> int:
        """Calls ``deliver`` will make, so the outbox claims it only when the limits
        let them all go now (``Limiter.reserve``)."""
        out = delivery.outbound
        if out.kind in ("notice", "erase"):
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
            if delivery.outbound.kind == "erase":
                return await self._erase(delivery)
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
        out = with_quote(delivery)
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
                        reply_parameters=reply_parameters(delivery),
                    )
                else:
                    sent = await self._then(
                        partial(self.bot.send_message, chat, rendered, reply_markup=markup)
                    )
                ids.append(str(sent.message_id))
        ids += await self._upload_all(chat, None, out, first=not ids)
        return Receipt(external_ids=tuple(ids), chat_id=out.chat_id)

    async def _erase(self, delivery: Delivery) -> Receipt:
        """A conversation's topic, deleted with everything in it (a customer's data
        erased): one call, whatever the messages' age. A topic already gone is done."""
        assert self.workspace is not None
        card = delivery.header_ref or delivery.thread_ref
        # the ids come in parts, the card in the last: the topic goes with that one
        if delivery.thread_ref is not None and card in delivery.outbound.refs:
            bot = self._bot(self._sender(delivery))
            try:
                await bot.delete_forum_topic(self.workspace, int(delivery.thread_ref))
            except TelegramBadRequest as exc:
                if "not found" not in exc.message and "TOPIC_ID_INVALID" not in exc.message:
                    raise
        return Receipt(chat_id=str(self.workspace))

    async def _notice(self, delivery: Delivery) -> Receipt:
        """The answer to an operator's command, in the topic it was typed in (the
        general one, or a conversation's: if an admin deleted that meanwhile, the
        general one)."""
        assert self.workspace is not None
        out = delivery.outbound
        bot = self._bot(self._sender(delivery))
        text = f"{'✅' if out.ok else '⚠️'} {escape(out.text[: TEXT_LIMIT - 100])}"
        thread = int(delivery.thread_ref) if delivery.thread_ref else None
        markup = render.command_buttons(out.choices)
        try:
            sent = await bot.send_message(
                self.workspace, text, message_thread_id=thread, reply_markup=markup
            )
        except TelegramBadRequest as exc:
            if thread is None or "thread not found" not in exc.message:
                raise
            sent = await self._then(lambda: bot.send_message(self.group, text))
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
