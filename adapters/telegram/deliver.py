"""Telegram deliveries: what the gateway sends, to customers' chats and the forum group.

A customer's chat gets copies of what operators write (and their files); the
workspace gets a topic per conversation: opened with its card and the messages
queued behind it (``_carry``), then each message copied in (a backlog of one
customer's as one copyMessages call), edits and deletions followed, long texts as
a preview and a file. Each delivery's calls go out through one bot: the main bot
in customers' chats, the topic's owner in the group (``_sender``). The adapter's
intake and lifecycle are in adapter.py; ``TelegramAdapter`` inherits this.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from html import escape
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    Message,
    ReplyParameters,
)

from adapters.telegram import render
from adapters.telegram.config import TelegramSection
from gateway.adapter import Host, UnrecordedThreads
from gateway.cards import (
    file_line,
    long_text_file_name,
    long_text_preview,
    text_with_files,
    uploads,
)
from gateway.config import Config
from gateway.errors import (
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from gateway.events import (
    Attachment,
    ConversationCard,
    Delivery,
    FileData,
    Outbound,
    Receipt,
)
from gateway.retry import call_part
from gateway.textsplit import split_text

log = logging.getLogger(__name__)
T = TypeVar("T")

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


class TelegramDelivery:
    """Sending, for ``TelegramAdapter``, which sets these up."""

    name: str
    section: TelegramSection
    config: Config
    workspace: int | None
    bot: Bot | None
    bots: dict[int, Bot]
    bot_ids: list[int]
    main_id: int
    host: Host | None
    _opened: dict[int, Receipt]
    _unrecorded: UnrecordedThreads

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


def _deleting(chat: int, message_id: int) -> Callable[[Bot], Awaitable[bool]]:
    """Deleting one message, by whichever bot is given."""
    return lambda bot: bot.delete_message(chat, message_id)
