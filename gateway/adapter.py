"""The contract between the core and a channel adapter.

An adapter is a plain class satisfying ``Adapter``; its module in ``adapters/``
exposes a ``PLUGIN`` (a ``ChannelPlugin``) that names its config section and builds
it. The composition root finds plugins by scanning the ``adapters`` package, so a
new channel is one new module and nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from gateway.ratelimit import Limiter

from gateway.events import (
    ActionResult,
    Attachment,
    Delivery,
    DeskState,
    FileData,
    Inbound,
    IngestResult,
    OperatorCommand,
    Outbound,
    Receipt,
    Said,
)
from gateway.roles import Held

log = logging.getLogger(__name__)


class UnrecordedThreads:
    """Threads (topics) this process opened whose record has not committed yet.

    A thread is recorded the moment the platform has made it (``record``). When that
    fails (the database out of reach), its record commits only with the delivery's
    outcome: an operator quick enough to answer or press a button in between would
    meet "no conversation" and lose the reply. Events in such a thread wait here (a
    while at most) instead; the outbox worker calls ``recorded`` once the record has
    committed.
    """

    #: how long an event waits for its thread's record
    WAIT_SECONDS = 10.0

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}

    def opened(self, thread_ref: str) -> None:
        self._waiting[thread_ref] = asyncio.Event()

    async def record(
        self,
        host: Host,
        workspace: str,
        conversation_id: int,
        thread_ref: str,
        header_ref: str | None = None,
    ) -> None:
        """Have a thread the platform has just made recorded before anything is
        posted in it (``Host.thread_opened``), so that a crash before the delivery's
        outcome commits never opens a second one; unrecorded, it waits here."""
        try:
            await host.thread_opened(workspace, conversation_id, thread_ref, header_ref)
        except Exception as exc:
            log.warning("%s: thread %s opened, not recorded yet: %s", workspace, thread_ref, exc)
            self.opened(thread_ref)

    def recorded(self, receipt: Receipt) -> None:
        waiting = self._waiting.pop(receipt.thread_ref or "", None)
        if waiting is not None:
            waiting.set()

    async def known(self, thread_ref: str | None) -> None:
        """Return once the thread is recorded (or was never waited for)."""
        waiting = self._waiting.get(thread_ref or "")
        if waiting is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), self.WAIT_SECONDS)
            self._waiting.pop(thread_ref or "", None)


@dataclass(frozen=True)
class RateLimit:
    """A platform ceiling: at most ``rate`` sends per ``per_seconds`` for each key.

    ``key`` maps a delivery to the bucket it draws from (its chat, its group, or a
    constant for a bot-wide limit); ``None`` means the limit does not apply to it.
    ``burst`` lets a quiet bucket send that many at once before the rate applies.
    ``serial``: one call at a time per key, so a 429 answered to one call reaches the
    limiter before the next call goes (calls already in flight cannot be recalled,
    and a platform counts each of them as a request before its retry_after). Where
    the rate lets more than one call go in the time a call takes, as many as that
    (``ratelimit.serial_width``): one at a time would cap the key at one call per
    round trip, below the rate configured for it.
    ``scope``: which 429s (``RateLimited.scope``) drain its bucket. ``"chat"``: a
    429 answered to a delivery that draws from it. ``"destination"``: only a 429 for
    the whole bot, for a bot-wide limit beside narrower ones (Telegram's 30 a second
    over every chat): a chat's 429 speaks for that chat, not for the others.
    ``window``: counted as at most ``rate`` calls in any ``per_seconds`` (a sliding
    window, as Telegram counts a group's 20 a minute) rather than as a bucket of
    ``burst`` refilling at ``rate`` (``ratecount``).
    """

    name: str
    rate: float
    per_seconds: float
    key: Callable[[Delivery], str | None]
    burst: int = 1
    serial: bool = False
    scope: str = "chat"
    window: bool = False


class Host(Protocol):
    """What the core offers an adapter once it is started."""

    async def ingest(self, inbound: Inbound) -> IngestResult: ...

    async def act(self, command: OperatorCommand) -> ActionResult: ...

    def commands(self) -> list[tuple[str, str]]:
        """Every operator action once, by name, with its help: for a platform's
        command menu, so that it lists what ``act`` takes and nothing else."""
        ...

    def add_route(
        self, method: str, path: str, handler: Callable[[Any], Awaitable[Any]]
    ) -> None: ...

    def role(self, name: str) -> AbstractAsyncContextManager[Held]:
        """Hold ``name``, a role only one gateway process may have at a time
        (``gateway.roles``): entering waits until this process has it (raising
        ``ShuttingDown`` if the gateway stops first); ``Held.lost`` is set when the
        holder must stop acting on it."""
        ...

    async def thread_opened(
        self, workspace: str, conversation_id: int, thread_ref: str, header_ref: str | None = None
    ) -> None:
        """Record at once a thread (a topic, a card's thread) the platform has just
        made for a conversation, before anything else is posted in it. The
        delivery's outcome commits later: a crash in between would otherwise open a
        second thread on restart (the platforms cannot list what a bot opened).
        Raises when it cannot be recorded; the adapter then goes on as before."""

    async def set_aside(self, channel: str, key: str, *, check: bool = False) -> bool:
        """An item a channel gave up on (an update that always fails), kept so:
        ``check`` asks whether ``key`` was set aside before (by this process or one
        before a restart) and records nothing; else it records it. An item set aside
        stays so: fetched again, it is skipped at its first failure."""

    async def transcript(
        self,
        channel: str,
        chat_id: str,
        *,
        after: int = 0,
        changed_since: datetime | None = None,
        limit: int = 200,
    ) -> list[Said]:
        """What the customer of ``chat_id`` on ``channel`` sees of their
        conversations, for a channel that shows its history itself (web chat): the
        last ``limit`` messages, or the first ``limit`` after the message id
        ``after`` (and any edited or deleted since ``changed_since``), oldest first."""
        ...

    async def forward(
        self, outbound: Outbound, channel: str, chat_id: str, *, delay_seconds: float = 0
    ) -> str | None:
        """Queue a copy of a message to its customer on another channel, at an
        address they gave (a web visitor gone from the page, by email), once (its
        message's id makes the key), not before ``delay_seconds``. A reply from
        there continues the conversation: the address becomes the customer's, unless
        it is someone else's already. None when queued; else why not."""
        ...

    async def describe_customer(
        self, channel: str, chat_id: str, *, name: str | None, note: str
    ) -> bool:
        """What a customer told the channel about themselves (a web visitor's name
        and address): ``name`` becomes their name, and ``note`` is posted for the
        operators in their latest conversation. False when they have none yet."""
        ...

    async def typing(self, channel: str, chat_id: str) -> bool:
        """The customer of ``chat_id`` is typing: shown in their open conversation's
        threads where the workspace can show it. False when they have no open
        conversation with a thread (nothing was shown)."""
        ...

    async def desk_state(self, language: str | None) -> DeskState:
        """Whether anyone can answer now, and when the desk opens (in ``language``)."""
        ...

    async def latest_message_id(self) -> int | None:
        """The newest message's id, where a channel reads what other gateway
        processes delivered (``shown_since``) from; None when no other process can
        deliver (one process on a SQLite file)."""
        ...

    async def shown_since(self, channel: str, after: int) -> list[tuple[str, Said]]:
        """Messages customers see on ``channel`` past the message id ``after``, each
        with its chat, oldest first: what another gateway process may have delivered
        (for a channel that pushes to connections it holds itself)."""
        ...

    async def message_files(self, message_ids: list[int]) -> dict[int, list[str]]:
        """The file references these messages still carry, for a channel that keeps
        its customers' files itself: a file no message carries any more (erased,
        past retention) is its to delete."""
        ...

    async def chat_state(self, channel: str, chat_id: str) -> dict[str, Any] | None:
        """What the channel kept about the chat (``keep_chat_state``), if anything."""
        ...

    async def keep_chat_state(self, channel: str, chat_id: str, data: dict[str, Any]) -> None:
        """Keep ``data`` about a chat (a visitor's token digest, the address they
        left), committed when this returns; an erase of its customer removes it."""
        ...

    async def fetch(self, attachment: Attachment) -> FileData:
        """The bytes of a file another channel received (``attachment.origin``), so
        that this one can upload it. Raises ``PermanentFailure`` when it cannot be had
        (too big for the origin's bot API, gone, no such channel configured)."""


@runtime_checkable
class Adapter(Protocol):
    name: str
    #: True when this adapter hosts the operators' workspace (topics, threads)
    serves_workspace: bool
    rate_limits: Sequence[RateLimit]
    #: how many deliveries to one thread may be coalesced into one (1: never)
    max_batch: int
    #: deliveries to customers carry the refs of the conversation's earlier messages
    #: (``Delivery.history``), for a platform that threads replies by them (email)
    wants_history: bool
    #: the most deliveries the platform should see at once from us, whatever
    #: ``[outbox] concurrency`` says (a mail relay counts connections per client)
    max_in_flight: int | None
    #: the header delivery that opens a conversation's thread may carry the messages
    #: queued behind it (``Delivery.more``), posted in the new thread once it exists;
    #: a receipt in its ``more`` with ``extra["handed_back"]`` (a reason) puts that
    #: message's row back in the queue, to be sent on its own
    opens_with_messages: bool
    #: the adapter paces each of its own calls through ``limiter`` (its calls outside
    #: deliveries, answers to commands, count in the same counters); None: the outbox
    #: makes one from ``rate_limits``
    paces_calls: bool
    limiter: Limiter | None

    async def start(self, host: Host) -> None:
        """Connect and begin intake. Acknowledge platform events only after
        ``host.ingest`` has returned (it returns once the event is committed)."""

    async def stop(self) -> None:
        """Stop intake and close connections."""

    def cost(self, delivery: Delivery) -> int:
        """How many platform calls ``deliver`` will make: what the rate limiter charges."""

    async def deliver(self, delivery: Delivery) -> Receipt:
        """Send one delivery. Raise ``TemporaryFailure``/``RateLimited`` to be
        retried, ``PermanentFailure`` when retrying cannot help."""

    async def fetch(self, attachment: Attachment) -> FileData:
        """Download a file this channel received (its ``file_ref``), for another
        channel to upload. ``PermanentFailure`` names why it cannot be had."""

    async def readiness(self) -> str | None:
        """None when the platform's events reach us; otherwise why not (/readyz)."""

    def recorded(self, receipt: Receipt) -> None:
        """A delivery's receipt has been committed: a thread it opened can be found."""

    def thread_link(self, thread_ref: str) -> str | None:
        """A link that opens a conversation's thread in this workspace, if the
        platform has one (``/history`` lists them)."""

    async def show_typing(self, thread_ref: str) -> None:
        """Show in a conversation's thread that its customer is typing, where the
        platform lets a bot (a Telegram chat action): a moment's sign, never
        queued or retried."""


class AdapterBase:
    """What an adapter may leave out of ``Adapter``, and what leaving it out means.
    Adapters inherit it, so the outbox and the health check read every part as an
    attribute."""

    serves_workspace: bool = False
    rate_limits: Sequence[RateLimit] = ()
    max_batch: int = 1
    wants_history: bool = False
    max_in_flight: int | None = None
    opens_with_messages: bool = False
    paces_calls: bool = False
    limiter: Limiter | None = None

    async def readiness(self) -> str | None:
        return None

    def recorded(self, receipt: Receipt) -> None:
        return None

    def thread_link(self, thread_ref: str) -> str | None:
        return None

    async def show_typing(self, thread_ref: str) -> None:
        return None


@dataclass(frozen=True)
class ChannelPlugin:
    """How the composition root learns about a channel adapter.

    ``adapter`` names the class as ``"module:Class"``: it is imported only when the
    channel is configured and started, so a command that reads the config or the
    database (check-config, status, report) never loads a platform SDK (aiogram alone
    takes seconds to import).
    """

    name: str  # also the config section: [telegram], [slack], [email]
    config_model: type[BaseModel]
    adapter: str

    def create(self, section: BaseModel, config: Any) -> Adapter:
        """The adapter for its validated section and the whole (live) config."""
        module, _, attribute = self.adapter.partition(":")
        adapter_class = getattr(importlib.import_module(module), attribute)
        return adapter_class(section, config)
