"""What adapters see of the gateway (the ``Host`` protocol): the core's intake
and actions, timed for the metrics, refused while stopping, a database failure
named as ``StoreUnavailable``; routes on the HTTP server; files from another
channel.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from gateway.errors import PermanentFailure, StoreUnavailable
from gateway.events import (
    ActionResult,
    Attachment,
    DeskState,
    FileData,
    Inbound,
    IngestResult,
    OperatorCommand,
    Outbound,
    Said,
)
from gateway.roles import Held
from storage.models import (
    FINISHED_STATUSES,
    Conversation,
    Customer,
    CustomerIdentity,
    Direction,
)
from storage.repository import is_database_failure
from storage.types import utcnow

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from gateway.app import Gateway
    from storage.repository import Transaction

#: files relayed from one channel to another pass through memory; Telegram takes
#: uploads up to 50 MB from bots, so a bigger file could go nowhere anyway
MAX_RELAYED_FILE = 50 * 2**20


@contextlib.contextmanager
def _outage_named() -> Iterator[None]:
    """A database failure reaches adapters as ``StoreUnavailable``: they retry the
    event rather than count it against the event (adapters never see storage)."""
    try:
        yield
    except Exception as exc:
        if is_database_failure(exc):
            raise StoreUnavailable(f"the database failed: {type(exc).__name__}") from exc
        raise


class GatewayHost:
    """What adapters see of the gateway (the ``Host`` protocol)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        """A transaction of the gateway's, its database failures named as
        ``StoreUnavailable``."""
        with _outage_named():
            async with self._gateway.repository.transaction() as tx:
                yield tx

    async def ingest(self, inbound: Inbound) -> IngestResult:
        self._gateway.check_accepting()
        metrics = self._gateway.metrics
        started = time.perf_counter()
        with _outage_named():
            result = await self._gateway.core.ingest(inbound)
        metrics.ingest_seconds.labels(inbound.channel).observe(time.perf_counter() - started)
        if not result.duplicate and result.ignored is None:
            side = "workspace" if inbound.from_workspace else "customer"
            metrics.messages_in.labels(inbound.channel, side).inc()
        return result

    async def act(self, command: OperatorCommand) -> ActionResult:
        self._gateway.check_accepting()
        with _outage_named():
            return await self._gateway.core.act(command)

    def commands(self) -> list[tuple[str, str]]:
        return self._gateway.core.actions.menu()

    async def set_aside(self, channel: str, key: str, *, check: bool = False) -> bool:
        with _outage_named():
            return await self._gateway.core.set_aside(channel, key, check=check)

    async def thread_opened(
        self, workspace: str, conversation_id: int, thread_ref: str, header_ref: str | None = None
    ) -> None:
        await self._gateway.core.thread_opened(workspace, conversation_id, thread_ref, header_ref)

    def role(self, name: str) -> contextlib.AbstractAsyncContextManager[Held]:
        return self._gateway.roles.hold(name)

    def add_route(self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]]) -> None:
        self._gateway.http.add_route(method, path, handler)

    async def fetch(self, attachment: Attachment) -> FileData:
        origin = next((a for a in self._gateway.adapters if a.name == attachment.origin), None)
        if origin is None:
            raise PermanentFailure(
                f"the file came from {attachment.origin or 'an unknown channel'}, "
                "which is not configured now"
            )
        if attachment.size is not None and attachment.size > MAX_RELAYED_FILE:
            raise PermanentFailure(
                f"over the {MAX_RELAYED_FILE // 2**20} MB the gateway passes between channels"
            )
        return await origin.fetch(attachment)

    async def transcript(
        self,
        channel: str,
        chat_id: str,
        *,
        after: int = 0,
        changed_since: datetime | None = None,
        limit: int = 200,
    ) -> list[Said]:
        async with self._transaction() as tx:
            rows = await tx.transcript(
                channel, chat_id, after=after, changed_since=changed_since, limit=limit
            )
        return [_said(row) for row in rows]

    async def latest_message_id(self) -> int | None:
        if self._gateway.db.is_sqlite:
            return None  # one process on a SQLite file: every delivery is this one's
        async with self._transaction() as tx:
            return await tx.latest_message_id()

    async def shown_since(self, channel: str, after: int) -> list[tuple[str, Said]]:
        async with self._transaction() as tx:
            rows = await tx.shown_since(channel, after)
        return [(row.chat_id, _said(row)) for row in rows]

    async def forward(
        self, outbound: Outbound, channel: str, chat_id: str, *, delay_seconds: float = 0
    ) -> str | None:
        if not any(adapter.name == channel for adapter in self._gateway.adapters):
            return f"no {channel} channel is configured"
        if outbound.message_id is None:
            return "only a stored message is forwarded"
        copy = replace(outbound, destination=channel, chat_id=chat_id, choices=())
        async with self._transaction() as tx:
            conversation = await tx.conversation(outbound.conversation_id)
            if conversation is None:
                return "the conversation is gone"
            if await tx.identity(channel, chat_id) is None:
                tx.add(
                    CustomerIdentity(
                        customer_id=conversation.customer_id,
                        channel=channel,
                        external_id=chat_id,
                    )
                )
            await self._gateway.core.relay.enqueue(
                tx,
                copy,
                key=f"forward:{outbound.message_id}",
                not_before=utcnow() + timedelta(seconds=delay_seconds),
            )
        return None

    async def describe_customer(
        self, channel: str, chat_id: str, *, name: str | None, note: str
    ) -> bool:
        relay = self._gateway.core.relay
        async with self._transaction() as tx:
            found = await _latest_of_chat(tx, channel, chat_id)
            if found is None:
                return False
            customer, conversation = found
            if name and customer.display_name != name[:256]:
                customer.display_name = name[:256]
                tx.add(customer)
                await relay.header(tx, conversation)
            await relay.system(tx, conversation, note)
        return True

    async def typing(self, channel: str, chat_id: str) -> bool:
        showing = [a for a in self._gateway.adapters if a.serves_workspace]
        if not showing:
            return False
        async with self._transaction() as tx:
            found = await _latest_of_chat(tx, channel, chat_id)
            if found is None or found[1].status in FINISHED_STATUSES:
                return False
            conversation = found[1]
            assert conversation.id is not None
            threads = [(a, await tx.thread(conversation.id, a.name)) for a in showing]
        shown = False
        for adapter, thread in threads:
            if thread is not None and thread.thread_ref:
                shown = True
                try:
                    await adapter.show_typing(thread.thread_ref)
                except Exception as exc:  # a moment's sign: never worth more than a line
                    log.debug("%s: typing not shown: %s", adapter.name, exc)
        return shown

    async def desk_state(self, language: str | None) -> DeskState:
        core = self._gateway.core
        config = core.desk.config
        now = utcnow()
        schedule = config.core.schedule
        async with self._transaction() as tx:
            candidates = await core.dispatcher.candidates(tx)
        present = [c for c in candidates if c.present]
        is_open = schedule.is_open(now)
        return DeskState(
            open=is_open,
            staffed=bool(present),
            free=is_open and any(c.has_capacity for c in present),
            opens=None
            if is_open
            else schedule.opening_words(now, language, config.gateway.default_language),
        )

    async def message_files(self, message_ids: list[int]) -> dict[int, list[str]]:
        async with self._transaction() as tx:
            return await tx.message_files(message_ids)

    async def chat_state(self, channel: str, chat_id: str) -> dict[str, Any] | None:
        async with self._transaction() as tx:
            return await tx.chat_state(channel, chat_id)

    async def keep_chat_state(self, channel: str, chat_id: str, data: dict[str, Any]) -> None:
        async with self._transaction() as tx:
            await tx.keep_chat_state(channel, chat_id, data)


async def _latest_of_chat(
    tx: Transaction, channel: str, chat_id: str
) -> tuple[Customer, Conversation] | None:
    """The customer writing from ``chat_id`` on ``channel`` and their latest
    conversation there, if they have one."""
    found = await tx.identity(channel, chat_id)
    if found is None or found[1].id is None:
        return None
    conversation = await tx.latest_conversation(found[1].id, channel, chat_id)
    return None if conversation is None else (found[1], conversation)


def _said(row: Any) -> Said:
    return Said(
        id=row.id,
        conversation_id=row.conversation_id,
        side=_SIDES[row.direction],
        author_name=row.author_name,
        text=row.text,
        attachments=tuple(Attachment(**a) for a in row.attachments or ()),
        at=row.created_at,
        edited=row.edited_at is not None,
        deleted=row.deleted_at is not None,
        choices=tuple((str(c[0]), str(c[1])) for c in row.choices or ()),
    )


_SIDES: dict[str, Literal["customer", "operator", "bot"]] = {
    Direction.IN: "customer",
    Direction.OUT: "operator",
    Direction.AUTO: "bot",
}
