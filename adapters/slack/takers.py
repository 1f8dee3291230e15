"""What the Slack adapter does with each event, action and command bolt hands it
(listeners.py says which goes where): customers' messages and their edits and
deletions, operators' replies and notes in a card's thread, commands by mention,
button or slash command, and who a Slack user is (users.info, cached).

Messages of one channel are taken one at a time, in the order they came
(``_lock``): an edit must not overtake the message it edits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import normalise, render
from adapters.slack.config import SlackSection
from gateway.adapter import Host, UnrecordedThreads
from gateway.config import Config, OperatorConfig
from gateway.errors import (
    ShuttingDown,
    StoreUnavailable,
)
from gateway.events import (
    NOT_AN_OPERATOR,
    UNREADABLE_TEXT,
    Inbound,
    OperatorCommand,
    Sender,
)

log = logging.getLogger(__name__)


class SlackTakers:
    """The listeners' targets, for ``SlackAdapter``, which sets these up."""

    name: str
    config: Config
    section: SlackSection
    workspace: str | None
    customer_channels: frozenset[str]
    client: AsyncWebClient | None
    host: Host | None
    bot_user: str
    _senders: OrderedDict[str, Sender]
    _locks: dict[str, asyncio.Lock]
    _unrecorded: UnrecordedThreads
    _background: set[asyncio.Task[Any]]

    def _lock(self, channel: str) -> asyncio.Lock:
        """One event at a time per channel, in the order they came: an edit must not
        overtake the message it edits (Socket Mode runs listeners concurrently)."""
        lock = self._locks.get(channel)
        if lock is None:
            if len(self._locks) > 10_000:
                for key in [k for k, v in self._locks.items() if not v.locked()]:
                    del self._locks[key]
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    async def unreadable(self, event: dict[str, Any]) -> None:
        """A customer's message that could not be taken in: operators still see that
        they wrote (retried, it would fail the same)."""
        assert self.host is not None
        channel, user, ts = event.get("channel"), event.get("user"), event.get("ts")
        if not (isinstance(channel, str) and isinstance(user, str) and isinstance(ts, str)):
            return
        if not channel or not user or self._place(event, channel) != "customer":
            return
        try:
            await self.host.ingest(
                Inbound(
                    channel=self.name,
                    event_id=f"unreadable:{channel}:{ts}",
                    chat_id=channel,
                    sender=await self._sender(user),
                    text=UNREADABLE_TEXT,
                )
            )
        except (ShuttingDown, StoreUnavailable):
            raise
        except Exception as exc:
            log.error("slack: not even a placeholder could be stored: %s", type(exc).__name__)

    def _place(self, event: dict[str, Any], channel: str) -> str | None:
        if channel == self.workspace:
            return "workspace"
        if event.get("channel_type") == "im" or channel in self.customer_channels:
            return "customer"
        return None

    async def written(self, event: dict[str, Any]) -> None:
        channel = str(event.get("channel") or "")
        place = self._place(event, channel)
        if place is None:
            return
        async with self._lock(channel):
            key = normalise.event_key(channel, str(event.get("ts")))
            await self._written(place, channel, event, key)

    async def edited(self, event: dict[str, Any]) -> None:
        channel = str(event.get("channel") or "")
        place = self._place(event, channel)
        if place is None:
            return
        message = event.get("message") or {}
        stamp = (message.get("edited") or {}).get("ts") or event.get("ts") or ""
        key = normalise.event_key(channel, str(message.get("ts")), f"edit:{stamp}")
        async with self._lock(channel):
            await self._written(place, channel, message, key, edit_of=str(message.get("ts")))

    async def deleted(self, event: dict[str, Any]) -> None:
        channel = str(event.get("channel") or "")
        place = self._place(event, channel)
        if place is None:
            return
        previous = event.get("previous_message") or {}
        gone = str(event.get("deleted_ts") or previous.get("ts") or "")
        key = normalise.event_key(channel, gone, "deleted")
        async with self._lock(channel):
            await self._written(place, channel, previous, key, delete_of=gone)

    async def _written(
        self,
        place: str,
        channel: str,
        message: dict[str, Any],
        key: str,
        *,
        edit_of: str | None = None,
        delete_of: str | None = None,
    ) -> None:
        assert self.host is not None
        if normalise.is_from_bot(message, self.bot_user) or not message.get("user"):
            return  # ours (or another app's): taking it in would loop
        user = str(message["user"])
        ts = str(message.get("ts") or "")
        text = "" if delete_of else normalise.text_of(message)
        if place == "customer":
            await self.host.ingest(
                Inbound(
                    channel=self.name,
                    event_id=key,
                    chat_id=channel,
                    sender=await self._sender(user),
                    text=text,
                    attachments=() if delete_of else normalise.attachments(message),
                    message_id=ts,
                    edit_of=edit_of,
                    delete_of=delete_of,
                    sent_at=normalise.sent_at(ts) if not (edit_of or delete_of) else None,
                )
            )
            return
        thread = normalise.in_thread(message)
        if thread is None:
            return  # the channel itself is for the cards; only threads are conversations
        if normalise.mention_command(message.get("text") or "", self.bot_user):
            return  # a command to the app (its app_mention event runs it), not a reply
        operator = self._operator(user)
        await self._unrecorded.known(thread)
        if normalise.is_note(message.get("text") or ""):
            if edit_of or delete_of:
                return  # a note stays where it was written, edits and all
            await self._note(channel, ts, thread, user, operator, key, text)
            return
        result = await self.host.ingest(
            Inbound(
                channel=self.name,
                event_id=key,
                chat_id=channel,
                sender=Sender(user, operator.name if operator else user),
                text=text,
                attachments=() if delete_of else normalise.attachments(message),
                message_id=ts,
                edit_of=edit_of,
                delete_of=delete_of,
                workspace_thread=thread,
            )
        )
        if result.ignored == NOT_AN_OPERATOR and not (edit_of or delete_of):
            self._tell(
                channel,
                user,
                thread,
                "Your reply was not sent to the customer: only the operators listed in "
                "the gateway's config answer customers. Ask an admin to add your "
                f"slack_id ({user}) to [[operators]].",
            )

    async def _note(
        self,
        channel: str,
        ts: str,
        thread: str,
        user: str,
        operator: OperatorConfig | None,
        key: str,
        text: str,
    ) -> None:
        assert self.host is not None
        result = await self.host.act(
            OperatorCommand(
                channel=self.name,
                event_id=key,
                operator_external_id=user,
                name="note",
                args=normalise.note_body(text),
                workspace_thread=thread,
                answer="failures",  # a kept note is marked with a reaction
            )
        )
        if result.ok and operator is not None:
            self._soon(self._react(channel, ts, "memo"))

    async def picked(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """A customer tapped one of the choices under our message: their answer."""
        assert self.host is not None
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("container") or {}).get("channel_id") or "")
        if user and channel != self.workspace:
            await self.host.ingest(
                Inbound(
                    channel=self.name,
                    event_id=f"pick:{user}:{action.get('action_ts') or body.get('trigger_id')}",
                    chat_id=channel,
                    sender=await self._sender(user),
                    text=str(action.get("value") or "?"),
                )
            )
        await ack()

    async def card_action(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        """A card's button or menu: the command runs and commits, then Slack hears back."""
        assert self.host is not None
        name = str(action.get("action_id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        container = body.get("container") or {}
        # a card is its thread's first message; an answer's buttons are in the thread
        thread = container.get("thread_ts") or container.get("message_ts")
        channel = str(container.get("channel_id") or "")
        if not user or channel != self.workspace:
            await ack()
            return
        picked = action.get("selected_option") or {}
        args = str(picked.get("value") or action.get("value") or "")
        args = "" if args == name else args
        if name == "tag" and args.startswith("-"):
            name, args = "untag", args[1:]
        stamp = action.get("action_ts") or body.get("trigger_id") or ""
        await self._unrecorded.known(str(thread) if thread else None)
        await self.host.act(
            OperatorCommand(
                channel=self.name,
                event_id=f"action:{user}:{stamp}",
                operator_external_id=user,
                name=name,
                args=args,
                workspace_thread=str(thread) if thread else None,
                answer="always",
            )
        )
        await ack()

    async def mentioned(self, event: dict[str, Any]) -> None:
        """``@app status`` (or any command: ``@app snooze 2h`` in a conversation's
        thread) from the workspace; the answer is shown to the writer only."""
        assert self.host is not None
        channel = str(event.get("channel") or "")
        user = str(event.get("user") or "")
        command = normalise.mention_command(str(event.get("text") or ""), self.bot_user)
        if channel != self.workspace or not user or command is None:
            return
        thread = event.get("thread_ts")
        await self._unrecorded.known(str(thread) if thread else None)
        await self.host.act(
            OperatorCommand(
                channel=self.name,
                event_id=f"mention:{channel}:{event.get('ts')}",
                operator_external_id=user,
                name=command[0],
                args=command[1],
                workspace_thread=str(thread) if thread else None,
                answer="always",
            )
        )

    async def slash_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        """``/support online``: presence and the queue, from anywhere in Slack; a
        conversation's command names it by number (``/support reply refund #12``:
        slash commands are not given in threads). The answer is the ack itself,
        which Slack shows only to whoever typed it."""
        assert self.host is not None
        text, number = normalise.conversation_number(str(command.get("text") or ""))
        words = text.split(None, 1)
        name = words[0].lstrip("/").lower() if words else "status"
        user = str(command.get("user_id") or "")
        result = await self.host.act(
            OperatorCommand(
                channel=self.name,
                event_id=f"command:{user}:{command.get('trigger_id') or ''}",
                operator_external_id=user,
                name=name,
                args=words[1] if len(words) > 1 else "",
                conversation_id=number,
            )
        )
        await ack(text=render.escape(result.message))

    def _operator(self, user: str) -> OperatorConfig | None:
        return next((op for op in self.config.operators if op.identity(self.name) == user), None)

    async def _sender(self, user: str) -> Sender:
        """Who a customer is (users.info, cached: it is rate limited too)."""
        cached = self._senders.get(user)
        if cached is not None:
            self._senders.move_to_end(user)
            return cached
        assert self.client is not None
        try:
            info = (await self.client.users_info(user=user, include_locale=True)).get("user")
        except (SlackApiError, aiohttp.ClientError) as exc:
            log.warning("slack: users.info for %s failed (%s); the name shows as the id", user, exc)
            return Sender(user, user)
        info = info or {}
        profile = info.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or info.get("real_name")
            or info.get("name")
            or user
        )
        sender = Sender(
            user,
            str(name),
            username=info.get("name"),
            language=normalise.language(info.get("locale")),
        )
        self._senders[user] = sender
        if len(self._senders) > 10_000:
            self._senders.popitem(last=False)
        return sender

    # -- small direct calls: answers to one person, marks ----------------------------------

    def _soon(self, call: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _tell(self, channel: str, user: str, thread: str | None, text: str) -> None:
        """An answer only ``user`` sees, in the thread (like a toast): after the ack,
        never holding Slack's 3 seconds."""

        async def post() -> None:
            assert self.client is not None
            try:
                await self.client.chat_postEphemeral(
                    channel=channel, user=user, text=render.escape(text), thread_ts=thread
                )
            except (SlackApiError, aiohttp.ClientError) as exc:
                log.info("slack: could not answer %s: %s", user, exc)

        self._soon(post())

    async def _react(self, channel: str, ts: str, name: str) -> None:
        assert self.client is not None
        try:
            await self.client.reactions_add(channel=channel, timestamp=ts, name=name)
        except (SlackApiError, aiohttp.ClientError) as exc:
            log.info("slack: could not mark the note %s: %s", ts, exc)
