"""SQLModel tables for the conversation model of DESIGN.md.

Operators themselves live in config.toml (admins edit them there); the database keeps
only what changes at run time about them (presence, last assignment), keyed by the
operator id from the config.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Column, Index, String, Table, UniqueConstraint, text
from sqlalchemy.orm import relationship
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class ConversationStatus(StrEnum):
    NEW = "new"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    WAITING_CUSTOMER = "waiting_customer"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    CLOSED = "closed"


#: Statuses in which a conversation occupies its assignee's capacity.
ACTIVE_STATUSES = (
    ConversationStatus.ASSIGNED,
    ConversationStatus.WAITING_CUSTOMER,
    ConversationStatus.SNOOZED,
)
FINISHED_STATUSES = (ConversationStatus.RESOLVED, ConversationStatus.CLOSED)


class Direction(StrEnum):
    IN = "in"  # from the customer
    OUT = "out"  # from an operator to the customer
    NOTE = "note"  # internal, operators only
    AUTO = "auto"  # automatic text to the customer (greeting, queue position, FAQ)
    SYSTEM = "system"  # events shown to operators (claimed, transferred, failed delivery)
    #: an operator's reply held back: it came while the assignee was at work on the
    #: conversation (``gateway.collisions``); sent, or not, as its writer decides
    HELD = "held"


class Priority(IntEnum):
    NORMAL = 0
    HIGH = 1
    URGENT = 2


class Presence(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


def _factory(make: Callable[[], Any]) -> Callable[[], Any]:
    """A default factory whose signature is given, not looked up.

    Pydantic asks ``inspect.signature`` of every default factory on every construction
    (does it take the validated data?); for ``list`` that parses a text signature: it
    was two thirds of building a Conversation (280 us -> 110 us).
    """

    def factory() -> Any:
        return make()

    factory.__signature__ = inspect.Signature()  # type: ignore[attr-defined]
    return factory


_now = _factory(utcnow)
_list = _factory(list)
_dict = _factory(dict)


def _ts(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=256)
    language: str | None = Field(default=None, max_length=16)
    blocked: bool = False
    created_at: datetime = _ts(default_factory=_now)


class CustomerIdentity(SQLModel, table=True):
    """One way to reach a customer: a Telegram user id, a Slack user id, an address."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=320)
    username: str | None = Field(default=None, max_length=256)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_customer_chat", "customer_id", "channel", "chat_id"),
        # the queue: most urgent first, then oldest (``Transaction.queue``)
        Index("ix_conversations_queue", "status", "priority", "queued_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    channel: str = Field(max_length=32)
    #: where replies go on the origin channel (a private chat, a DM, an address)
    chat_id: str = Field(max_length=320)
    status: ConversationStatus = Field(default=ConversationStatus.NEW, sa_type=String(24))
    assignee_id: str | None = Field(default=None, max_length=64, index=True)
    language: str | None = Field(default=None, max_length=16)
    #: the language was read from the customer's own words (not guessed from their
    #: app's setting or the desk's default): later messages no longer change it
    language_sure: bool = False
    #: what the customer called it, where the channel has subjects (email)
    subject: str | None = Field(default=None, max_length=512)
    tags: list[str] = Field(default_factory=_list, sa_column=Column(JSON, nullable=False))
    #: ``Priority``: higher goes first in the queue
    priority: int = 0
    #: FAQ entries last offered to the customer as numbered suggestions, in order
    offered: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _ts(default_factory=_now)
    updated_at: datetime = _ts(default_factory=_now)
    queued_at: datetime | None = _ts(default=None)
    assigned_at: datetime | None = _ts(default=None)
    first_response_at: datetime | None = _ts(default=None)
    last_customer_message_at: datetime | None = _ts(default=None)
    resolved_at: datetime | None = _ts(default=None)
    #: since when the customer has waited for an answer (their first message after
    #: the last operator reply); None while it is the customer's turn
    awaiting_since: datetime | None = _ts(default=None)
    #: an operator's last reply: a conversation waiting on the customer closes
    #: itself some hours after it
    last_reply_at: datetime | None = _ts(default=None)
    #: what the deadlines did for the current wait (reminder, breach, "still on it")
    reminded_at: datetime | None = _ts(default=None)
    escalated_at: datetime | None = _ts(default=None)
    nudged_at: datetime | None = _ts(default=None)
    snoozed_until: datetime | None = _ts(default=None)
    csat_asked_at: datetime | None = _ts(default=None)
    csat_rated_at: datetime | None = _ts(default=None)
    csat_score: int | None = None
    csat_comment: str | None = None
    #: whom the report credits: the operator whose reply was the first the customer
    #: received, who closed it (None: closed by itself or by the FAQ), and who had
    #: it when it was closed (the rating is theirs)
    first_responder_id: str | None = Field(default=None, max_length=64)
    resolved_by_id: str | None = Field(default=None, max_length=64)
    csat_operator_id: str | None = Field(default=None, max_length=64)


class WorkspaceThread(SQLModel, table=True):
    """Where a conversation lives in one workspace: a forum topic, a Slack thread."""

    __tablename__ = "workspace_threads"
    __table_args__ = (
        UniqueConstraint("conversation_id", "workspace", name="uq_thread_conversation"),
        UniqueConstraint("workspace", "thread_ref", name="uq_thread_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    workspace: str = Field(max_length=32)
    thread_ref: str = Field(max_length=128)
    header_ref: str | None = Field(default=None, max_length=128)
    #: what the header shows now, so that a refresh that changes nothing is skipped
    header_card: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class Message(SQLModel, table=True):
    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    direction: Direction = Field(sa_type=String(8))
    #: operator id for out/note, customer id for in, None for auto/system
    author_id: str | None = Field(default=None, max_length=64)
    author_name: str | None = Field(default=None, max_length=256)
    text: str = ""
    attachments: list[dict[str, Any]] = Field(
        default_factory=_list, sa_column=Column(JSON, nullable=False)
    )
    #: the answers offered with it, as (reply, label): a rating's stars, an FAQ's
    #: "did it help" (a channel that draws its own history shows them again)
    choices: list[list[str]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    reply_to_id: int | None = Field(default=None, foreign_key="messages.id")
    created_at: datetime = _ts(default_factory=_now)
    edited_at: datetime | None = _ts(default=None)
    deleted_at: datetime | None = _ts(default=None)


class MessageRef(SQLModel, table=True):
    """The id a message has in one place (the customer's chat, a topic, a thread).

    Kept for every copy so that edits, deletes and replies can follow a message to
    wherever it was relayed.
    """

    __tablename__ = "message_refs"
    __table_args__ = (
        UniqueConstraint("place", "chat_id", "external_id", name="uq_message_ref"),
        # a message's refs in one place and side (``Transaction.refs_of``): with the
        # message id alone, SQLite preferred the unique index's ``place`` prefix and
        # read every ref of the place (0.5 ms at 5,000 refs, growing with them)
        Index("ix_message_refs_message", "message_id", "place", "side"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id")
    place: str = Field(max_length=32)
    #: "customer" or "workspace": one platform can host both sides
    side: str = Field(max_length=16)
    chat_id: str = Field(max_length=320)
    external_id: str = Field(max_length=256)


class OperatorState(SQLModel, table=True):
    __tablename__ = "operator_states"

    operator_id: str = Field(primary_key=True, max_length=64)
    presence: Presence = Field(default=Presence.OFFLINE, sa_type=String(8))
    presence_changed_at: datetime = _ts(default_factory=_now)
    last_assigned_at: datetime | None = _ts(default=None)


class InboundEvent(SQLModel, table=True):
    """A platform event already committed: the dedupe key for retries and restarts."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "event_id", name="uq_inbound_event"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    event_id: str = Field(max_length=256)
    conversation_id: int | None = None
    message_id: int | None = None
    received_at: datetime = _ts(default_factory=_now)


#: the outbox rows still to deliver, as SQL: literal, so that the planner can tell a
#: query that says it may use the partial index ``ix_outbox_live``
LIVE_OUTBOX = "status IN ('pending', 'sending')"
#: how the chat keys of deliveries to customers begin (``gateway.relay.chat_key``):
#: a claim looks at those first, so a customer never waits behind the workspace
CUSTOMER_CHAT_KEY = "chat:"


class OutboxRow(SQLModel, table=True):
    """One delivery to make. Written in the same transaction as what caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "destination", "status", "next_attempt_at"),
        # only the rows still to deliver (a few, while the sent ones only grow), in
        # order per chat: a claim reads each chat's first of them here, and the
        # rows behind it (``Transaction.claim_outbox``, ``claim_followers``)
        Index(
            "ix_outbox_live",
            "destination",
            "chat_key",
            "id",
            sqlite_where=text(LIVE_OUTBOX),
            postgresql_where=text(LIVE_OUTBOX),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    destination: str = Field(max_length=32)
    #: deliveries with the same key go out strictly in order
    chat_key: str = Field(max_length=400)
    conversation_id: int | None = Field(default=None, index=True)
    message_id: int | None = None
    kind: str = Field(max_length=16)
    payload: dict[str, Any] = Field(default_factory=_dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str = Field(max_length=400, unique=True)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(8))
    attempts: int = 0
    next_attempt_at: datetime = _ts(default_factory=_now)
    lease_until: datetime | None = _ts(default=None)
    last_error: str | None = None
    receipt: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _ts(default_factory=_now)
    sent_at: datetime | None = _ts(default=None)


@dataclass(slots=True)
class QueuedRow:
    """An outbox row as a claim reads it: the columns a delivery needs, not an ORM
    object. A claim reads dozens of rows at a time and changes none through the
    session (its marks are one UPDATE): building an entity cost about twice what
    reading the row did."""

    id: int
    destination: str
    chat_key: str
    conversation_id: int | None
    message_id: int | None
    kind: str
    payload: dict[str, Any]
    dedupe_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None


#: the outbox's columns a claim reads, in ``QueuedRow``'s order
QUEUED_COLUMNS = tuple(field.name for field in fields(QueuedRow))


class Deadline(SQLModel, table=True):
    """Something that must happen to a conversation, and when (SLA, auto-close,
    snooze, opening time). Only pending ones exist: acting on one deletes it, in
    the same transaction, so each is acted on once whatever the number of processes."""

    __tablename__ = "deadlines"
    __table_args__ = (UniqueConstraint("conversation_id", "kind", name="uq_deadline_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    kind: str = Field(max_length=32)
    due_at: datetime = _ts(index=True)


class SlaBreach(SQLModel, table=True):
    """A response deadline missed: who had the conversation, which target, when."""

    __tablename__ = "sla_breaches"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    #: "first" (the first answer) or "next" (a later one)
    target: str = Field(max_length=8)
    operator_id: str | None = Field(default=None, max_length=64)
    due_at: datetime = _ts()
    breached_at: datetime = _ts(default_factory=_now, index=True)


class RoleHolder(SQLModel, table=True):
    """Which process holds a role only one may have (Telegram polling, reading the
    IMAP mailbox), for ``gateway status`` and the logs. The lock decides who holds
    it (``storage.leadership``); this row only tells: the holder writes it when it
    takes the role, refreshes ``seen_at`` while it holds it, and deletes it when it
    gives the role back."""

    __tablename__ = "role_holders"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    since: datetime = _ts(default_factory=_now)
    seen_at: datetime = _ts(default_factory=_now)


class AuditEvent(SQLModel, table=True):
    """Who did what, when: every operator action, config reload, export and erase.
    It names conversations and customers by number only, never what they wrote, so
    an erase leaves it as it is."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(default_factory=_now, index=True)
    #: an operator's id, or who ran a command ("admin:<login>"), or "config"
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)
    conversation_id: int | None = None
    customer_id: int | None = None
    #: what the action was given (a colleague's id, a duration, a tag), short
    detail: str = Field(default="", max_length=500)


class ChatState(SQLModel, table=True):
    """What a channel keeps about one of its chats beyond the conversation model: a
    web visitor's token digest, the address they left, their verified user id. An
    erase removes it with the customer's identities."""

    __tablename__ = "chat_states"

    channel: str = Field(primary_key=True, max_length=32)
    chat_id: str = Field(primary_key=True, max_length=320)
    data: dict[str, Any] = Field(default_factory=_dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _ts(default_factory=_now)


def _flushed_after(child: type, parent: type) -> None:
    """Have the session's flush write ``parent``'s new rows before ``child``'s.

    New customers and conversations take their ids before they are written
    (``Transaction.new_id``), and a batch's are flushed together; SQLAlchemy orders
    the INSERTs of different tables only by their relationships, not by foreign
    keys, so a conversation could go in before its customer. The relationship is
    there for that order alone: it is never loaded (``lazy="raise"``) nor set.
    """
    child.__mapper__.add_property(  # type: ignore[attr-defined]
        f"_flush_after_{parent.__tablename__}",  # type: ignore[attr-defined]
        relationship(parent, lazy="raise"),
    )


_flushed_after(CustomerIdentity, Customer)
_flushed_after(Conversation, Customer)
_flushed_after(WorkspaceThread, Conversation)
_flushed_after(SlaBreach, Conversation)


M = TypeVar("M", bound=SQLModel)

#: per table model: (field, default, default factory) for every field
_DEFAULTS: dict[type, tuple[tuple[str, Any, Callable[[], Any] | None], ...]] = {}


def build(model: type[M], **values: Any) -> M:
    """A new row object, made the way SQLAlchemy makes the ones it loads.

    SQLModel's constructor sets each field through pydantic's and SQLAlchemy's
    attribute hooks: 170 µs for a Conversation (27 fields), 45 µs for a Message,
    together a seventh of ingest's CPU. It does not validate table models either, so
    nothing is lost by writing the values and the fields' defaults straight into
    the new instance's dict, as the ORM's loading does; the session inserts them
    like any new object's, and later changes are tracked as usual."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        defaults = _DEFAULTS[model] = tuple(
            # a field without a default is None until set, as after the constructor
            (name, None if field.is_required() else field.default, field.default_factory)  # type: ignore[misc]
            for name, field in model.model_fields.items()
        )
    unknown = values.keys() - model.model_fields.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    instance = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    state = instance.__dict__
    for name, default, factory in defaults:
        if name in values:
            state[name] = values[name]
        else:
            state[name] = factory() if factory is not None else default
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    return instance


def table(model: type[SQLModel]) -> Table:
    """A model's table: SQLModel sets ``__table__`` on each table model at run time,
    and its type does not declare it."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]
