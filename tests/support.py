"""Test doubles that implement the real protocols (never mocks of the core)."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from gateway.adapter import AdapterBase, Host, RateLimit
from gateway.app import Gateway
from gateway.config import Config, parse_config
from gateway.errors import PermanentFailure
from gateway.events import Attachment, Delivery, FileData, Inbound, Receipt, Sender
from storage import Conversation, Database, Message, OutboxRow, OutboxStatus
from storage.migrate import upgrade

#: how long a test waits for a condition before it calls it missed: a safety limit
#: only (a passing test returns as soon as the condition holds), generous enough for
#: a loaded 2-core CI machine running the suite's workers side by side
SAFETY_SECONDS = 120.0

#: each channel's section with its operators' workspace, secrets from the environment
#: (``CHANNEL_SECRETS`` gives them values)
TELEGRAM = '[telegram]\ntoken = "${TELEGRAM_TOKEN}"\n'
TELEGRAM_GROUP = TELEGRAM + "workspace_chat_id = -1001234567890\n"
SLACK_CHANNEL = (
    '[slack]\nbot_token = "${SLACK_BOT_TOKEN}"\napp_token = "${SLACK_APP_TOKEN}"\n'
    'workspace_channel = "C0123456789"\n'
)
EMAIL = (
    '[email]\naddress = "support@example.com"\nimap_host = "imap.example.com"\n'
    'imap_user = "support"\nimap_password = "${EMAIL_PASSWORD}"\nsmtp_host = "smtp.example.com"\n'
)
CHANNEL_SECRETS = {
    "TELEGRAM_TOKEN": "123:abc",
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_APP_TOKEN": "xapp-1-abc",
    "EMAIL_PASSWORD": "pw",
}

#: the project's root: where `python -m gateway` runs from in the CLI tests
ROOT = Path(__file__).resolve().parents[1]


def gateway_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS...` as an admin runs it: its own process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=SAFETY_SECONDS,
        env=env,
        cwd=ROOT,
    )


CONFIG_TEMPLATE = """
[gateway]
database_url = "{database_url}"
http_port = 0
# tests act on deadlines themselves (Core.run_due), after moving the clock
tick_seconds = {tick_seconds}

[routing]
strategy = "{strategy}"
default_max_chats = {max_chats}
sticky_hours = {sticky_hours}
reopen_hours = {reopen_hours}
match_language = {match_language}

[outbox]
base_delay_seconds = 0.01
max_delay_seconds = 0.05
max_attempts = {max_attempts}

[texts]
greeting = "Hello!"
queued = "You are number {{position}} in line."
assigned = "{{operator}} will help you."
away = "Nobody is online."
closed = "Closed, thanks!"
transferred = "{{operator}} takes over."
"""

OPERATOR = """
[[operators]]
id = "{id}"
name = "{name}"
telegram_id = {telegram_id}
slack_id = "U{slack}"
languages = {languages}
"""


def config_text(
    database_url: str,
    operators: Sequence[str] = ("anna", "boris"),
    *,
    strategy: str = "least_busy",
    max_chats: int = 2,
    sticky_hours: float = 72,
    reopen_hours: float = 24,
    match_language: bool = False,
    max_attempts: int = 5,
    languages: dict[str, list[str]] | None = None,
    extra: str = "",
    tick_seconds: float = 3600,
) -> str:
    text = CONFIG_TEMPLATE.format(
        database_url=database_url,
        tick_seconds=tick_seconds,
        strategy=strategy,
        max_chats=max_chats,
        sticky_hours=sticky_hours,
        reopen_hours=reopen_hours,
        match_language=str(match_language).lower(),
        max_attempts=max_attempts,
    )
    for number, op in enumerate(operators, start=1):
        langs = (languages or {}).get(op, [])
        text += OPERATOR.format(
            id=op,
            name=op.capitalize(),
            telegram_id=1000 + number,
            slack=op.upper(),
            languages=langs,
        ).replace("'", '"')
    return text + extra


def make_config(
    database_url: str, operators: Sequence[str] = ("anna", "boris"), **options: Any
) -> Config:
    return parse_config(config_text(database_url, operators, **options))


def operator_tg(config: Config, operator_id: str, channel: str = "telegram") -> str:
    op = config.operator(operator_id)
    assert op is not None
    identity = op.identity(channel)
    assert identity is not None
    return identity


@dataclass
class Failure:
    """What the recording adapter should do instead of delivering, once per entry."""

    make: Callable[[], Exception]
    times: int = 1


@dataclass
class RecordingAdapter(AdapterBase):
    """A channel that records every delivery instead of calling a platform.

    It plays both sides, as the Telegram adapter does: customers write to it in
    private chats, and (with ``serves_workspace``) it hosts the operators' threads.
    """

    name: str = "telegram"
    serves_workspace: bool = True
    rate_limits: Sequence[RateLimit] = ()
    max_batch: int = 1
    #: a thread's opening header may carry the messages queued behind it
    opens_with_messages: bool = False
    #: deliveries carry the conversation's earlier refs, as email's do
    wants_history: bool = True
    #: when set, deliveries to the workspace wait for it (a stalled group)
    gate: asyncio.Event | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    host: Host | None = None
    #: what ``fetch`` gives for a file_ref: files its customers "sent"
    files: dict[str, bytes] = field(default_factory=dict)
    #: the threads where a customer's typing was shown
    typed: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _events: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self, host: Host) -> None:
        self.host = host

    async def stop(self) -> None:
        self.host = None

    def cost(self, delivery: Delivery) -> int:
        return 1

    async def fetch(self, attachment: Attachment) -> FileData:
        data = self.files.get(attachment.file_ref)
        if data is None:
            raise PermanentFailure(f"{self.name} no longer has {attachment.file_ref}")
        return FileData(attachment.name or attachment.file_ref, attachment.mime or "", data)

    async def show_typing(self, thread_ref: str) -> None:
        self.typed.append(thread_ref)

    def fail(self, chat: str, make: Callable[[], Exception], times: int = 1) -> None:
        """Fail deliveries to a customer chat (or "workspace") ``times`` times; with
        "carried", hand back the messages the next opening header carries."""
        self.failures.setdefault(chat, []).append(Failure(make, times))

    async def deliver(self, delivery: Delivery) -> Receipt:
        await asyncio.sleep(0)
        out = delivery.outbound
        if self.gate is not None and out.audience == "workspace":
            await self.gate.wait()
        target = out.chat_id if out.audience == "customer" else "workspace"
        queue = self.failures.get(target or "")
        if queue:
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            raise failure.make()
        self.deliveries.append(delivery)
        if out.kind == "header" and delivery.thread_ref is None:
            carried = self.failures.get("carried")
            if carried and delivery.more:
                # the messages it carries could not be posted: each goes on its own
                carried.pop(0)
                more = tuple(Receipt(extra={"handed_back": "refused"}) for _ in delivery.more)
            else:
                more = tuple(
                    Receipt(external_ids=(str(next(self._ids)),), chat_id="group")
                    for _ in delivery.more
                )
            return Receipt(
                thread_ref=f"T{out.conversation_id}",
                header_ref=f"H{out.conversation_id}",
                more=more,
            )
        chat = out.chat_id or "group"
        return Receipt(
            external_ids=(str(next(self._ids)),),
            chat_id=chat,
            more=tuple(
                Receipt(external_ids=(str(next(self._ids)),), chat_id=chat) for _ in delivery.more
            ),
        )

    # -- what a test reads -----------------------------------------------------------

    def to_customer(self, chat_id: str) -> list[str]:
        return [
            d.outbound.text
            for d in self.deliveries
            if d.outbound.audience == "customer"
            and d.outbound.chat_id == chat_id
            and d.outbound.kind == "message"
        ]

    def notes(self, conversation_id: int) -> list[tuple[str, tuple[str, ...]]]:
        """System messages in the thread, with the operators each one mentions."""
        return [
            (d.outbound.text, d.outbound.mentions)
            for d in self.in_thread(conversation_id)
            if d.outbound.author_role == "system" and d.outbound.kind == "message"
        ]

    def in_thread(self, conversation_id: int) -> list[Delivery]:
        """Deliveries to the thread, a coalesced one counted for each message it carried."""
        return [
            part
            for d in self.deliveries
            if d.outbound.audience == "workspace" and d.outbound.conversation_id == conversation_id
            for part in (d, *d.more)
        ]

    # -- what a test makes people do ---------------------------------------------------

    def customer_says(
        self,
        user: str,
        text: str,
        *,
        name: str | None = None,
        language: str | None = None,
        message_id: str | None = None,
        event_id: str | None = None,
        edit_of: str | None = None,
    ) -> Inbound:
        number = next(self._events)
        return Inbound(
            channel=self.name,
            event_id=event_id or f"ev{number}",
            chat_id=f"chat-{user}",
            sender=Sender(
                external_id=user,
                display_name=name or user.capitalize(),
                username=user,
                language=language,
            ),
            text=text,
            message_id=message_id or f"m{number}",
            edit_of=edit_of,
        )

    def operator_says(
        self,
        operator_tg_id: str,
        conversation_id: int,
        text: str,
        *,
        message_id: str | None = None,
        event_id: str | None = None,
        edit_of: str | None = None,
    ) -> Inbound:
        number = next(self._events)
        return Inbound(
            channel=self.name,
            event_id=event_id or f"ev{number}",
            chat_id="group",
            sender=Sender(external_id=operator_tg_id, display_name="op"),
            text=text,
            message_id=message_id or f"w{number}",
            workspace_thread=f"T{conversation_id}",
            edit_of=edit_of,
        )


async def migrate(database_url: str) -> None:
    """What an admin does before the first start on PostgreSQL: `gateway migrate`."""
    db = Database(database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


@asynccontextmanager
async def running(config: Config, *adapters: RecordingAdapter) -> AsyncIterator[Gateway]:
    await migrate(config.gateway.database_url)
    gateway = Gateway(config, plugins={}, adapters=list(adapters), serve_http=False)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def settle(
    gateway: Gateway, limit: float = SAFETY_SECONDS, only: tuple[str, ...] = ()
) -> None:
    """Wait until every delivery the gateway could make has been made (``only``: to
    those destinations).

    The limit only keeps a broken test from hanging; nothing here measures speed.
    """
    destinations = list(only or gateway.workers)
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        async with gateway.repository.transaction() as tx:
            result = await tx.session.exec(
                select(OutboxRow.id).where(
                    col(OutboxRow.destination).in_(destinations),
                    col(OutboxRow.status).in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
                )
            )
            busy = result.first() is not None
        if not busy:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("deliveries still pending after the test's safety timeout")
        await asyncio.sleep(0.01)


async def conversation(gateway: Gateway, conversation_id: int) -> Conversation:
    async with gateway.repository.transaction() as tx:
        found = await tx.conversation(conversation_id)
    assert found is not None
    return found


async def messages(gateway: Gateway, conversation_id: int) -> list[Message]:
    async with gateway.repository.transaction() as tx:
        return list(await tx.messages(conversation_id))


async def all_conversations(gateway: Gateway) -> list[Conversation]:
    async with gateway.repository.transaction() as tx:
        result = await tx.session.exec(select(Conversation).order_by(col(Conversation.id)))
        return list(result.all())


async def operator_writes(
    gateway: Gateway, channel: RecordingAdapter, operator_id: str, conversation_id: int, text: str
):
    """An operator writes in the conversation's thread, once the thread exists."""
    await settle(gateway)
    identity = operator_tg(gateway.config, operator_id, channel.name)
    return await gateway.core.ingest(channel.operator_says(identity, conversation_id, text))
