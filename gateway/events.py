"""Domain events: plain frozen data crossing the line between adapters and core.

No platform type ever appears here. Ids from platforms are strings, whatever their
native type, so one column holds a Telegram integer and a Slack timestamp alike.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal

from gateway.errors import InvalidEvent

_SURROGATE = re.compile("[\ud800-\udfff]")

Audience = Literal["customer", "workspace"]
#: "erase": remove a conversation's thread from a workspace (its customer's data
#: was erased): the thread itself where the platform can (a Telegram topic), else
#: the app's messages in it (``Outbound.refs``)
OutboundKind = Literal["message", "edit", "delete", "header", "notice", "erase"]
#: which results of an operator's command are posted back where it was typed, as a
#: delivery (queued, paced and retried like any): none where the platform answers on
#: its own (a button's toast, a slash command's ack)
Answer = Literal["always", "failures", "never"]
#: "saved": an operator's saved reply, sent by the gateway in their name
AuthorRole = Literal["operator", "note", "bot", "system", "customer", "saved"]


@dataclass(frozen=True)
class Attachment:
    """A file as the core sees it: enough to relay it, never its bytes."""

    kind: str  # photo, document, voice, video, sticker, ...
    file_ref: str  # the platform's file id, or a storage key
    name: str | None = None
    mime: str | None = None
    size: int | None = None
    #: the channel whose ``file_ref`` this is: the adapter that can fetch its bytes
    origin: str | None = None


@dataclass(frozen=True)
class FileData:
    """A file's bytes, fetched from where it was sent so another platform can take it."""

    name: str
    mime: str
    data: bytes


@dataclass(frozen=True)
class Said:
    """One message of a customer's transcript, as their own channel shows it (a web
    visitor's history): theirs, an operator's reply, or an automatic text."""

    id: int
    conversation_id: int
    side: Literal["customer", "operator", "bot"]
    author_name: str | None
    text: str
    attachments: tuple[Attachment, ...]
    at: datetime
    edited: bool = False
    deleted: bool = False
    #: the answers offered with it, as (reply, label)
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DeskState:
    """Whether the desk can answer now, for a channel that says so before anyone
    writes (the web chat's header, its prompt for an address)."""

    open: bool  # inside business hours
    staffed: bool  # an operator is online and on shift
    free: bool  # one of them has room for another conversation
    #: when the desk opens next, in words in the asked language ("tomorrow at 09:00")
    opens: str | None = None


@dataclass(frozen=True)
class Sender:
    external_id: str
    display_name: str
    username: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Inbound:
    """One message or edit, from a customer or from an operator in the workspace.

    ``workspace_thread`` is set when the message was written in the operators'
    workspace (a forum topic, a Slack thread); it is how the core finds the
    conversation an operator is answering.
    """

    channel: str
    event_id: str  # unique per channel; the dedupe key
    chat_id: str
    sender: Sender
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    message_id: str | None = None
    #: further ids of the same message on the platform: the other parts of an album
    part_ids: tuple[str, ...] = ()
    #: the album (media group) this belongs to, when its parts may arrive one by one
    #: (Telegram webhooks): parts arriving close together join one message
    album: str | None = None
    reply_to: str | None = None
    edit_of: str | None = None
    #: the platform id of a message its author deleted (the event carries nothing else)
    delete_of: str | None = None
    workspace_thread: str | None = None
    sent_at: datetime | None = None  # the platform's time, when it gives one
    #: channels whose messages say which conversation they continue (email): the
    #: platform ids it replies to, and a conversation number from its subject. With
    #: ``explicit_threads``, a message matching neither opens a new conversation.
    thread_refs: tuple[str, ...] = ()
    conversation_token: int | None = None
    explicit_threads: bool = False
    subject: str | None = None
    #: a platform's report that our message with this id never arrived (a bounce);
    #: ``text`` says why
    failure_of: str | None = None
    #: sent by a machine (an auto-reply, a list, a bounce): stored and shown to
    #: operators, but never answered automatically, so two robots cannot loop
    automated: bool = False
    #: the platform lets the message be copied from where it was written (a
    #: Telegram invoice, story or checklist cannot be): else it is relayed as its text
    copyable: bool = True

    def __post_init__(self) -> None:
        # a lone surrogate (a broken client's emoji half) is valid JSON but no
        # database stores it: it becomes U+FFFD here, once for every channel
        for name in ("text", "chat_id", "event_id", "subject"):
            value = getattr(self, name)
            if value and _SURROGATE.search(value):
                object.__setattr__(self, name, _SURROGATE.sub("\ufffd", value))
        sender = self.sender
        if any(
            _SURROGATE.search(v or "")
            for v in (sender.display_name, sender.external_id, sender.username)
        ):
            object.__setattr__(
                self,
                "sender",
                replace(
                    sender,
                    external_id=_SURROGATE.sub("\ufffd", sender.external_id),
                    display_name=_SURROGATE.sub("\ufffd", sender.display_name),
                    username=_SURROGATE.sub("\ufffd", sender.username or "") or None,
                ),
            )
        # an adapter bug caught here names itself, instead of corrupting a conversation
        for name in ("channel", "event_id", "chat_id"):
            if not getattr(self, name):
                raise InvalidEvent(f"Inbound.{name} is empty")
        if not self.sender.external_id:
            raise InvalidEvent("Inbound.sender.external_id is empty")
        if not self.text and not self.attachments and not self.delete_of:
            raise InvalidEvent(
                "Inbound has neither text nor attachments (use a placeholder text for "
                "content that cannot be relayed)"
            )
        if self.sent_at is not None and self.sent_at.tzinfo is None:
            raise InvalidEvent("Inbound.sent_at must be timezone-aware")

    @property
    def from_workspace(self) -> bool:
        return self.workspace_thread is not None


@dataclass(frozen=True)
class OperatorCommand:
    """An operator action from the workspace: a command, a button press."""

    channel: str
    event_id: str
    operator_external_id: str
    name: str  # claim, close, reopen, transfer, note, online, away, offline, ...
    args: str = ""
    workspace_thread: str | None = None
    answer: Answer = "never"
    #: the conversation by its number, where the command was given outside its
    #: thread (a Slack slash command: ``/support reply refund #12``)
    conversation_id: int | None = None

    def answered(self, result: ActionResult) -> bool:
        """Whether a result is posted back (``answer``): a failure, or a lookup (a
        list, a history) whose answer is the point, where failures are."""
        return self.answer == "always" or (
            self.answer == "failures" and (not result.ok or result.lookup)
        )


@dataclass(frozen=True)
class ActionResult:
    """What an operator is told after an action (a toast, an ephemeral reply)."""

    ok: bool
    message: str
    conversation_id: int | None = None
    #: follow-up commands to offer as buttons, as (command, label): "reply:refund"
    #: runs ``/reply refund`` where the answer is shown
    choices: tuple[tuple[str, str], ...] = ()
    #: the answer is what was asked for (a list, a history): shown even where only
    #: failures are (``OperatorCommand.answered``)
    lookup: bool = False

    @classmethod
    def done(
        cls,
        message: str,
        conversation_id: int | None = None,
        choices: tuple[tuple[str, str], ...] = (),
    ) -> ActionResult:
        return cls(True, message, conversation_id, choices)

    @classmethod
    def refused(cls, message: str, conversation_id: int | None = None) -> ActionResult:
        return cls(False, message, conversation_id)


#: why a workspace message was not relayed (``IngestResult.ignored``), for adapters
#: that answer the writer
NOT_AN_OPERATOR = "the sender is not a configured operator"
#: what operators see of a customer's message a channel could not read (a newer
#: platform kind, a shape the adapter does not know): that the customer wrote
UNREADABLE_TEXT = "[a message this gateway cannot read; ask the customer to resend it]"
#: the tag of a conversation a robot opened (``Inbound.automated``): nothing
#: automatic answers it
ROBOT_TAG = "automated"
NO_CONVERSATION = "no conversation lives in this thread"


@dataclass(frozen=True)
class IngestResult:
    duplicate: bool
    conversation_id: int | None = None
    message_id: int | None = None
    ignored: str | None = None  # why nothing was stored, when nothing was

    @classmethod
    def stored(cls, conversation_id: int | None, message_id: int | None) -> IngestResult:
        """The event was stored: this message, in this conversation."""
        return cls(False, conversation_id, message_id)

    @classmethod
    def seen_before(cls, conversation_id: int | None, message_id: int | None) -> IngestResult:
        """The event was stored before (a platform's retry): nothing new."""
        return cls(True, conversation_id, message_id)

    @classmethod
    def ignoring(cls, reason: str) -> IngestResult:
        """Nothing stored, and why."""
        return cls(False, ignored=reason)


@dataclass(frozen=True)
class ConversationCard:
    """The workspace header of a conversation: who, where, what state."""

    conversation_id: int
    customer_name: str
    customer_username: str | None
    customer_external_id: str | None
    channel: str
    language: str | None
    status: str
    assignee_name: str | None
    tags: tuple[str, ...] = ()
    priority: str = "normal"
    #: the customer's earlier conversations: how many, and the last few as lines
    #: ("#5 2026-11-20 resolved · CSAT 4 · #vip")
    earlier_count: int = 0
    earlier: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outbound:
    """What the core wants delivered; stored as an outbox row before anything is sent."""

    destination: str  # the adapter's name
    audience: Audience
    kind: OutboundKind
    conversation_id: int
    chat_id: str | None = None  # the customer's chat; None for the workspace
    text: str = ""
    author_name: str | None = None
    author_role: AuthorRole = "bot"
    #: the operator who wrote it (their config id), where one did
    author_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    message_id: int | None = None  # our Message this carries
    card: ConversationCard | None = None
    #: answers the customer may pick with one tap, as (reply, label): a press comes
    #: back as a customer message whose text is the reply. Channels without buttons
    #: show the text alone, which already lists them by number.
    choices: tuple[tuple[str, str], ...] = ()
    #: operators (by id) to mention: the workspace notifies them, each in its own way
    mentions: tuple[str, ...] = ()
    #: the stored message (ours, by id) this one answers: shown as a reply there too
    reply_to: int | None = None
    #: a notice (the answer to an operator's command): the workspace thread it goes
    #: to (None: the general one), whom it answers (their id on that platform: where
    #: the platform can, only they see it), and whether the command worked
    thread: str | None = None
    operator: str | None = None
    ok: bool = True
    #: an erase: the ids of the app's messages in the thread, the card last
    refs: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        # asdict copies every field recursively (a tenth of ingest's CPU); only
        # these two hold dataclasses, and JSON stores the tuples as lists
        payload = {name: getattr(self, name) for name in _OUTBOUND_FIELDS}
        payload["attachments"] = [asdict(a) for a in self.attachments]
        payload["card"] = asdict(self.card) if self.card is not None else None
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Outbound:
        data = {name: payload[name] for name in _OUTBOUND_FIELDS if name in payload}
        data["attachments"] = tuple(Attachment(**a) for a in payload.get("attachments") or ())
        if payload.get("card"):
            card = payload["card"]
            data["card"] = ConversationCard(
                **{
                    **card,
                    "tags": tuple(card.get("tags") or ()),
                    "earlier": tuple(card.get("earlier") or ()),
                }
            )
        data["choices"] = tuple(tuple(c) for c in payload.get("choices") or ())
        data["mentions"] = tuple(payload.get("mentions") or ())
        data["refs"] = tuple(payload.get("refs") or ())
        return cls(**data)


_OUTBOUND_FIELDS = tuple(f.name for f in fields(Outbound))


@dataclass(frozen=True)
class Delivery:
    """An Outbound handed to its adapter, with the references resolved at send time.

    The thread may not have existed when the row was written (its header was still
    queued), so it is looked up just before the send.
    """

    outbound: Outbound
    attempt: int
    #: unique per delivery and stable across retries: an idempotency key for
    #: platforms that take one
    key: str = ""
    thread_ref: str | None = None
    header_ref: str | None = None
    edit_refs: tuple[str, ...] = ()  # the copies to edit or delete (kind edit, delete)
    #: where the same message was written on this platform's other side (its chat and
    #: ids, several for an album): the adapter may copy it rather than send it anew.
    #: Looked up for a customer's messages and for messages with files only
    source_chat: str | None = None
    source_ids: tuple[str, ...] = ()
    #: to a customer: the ids of the conversation's earlier messages on their channel,
    #: oldest first, the customer's latest among them (what an email reply refers
    #: to), and the conversation's subject
    history: tuple[str, ...] = ()
    replying_to: str | None = None
    subject: str | None = None
    #: the message this one answers, as it is where this goes (its id there), or,
    #: where it never went, the start of its text to quote
    reply_ref: str | None = None
    reply_quote: str | None = None
    #: further deliveries to the same place, coalesced into this one because a
    #: backlog built up (consecutive customer messages for one thread)
    more: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class Receipt:
    """What the platform gave back: the ids under which the delivery now exists."""

    external_ids: tuple[str, ...] = ()
    chat_id: str | None = None
    thread_ref: str | None = None
    header_ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: one receipt per coalesced delivery (``Delivery.more``), in the same order
    more: tuple[Receipt, ...] = ()
