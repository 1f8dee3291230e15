"""Slack deliveries: what the gateway sends, to customers' DMs and the operators' channel.

A customer's DM gets what operators write (their files uploaded anew); the
operators' channel gets a thread per conversation, opened by its card, then each
message posted in it as its author (chat:write.customize), edits and deletions
followed, long texts as a preview and a file. A delivery's later calls wait a rate
limit out in place (``gateway.retry``). The adapter's intake and lifecycle are in
adapter.py; ``SlackAdapter`` inherits this.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.config import SlackSection
from adapters.slack.pacing import is_rate_limited, retry_after
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

#: Slack shows up to 4,000 characters of a message's text in full; longer is split
#: (https://docs.slack.dev/reference/methods/chat.postMessage#truncating)
TEXT_LIMIT = 4000
#: longer than this, a text goes to a thread as a preview and a file, not in parts
LONG_TEXT = 3 * TEXT_LIMIT
#: tries of a delivery's later call that meets a 429 (each waits its Retry-After)
RETRIES_WITHIN = 4
#: errors after which retrying cannot help, as operators should read them
PERMANENT = {
    "channel_not_found": "Slack: the channel is gone, or the app is not in it",
    "not_in_channel": "Slack: the app is not in the channel; invite it (/invite @app)",
    "is_archived": "Slack: the channel is archived",
    "user_not_found": "Slack: the user is gone",
    "account_inactive": "Slack: the customer's account is deactivated",
    "cannot_dm_bot": "Slack: the app cannot write to that user",
    "messages_tab_disabled": "Slack: the customer's app messages tab is off",
    "restricted_action": "Slack: a workspace setting forbids the app to post there",
    "invalid_auth": "Slack: the bot token was refused (slack.bot_token)",
    "not_authed": "Slack: no bot token was sent (slack.bot_token)",
    "token_revoked": "Slack: the bot token was revoked (slack.bot_token)",
    "missing_scope": "Slack: the app lacks a scope (chat:write, chat:write.customize, files:write)",
    "msg_too_long": "Slack: the message is too long",
    "no_text": "Slack: the message was empty",
    "invalid_blocks": "Slack: the card was refused (invalid_blocks)",
}
TEMPORARY = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
GONE = {"message_not_found", "cant_delete_message", "cant_update_message"}


class SlackDelivery:
    """Sending, for ``SlackAdapter``, which sets these up."""

    name: str
    section: SlackSection
    config: Config
    workspace: str | None
    client: AsyncWebClient | None
    host: Host | None
    _http: aiohttp.ClientSession | None
    _opened: dict[int, Receipt]
    _unrecorded: UnrecordedThreads

    # -- files ----------------------------------------------------------------------------------

    async def fetch(self, attachment: Attachment) -> FileData:
        """Download a Slack file with the bot token: only from Slack's own hosts (or the
        configured API's), so the token never goes anywhere else."""
        assert self._http is not None
        url = attachment.file_ref
        host = urlsplit(url).hostname or ""
        allowed = urlsplit(self.section.api_base).hostname
        if not (host == allowed or host == "slack.com" or host.endswith(".slack.com")):
            raise PermanentFailure(f"the file's address is not Slack's ({host})")
        token = self.section.bot_token.get_secret_value()
        try:
            async with self._http.get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=120),
            ) as reply:
                if reply.status == 404:
                    raise PermanentFailure("the file was deleted in Slack")
                if reply.status >= 400:
                    raise TemporaryFailure(f"Slack answered {reply.status} to a download")
                if reply.content_type == "text/html":
                    raise PermanentFailure(
                        "Slack answered with a sign-in page: give the app the files:read scope"
                    )
                data = await reply.read()
        except aiohttp.ClientError as exc:
            raise TemporaryFailure(f"Slack download: {exc}") from None
        return FileData(
            name=attachment.name or "file",
            mime=attachment.mime or reply.content_type or "application/octet-stream",
            data=data,
        )

    async def _upload_all(
        self, channel: str, thread: str | None, out: Outbound, *, first: bool
    ) -> None:
        """Upload files from any channel (Slack has no copy): a file that cannot
        follow (too big, gone) is named in a message saying why, never dropped."""
        assert self.client is not None and self.host is not None
        client = self.client
        assert client is not None
        for number, attachment in enumerate(uploads(out)):
            try:
                file = await self.host.fetch(attachment)
                await self._call(
                    partial(
                        client.files_upload_v2,
                        channel=channel,
                        thread_ts=thread,
                        content=file.data,
                        filename=file.name,
                        title=file.name,
                    ),
                    first=first and number == 0,
                )
            except PermanentFailure as exc:
                notice = f"{file_line(attachment.name, attachment.kind, attachment.size)}: {exc}"
                await self._call(
                    partial(self._post_text, channel, thread, render.escape(notice), None),
                    first=first and number == 0,
                )

    # -- delivery ---------------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> Receipt:
        known = self._opened.get(delivery.outbound.conversation_id)
        if known is not None and delivery.thread_ref == known.thread_ref:
            del self._opened[delivery.outbound.conversation_id]  # the core has recorded it
        try:
            if delivery.outbound.audience == "customer":
                return await self._to_customer(delivery)
            if delivery.outbound.kind == "header":
                return await self._header(delivery)
            if delivery.outbound.kind == "notice":
                return await self._notice(delivery)
            if delivery.outbound.kind == "erase":
                # the app's messages in the thread, the card last (a thread cannot be
                # deleted as one); one already gone is skipped
                assert self.workspace is not None
                await self._change(self.workspace, delivery.outbound.refs, None)
                return Receipt(chat_id=self.workspace)
            return await self._to_workspace(delivery)
        except SlackApiError as exc:
            raise _failure(exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryFailure(f"Slack: {exc!r}") from None

    async def _then(self, call: Callable[[], Awaitable[T]]) -> T:
        """A call after the first of a delivery (``gateway.retry``)."""
        return await self._call(call, first=False)

    async def _call(self, call: Callable[[], Awaitable[T]], *, first: bool) -> T:
        return await call_part(call, first=first, tries=RETRIES_WITHIN, waits=_slack_wait)

    async def _post_text(
        self, channel: str, thread: str | None, text: str, username: str | None, **extra: Any
    ) -> str:
        assert self.client is not None
        reply = await self.client.chat_postMessage(
            channel=channel,
            text=text,
            thread_ts=thread,
            username=username,
            unfurl_links=False,
            unfurl_media=False,
            **extra,
        )
        return str(reply["ts"])

    async def _post_parts(
        self, channel: str, thread: str | None, text: str, username: str | None, **extra: Any
    ) -> list[str]:
        ids: list[str] = []
        for number, part in enumerate(split_text(text, TEXT_LIMIT)):
            ids.append(
                await self._call(
                    partial(self._post_text, channel, thread, part, username, **extra),
                    first=number == 0,
                )
            )
        return ids

    async def _change(self, channel: str, refs: tuple[str, ...], text: str | None) -> None:
        """Edit (``text``) or delete (None) our copies; one already gone is skipped."""
        client = self.client
        assert client is not None
        for number, ref in enumerate(refs):

            def call(r: str = ref) -> Awaitable[Any]:
                if text is None:
                    return client.chat_delete(channel=channel, ts=r)
                return client.chat_update(channel=channel, ts=r, text=text)

            try:
                await self._call(call, first=number == 0)
            except SlackApiError as exc:
                if exc.response.get("error") not in GONE:
                    raise
                log.info("slack: %s in %s not changed: %s", ref, channel, exc.response.get("error"))

    async def _to_customer(self, delivery: Delivery) -> Receipt:
        out = delivery.outbound
        chat = str(out.chat_id)
        if out.kind == "edit":
            await self._change(chat, delivery.edit_refs, render.escape(out.text))
            return Receipt(chat_id=chat)
        if out.kind == "delete":
            await self._change(chat, delivery.edit_refs, None)
            return Receipt(chat_id=chat)
        name = out.author_name if out.author_role == "operator" else None
        text = text_with_files(out)
        ids: list[str] = []
        if out.choices:
            # the text, with one button per choice: a tap answers
            ids = [
                await self._post_text(
                    chat,
                    None,
                    render.escape(text),
                    name,
                    blocks=render.choice_blocks(text, out.choices),
                )
            ]
        elif text or not uploads(out):
            ids = await self._post_parts(chat, None, render.escape(text or " "), name)
        await self._upload_all(chat, None, out, first=not ids)
        return Receipt(external_ids=tuple(ids), chat_id=chat)

    async def _header(self, delivery: Delivery) -> Receipt:
        assert self.client is not None and self.workspace is not None
        card = delivery.outbound.card
        assert card is not None
        if delivery.thread_ref is None:
            return await self._open_thread(card.conversation_id, card)
        try:
            await self.client.chat_update(
                channel=self.workspace,
                ts=delivery.header_ref or delivery.thread_ref,
                text=render.card_text(card),
                blocks=self._card_blocks(card),
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            log.warning(
                "slack: the card of conversation %d was deleted; posting a new one",
                card.conversation_id,
            )
            return await self._open_thread(
                card.conversation_id, card, replacing=delivery.thread_ref
            )
        return Receipt()

    def _card_blocks(self, card: ConversationCard) -> list[dict[str, Any]]:
        core = self.config.core
        return render.card_blocks(
            card,
            list(self.config.operators),
            replies=[(r.name, r.label) for r in core.replies],
            tags=list(core.tags.suggested),
        )

    async def _open_thread(
        self, conversation_id: int, card: ConversationCard | None, *, replacing: str | None = None
    ) -> Receipt:
        """Post a conversation's card, whose thread is the conversation, once.

        A thread this process opened but the core has not recorded yet (the delivery
        failed after it) is reused, never opened twice.
        """
        assert self.workspace is not None
        known = self._opened.get(conversation_id)
        if known is not None and known.thread_ref != replacing:
            return known
        if card is not None:
            ts = await self._post_text(
                self.workspace,
                None,
                render.card_text(card),
                None,
                blocks=self._card_blocks(card),
            )
        else:
            ts = await self._post_text(
                self.workspace, None, f"Conversation #{conversation_id}", None
            )
        receipt = Receipt(thread_ref=ts, header_ref=ts, chat_id=self.workspace)
        self._opened[conversation_id] = receipt
        assert self.host is not None
        await self._unrecorded.record(self.host, self.name, conversation_id, ts, ts)
        return receipt

    def recorded(self, receipt: Receipt) -> None:
        self._unrecorded.recorded(receipt)

    async def _notice(self, delivery: Delivery) -> Receipt:
        """The answer to an operator's command, where they gave it, for their eyes
        only (like a toast)."""
        assert self.client is not None and self.workspace is not None
        out = delivery.outbound
        text = render.escape(out.text[:TEXT_LIMIT])
        await self.client.chat_postEphemeral(
            channel=self.workspace,
            user=out.operator or "",
            text=text,
            thread_ts=delivery.thread_ref,
            blocks=render.command_blocks(text, out.choices) if out.choices else None,
        )
        return Receipt(chat_id=self.workspace)

    async def _to_workspace(self, delivery: Delivery) -> Receipt:
        assert self.workspace is not None
        out = delivery.outbound
        opened: Receipt | None = None
        if delivery.thread_ref is None:
            opened = await self._open_thread(out.conversation_id, None)
        thread = str((opened or delivery).thread_ref)
        try:
            ids = await self._post_all(delivery, thread, first=opened is None)
        except SlackApiError as exc:
            if exc.response.get("error") != "thread_not_found":
                raise
            log.warning(
                "slack: the thread of conversation %d is gone; posting a new card",
                out.conversation_id,
            )
            opened = await self._open_thread(out.conversation_id, None, replacing=thread)
            ids = await self._post_all(delivery, str(opened.thread_ref), first=False)
        return Receipt(
            external_ids=tuple(ids[0]),
            chat_id=self.workspace,
            thread_ref=opened.thread_ref if opened else None,
            header_ref=opened.header_ref if opened else None,
            more=tuple(Receipt(external_ids=tuple(i), chat_id=self.workspace) for i in ids[1:]),
        )

    async def _post_all(self, delivery: Delivery, thread: str, *, first: bool) -> list[list[str]]:
        """Post a delivery and those coalesced with it; the ids each one got."""
        assert self.workspace is not None
        group = [delivery, *delivery.more]
        if len(group) > 1 and texts_only(group):
            # a backlog of one customer's texts: one message. The parts get no ids of
            # their own, so a later edit of one is posted as a new reply, never
            # written over the others
            _, name = render.thread_text(delivery.outbound)
            assert self.workspace is not None
            await self._call(
                partial(
                    self._post_parts, self.workspace, thread, render.escape(joined(group)), name
                ),
                first=first,
            )
            return [[] for _ in group]
        out = [await self._call(lambda: self._post(delivery, thread), first=first)]
        for later in group[1:]:
            out.append(await self._then(partial(self._post, later, thread)))
        return out

    async def _post(self, delivery: Delivery, thread: str) -> list[str]:
        assert self.workspace is not None
        out = delivery.outbound
        if out.kind == "edit":
            text, name = render.thread_text(out)
            if delivery.edit_refs:
                await self._change(self.workspace, delivery.edit_refs, render.edited(text))
                return []
            await self._post_text(self.workspace, thread, f":pencil2: _edited:_ {text}", name)
            return []
        if out.kind == "delete":
            if out.author_role == "customer":  # operators keep the record, marked
                await self._change(self.workspace, delivery.edit_refs, render.deleted(out))
            else:
                await self._change(self.workspace, delivery.edit_refs, None)
            return []
        shown = replace(out, text=text_with_files(out))
        text, name = render.thread_text(shown)
        if out.mentions:
            # someone is called on (a deadline, a snooze over): the reply is also sent
            # to the channel, so the conversation comes up where everyone looks
            text += "\n" + render.mention_line(out.mentions, self.config.operators)
            return await self._post_parts(self.workspace, thread, text, name, reply_broadcast=True)
        ids: list[str] = []
        if len(shown.text) > LONG_TEXT:
            ids = await self._post_long(thread, shown, name)
        elif shown.text or not uploads(out):
            ids = await self._post_parts(self.workspace, thread, text, name)
        await self._upload_all(self.workspace, thread, out, first=not ids)
        return ids

    async def _post_long(self, thread: str, out: Outbound, name: str | None) -> list[str]:
        """A very long text (a mail with a long history): its start to read at a glance,
        and the whole of it as a file, two posts rather than dozens at one a second."""
        client = self.client
        assert client is not None and self.workspace is not None
        preview, _ = render.thread_text(replace(out, text=long_text_preview(out.text)))
        ts = await self._post_text(self.workspace, thread, preview, name)
        await self._then(
            lambda: client.files_upload_v2(
                channel=self.workspace,
                thread_ts=thread,
                content=out.text.encode(),
                filename=long_text_file_name(out),
                title=long_text_file_name(out),
            )
        )
        return [ts]


def texts_only(group: list[Delivery]) -> bool:
    """A backlog of texts that go out joined (in parts at most three): longer, each
    goes on its own, a very long one as a preview and a file."""
    return (
        all(
            d.outbound.kind == "message" and not d.outbound.attachments and d.outbound.text
            for d in group
        )
        and len(joined(group)) <= LONG_TEXT
    )


def joined(group: list[Delivery]) -> str:
    return "\n".join(d.outbound.text for d in group)


def _failure(exc: SlackApiError) -> Exception:
    """A Web API error as the outbox understands it."""
    status = exc.response.status_code
    error = str(exc.response.get("error") or "")
    if is_rate_limited(exc):
        return RateLimited(retry_after(exc), scope="chat")
    if status >= 500 or error in TEMPORARY:
        return TemporaryFailure(f"Slack: {status} {error}".strip())
    return PermanentFailure(PERMANENT.get(error, f"Slack: {error or status}"))


def _slack_wait(exc: Exception) -> float | None:
    """A 429 on a call the limiter does not pace: its Retry-After."""
    if isinstance(exc, SlackApiError) and is_rate_limited(exc):
        return retry_after(exc)
    return None
