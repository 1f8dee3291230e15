"""Messages posted into a conversation's topic: copies of customers' messages (a
backlog as one copyMessages call), texts where Telegram will not copy, long texts
as a preview and a file, and a copy mended when an edit must follow it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from functools import partial
from html import escape

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
)
from aiogram.types import (
    BufferedInputFile,
    Message,
    ReplyParameters,
)

from adapters.telegram import render
from adapters.telegram.sending import (
    LONG_TEXT,
    TEXT_LIMIT,
    TelegramSending,
    reply_parameters,
    with_quote,
)
from gateway.cards import (
    long_text_file_name,
    long_text_preview,
    text_with_files,
    uploads,
)
from gateway.events import (
    Delivery,
    Outbound,
)
from gateway.textsplit import split_text

log = logging.getLogger(__name__)


class TopicPosts(TelegramSending):
    """Posting into a topic that is open, for ``TopicOpening`` and ``TelegramDelivery``."""

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
                    self.group,
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
        out = with_quote(delivery)
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
                    self.group,
                    r,
                    message_thread_id=thread,
                    reply_parameters=reply_parameters(delivery) if first else None,
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
            reply_parameters=reply_parameters(delivery),
        )
        name = long_text_file_name(out)
        document = await self._then(
            lambda: owner.send_document(
                self.group,
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
