"""Writing what must be delivered: messages and the outbox rows that carry them.

Every delivery is a committed outbox row first, written in the transaction that
decided it; the outbox workers send them afterwards. Nothing here talks to a
platform.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo

from gateway.cards import STATUS_TEXT
from gateway.config import Config, OperatorConfig
from gateway.events import (
    ROBOT_TAG,
    ActionResult,
    Attachment,
    Audience,
    AuthorRole,
    ConversationCard,
    OperatorCommand,
    Outbound,
    OutboundKind,
)
from storage import (
    CUSTOMER_CHAT_KEY,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Direction,
    Message,
    Priority,
    Transaction,
    build,
)
from storage.history_queries import Earlier


@dataclass
class Desk:
    """What the core's parts share: the live config and the workspaces running."""

    config_source: Callable[[], Config]
    workspaces: Sequence[str] = ()
    #: a link to a thread in a workspace (workspace, thread ref), where there is one
    links: Callable[[str, str], str | None] = lambda workspace, thread_ref: None

    @property
    def config(self) -> Config:
        return self.config_source()


def chat_key(outbound: Outbound) -> str:
    """Deliveries sharing a key go out in order: per customer chat, per thread."""
    if outbound.audience == "customer":
        return f"{CUSTOMER_CHAT_KEY}{outbound.chat_id}"
    return f"conversation:{outbound.conversation_id}"


#: the dedupe key of the header row that opens a conversation's thread: a
#: conversation opens once, so the key is unique without a lookup, and it tells the
#: outbox which header may carry the messages queued behind it (``opens_thread``)
OPENING = "header:open:"


def opens_thread(dedupe_key: str) -> bool:
    """The row is the header that opens its conversation's thread."""
    return f":workspace:{OPENING}" in dedupe_key


class Relay:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def enqueue(
        self,
        tx: Transaction,
        outbound: Outbound,
        *,
        key: str | None = None,
        fresh: bool = False,
        not_before: datetime | None = None,
    ) -> None:
        """``fresh``: ``key`` is unique by construction, so no twin is looked for.
        ``not_before``: the delivery waits until then."""
        dedupe = key or f"{outbound.kind}:{uuid.uuid4().hex}"
        await tx.enqueue(
            # a key made up here has no twin anywhere to look for
            fresh=fresh or key is None,
            destination=outbound.destination,
            chat_key=chat_key(outbound),
            conversation_id=outbound.conversation_id,
            message_id=outbound.message_id,
            kind=outbound.kind,
            payload=outbound.to_payload(),
            dedupe_key=f"{outbound.destination}:{outbound.audience}:{dedupe}",
            not_before=not_before,
        )

    # -- to the customer --------------------------------------------------------

    async def say(
        self,
        tx: Transaction,
        conversation: Conversation,
        text: str,
        *,
        direction: Direction = Direction.AUTO,
        author: OperatorConfig | None = None,
        attachments: Sequence[Attachment] = (),
        choices: tuple[tuple[str, str], ...] = (),
    ) -> Message:
        """Store a message to the customer and queue its delivery."""
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=direction,
            author_id=author.id if author else None,
            author_name=author.name if author else None,
            text=text,
            attachments=[_attachment_dict(a) for a in attachments],
        )
        await tx.add_message(message)
        await self.deliver_to_customer(tx, conversation, message, author=author, choices=choices)
        return message

    async def deliver_to_customer(
        self,
        tx: Transaction,
        conversation: Conversation,
        message: Message,
        *,
        author: OperatorConfig | None = None,
        choices: tuple[tuple[str, str], ...] = (),
    ) -> None:
        role: AuthorRole = "operator" if author else "bot"
        if choices:
            message.choices = [list(choice) for choice in choices]
        await self._relay(
            tx, conversation, message, conversation.channel, "customer", role, choices=choices
        )

    # -- to the workspaces ------------------------------------------------------

    async def mirror(
        self,
        tx: Transaction,
        conversation: Conversation,
        message: Message,
        *,
        role: AuthorRole,
        skip: str | None = None,
        mentions: tuple[str, ...] = (),
    ) -> None:
        """Copy a message into every workspace (but ``skip``, where it was written)."""
        for workspace in self.desk.workspaces:
            if workspace != skip:
                await self._relay(
                    tx, conversation, message, workspace, "workspace", role, mentions=mentions
                )

    async def _relay(
        self,
        tx: Transaction,
        conversation: Conversation,
        message: Message,
        destination: str,
        audience: Audience,
        role: AuthorRole,
        kind: OutboundKind = "message",
        *,
        choices: tuple[tuple[str, str], ...] = (),
        mentions: tuple[str, ...] = (),
    ) -> None:
        """Queue one copy of a stored message, or of its edit. A message's id makes
        its row's dedupe key; an edit can happen many times and gets a fresh one."""
        await self.enqueue(
            tx,
            Outbound(
                destination=destination,
                audience=audience,
                kind=kind,
                conversation_id=_id(conversation),
                chat_id=conversation.chat_id if audience == "customer" else None,
                text=message.text,
                author_name=message.author_name,
                author_role=role,
                author_id=message.author_id if role in ("operator", "saved") else None,
                attachments=_attachments(message) if kind == "message" else (),
                message_id=message.id,
                reply_to=message.reply_to_id if kind == "message" else None,
                choices=choices,
                mentions=mentions,
            ),
            key=f"message:{message.id}" if kind == "message" else None,
        )

    async def edit(
        self,
        tx: Transaction,
        conversation: Conversation,
        message: Message,
        *,
        role: AuthorRole,
        skip: str | None = None,
        customer: bool = False,
        kind: OutboundKind = "edit",
    ) -> None:
        """Follow an edit (or a deletion) to every copy of the message, wherever it
        was relayed. How a deletion shows is the adapter's call: a customer's message
        stays visible to operators, marked as deleted, so the record is kept."""
        targets: list[tuple[str, Audience]] = [
            (w, "workspace") for w in self.desk.workspaces if w != skip
        ]
        if customer:
            targets.append((conversation.channel, "customer"))
        for destination, audience in targets:
            await self._relay(tx, conversation, message, destination, audience, role, kind)

    async def system(
        self,
        tx: Transaction,
        conversation: Conversation,
        text: str,
        *,
        mentions: Sequence[str] = (),
        on_card: bool = False,
        posted: bool = True,
    ) -> Message:
        """An event for operators' eyes (claimed, transferred, not delivered); the
        operators in ``mentions`` are notified of it.

        ``on_card``: the header card shows it too (who has the conversation). For a
        conversation whose thread opens with a card queued in this transaction, the
        note is kept in the history but not posted: the card says it, and Telegram
        allows a group only 20 bot messages a minute. ``posted=False``: kept in the
        history only, whatever the card (a change the refreshed card shows).
        """
        message = build(
            Message, conversation_id=conversation.id, direction=Direction.SYSTEM, text=text
        )
        await tx.add_message(message)
        if not posted or (on_card and not mentions and tx.headers.get(_id(conversation))):
            return message
        await self.mirror(tx, conversation, message, role="system", mentions=tuple(mentions))
        return message

    async def header(
        self, tx: Transaction, conversation: Conversation, *, opening: bool = False
    ) -> None:
        """Open (``opening``: a new conversation) or refresh the conversation's header
        card in every workspace.

        The row only asks for a refresh: the card is rendered when it is sent
        (Core.prepare), showing the conversation as it is then. So a transaction
        queues one at most per conversation: a second would show the same card.
        """
        if not self.desk.workspaces or _id(conversation) in tx.headers:
            return
        tx.headers[_id(conversation)] = opening
        for workspace in self.desk.workspaces:
            await self.enqueue(
                tx,
                Outbound(
                    destination=workspace,
                    audience="workspace",
                    kind="header",
                    conversation_id=_id(conversation),
                ),
                key=f"{OPENING}{_id(conversation)}" if opening else None,
                fresh=True,
            )

    async def notice(
        self,
        tx: Transaction,
        command: OperatorCommand,
        result: ActionResult,
        conversation_id: int | None,
    ) -> None:
        """The answer to an operator's command, where they typed it: a row like any
        delivery, in the command's transaction, so that it is paced with the rest of
        the workspace and survives a restart (the command, done, is not done again)."""
        await self.enqueue(
            tx,
            Outbound(
                destination=command.channel,
                audience="workspace",
                kind="notice",
                # in a conversation's thread, in order with what goes there
                conversation_id=conversation_id or 0,
                text=result.message,
                choices=result.choices,
                thread=command.workspace_thread,
                operator=command.operator_external_id,
                ok=result.ok,
            ),
            key=f"notice:{command.event_id}",
            fresh=True,  # a command's event is recorded once
        )

    async def card(self, tx: Transaction, conversation: Conversation) -> ConversationCard:
        customer: Customer = await tx.customer(conversation.customer_id)
        identity: CustomerIdentity | None = await tx.customer_identity(
            conversation.customer_id, conversation.channel
        )
        assignee = self.desk.config.operator(conversation.assignee_id)
        earlier = await tx.earlier(_id(conversation))
        zone = self.desk.config.core.schedule.zone
        return ConversationCard(
            conversation_id=_id(conversation),
            customer_name=customer.display_name,
            customer_username=identity.username if identity else None,
            customer_external_id=identity.external_id if identity else None,
            channel=conversation.channel,
            language=conversation.language,
            # who has it, not whose turn it is: that flips with every message, and
            # each flip would cost an edit of the card in every workspace (Telegram
            # counts those against the group's 20 messages a minute)
            status=str(
                ConversationStatus.ASSIGNED
                if conversation.status == ConversationStatus.WAITING_CUSTOMER
                else conversation.status
            ),
            assignee_name=assignee.name if assignee else None,
            tags=tuple(t for t in conversation.tags or () if t != ROBOT_TAG),
            priority=Priority(conversation.priority).name.lower(),
            earlier_count=earlier[0].total if earlier else 0,
            earlier=tuple(earlier_line(e, zone) for e in earlier),
        )


def earlier_line(earlier: Earlier, zone: tzinfo) -> str:
    """One earlier conversation in a line: "#5 2026-11-20 telegram, resolved · CSAT 4 · #vip"."""
    parts = [
        f"#{earlier.conversation_id} {earlier.created_at.astimezone(zone).date()} "
        f"{earlier.channel}, {STATUS_TEXT.get(earlier.status, earlier.status)}"
    ]
    if earlier.csat_score is not None:
        parts.append(f"CSAT {earlier.csat_score}")
    if earlier.tags:
        parts.append(" ".join(f"#{t}" for t in earlier.tags if t != ROBOT_TAG))
    return " · ".join(p for p in parts if p)


def _id(conversation: Conversation) -> int:
    assert conversation.id is not None, "flush the conversation before relaying"
    return conversation.id


def _attachment_dict(attachment: Attachment) -> dict[str, object]:
    return asdict(attachment)


def _attachments(message: Message) -> tuple[Attachment, ...]:
    return tuple(Attachment(**a) for a in message.attachments or ())
