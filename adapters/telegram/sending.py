"""What every Telegram delivery stands on: which bot makes its calls (customers'
chats are the main bot's, a topic its owner's: ``_sender``), a call as the
delivery's first or a later one (``gateway.retry``), and the single calls:
copies, edits, deletions, uploads, and the files other channels fetch.
``TopicPosts``, ``TopicOpening`` and ``TelegramDelivery`` build on it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from html import escape
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    Message,
    ReplyParameters,
)

from adapters.telegram.config import TelegramSection
from gateway.adapter import Host, UnrecordedThreads
from gateway.cards import (
    file_line,
    uploads,
)
from gateway.config import Config
from gateway.errors import (
    PermanentFailure,
    TemporaryFailure,
)
from gateway.events import (
    Attachment,
    Delivery,
    FileData,
    Outbound,
    Receipt,
)
from gateway.retry import call_part

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


class TelegramSending:
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

    @property
    def group(self) -> int:
        """The workspace group, for calls in it (a delivery to the workspace is only
        queued where one is configured)."""
        if self.workspace is None:
            raise PermanentFailure("telegram.workspace_chat_id is not configured")
        return self.workspace

    def _bot(self, bot: int) -> Bot:
        found = self.bots.get(bot) or self.bot
        assert found is not None
        return found

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
                    partial(self._by_author, bot, deleting(chat, int(ref)), "deleted"),
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
                reply_parameters=reply_parameters(delivery),
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

    async def _then(self, call: Callable[[], Awaitable[T]]) -> T:
        """A call after the first of a delivery (``gateway.retry``)."""
        return await call_part(call, first=False, tries=RETRIES_WITHIN)


def reply_parameters(delivery: Delivery) -> ReplyParameters | None:
    """A reply to the target's copy in this chat (sent anyway if it is gone)."""
    ref = delivery.reply_ref
    if ref is None or not ref.isdigit():
        return None
    return ReplyParameters(message_id=int(ref), allow_sending_without_reply=True)


def with_quote(delivery: Delivery) -> Outbound:
    """The outbound, quoting the message it answers where that is not in this chat."""
    out = delivery.outbound
    if delivery.reply_quote and delivery.reply_ref is None:
        return replace(out, text=f"↩ «{delivery.reply_quote}»\n{out.text}")
    return out


def deleting(chat: int, message_id: int) -> Callable[[Bot], Awaitable[bool]]:
    """Deleting one message, by whichever bot is given."""
    return lambda bot: bot.delete_message(chat, message_id)
