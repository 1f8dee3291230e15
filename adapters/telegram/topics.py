"""A conversation's topic opened: createForumTopic, the card that heads it (its
buttons, its edits as the conversation changes), and the messages queued behind
the header carried in the same delivery (``_carry``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramServerError,
)

from adapters.telegram import render
from adapters.telegram.topic_posts import TopicPosts
from gateway.errors import (
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from gateway.events import (
    ConversationCard,
    Delivery,
    Receipt,
)

log = logging.getLogger(__name__)


class TopicOpening(TopicPosts):
    """Opening and heading a conversation's topic, for ``TelegramDelivery``."""

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
                    self.group,
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
                self.group,
                text,
                message_thread_id=thread,
                reply_markup=render.header_buttons(card) if card else None,
            )
        )
        if bot.id == self.main_id:
            return str(sent.message_id)
        return f"{bot.id}:{sent.message_id}"
