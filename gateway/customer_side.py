"""A customer's message taken in: who they are, which conversation it belongs to
(the open one, a closed one it rates or reopens, or a new one), what is queued for
it (the thread's header, the copies for operators, a greeting, an FAQ answer), and
an album's parts kept together. A bounce of our own message is noted for operators.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from enum import Enum

from gateway.autoreply import AutoReplies
from gateway.config import Config
from gateway.dispatcher import Dispatcher
from gateway.events import ROBOT_TAG, Inbound, IngestResult
from gateway.feedback import Feedback
from gateway.language import detect as detect_language
from gateway.lifecycle import move
from gateway.message_book import MessageBook
from gateway.redaction import redact
from gateway.relay import Desk, Relay, _attachment_dict
from gateway.texts import render
from gateway.timers import Timers
from storage import (
    FINISHED_STATUSES,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerIdentity,
    Direction,
    Message,
    Transaction,
    build,
)
from storage.types import utcnow

#: the author of the "we hid your card number" text: one per conversation
CARD_NOTICE = "privacy:card"
log = logging.getLogger(__name__)

#: how long an album's copies wait for parts still on their way
ALBUM_WAIT_SECONDS = 1.5
#: message refs naming the album a message holds (not a platform message id)
ALBUM_SIDE = "album"


class CustomerSide:
    def __init__(
        self,
        desk: Desk,
        relay: Relay,
        dispatcher: Dispatcher,
        autoreplies: AutoReplies,
        timers: Timers,
        feedback: Feedback,
        book: MessageBook,
    ) -> None:
        self.desk = desk
        self.relay = relay
        self.dispatcher = dispatcher
        self.autoreplies = autoreplies
        self.timers = timers
        self.feedback = feedback
        self.book = book

    @property
    def config(self) -> Config:
        return self.desk.config

    @staticmethod
    async def read_ahead(tx: Transaction, hints: list[object]) -> None:
        """What a batch's customer messages will each look up, in a few statements."""
        inbounds = [hint for hint in hints if isinstance(hint, Inbound)]
        customers = [
            inbound
            for inbound in inbounds
            if not inbound.from_workspace and inbound.failure_of is None
        ]
        await tx.preload(
            events=[(inbound.channel, inbound.event_id) for inbound in inbounds],
            identities=[(inbound.channel, inbound.sender.external_id) for inbound in customers],
            chats=[
                (inbound.channel, inbound.sender.external_id, inbound.chat_id)
                for inbound in customers
                if not inbound.explicit_threads
            ],
        )

    async def _card_hidden(self, tx: Transaction, conversation: Conversation) -> None:
        """Tell the customer, once a conversation, that the card number they sent
        was hidden and is never needed."""
        assert conversation.id is not None
        if await tx.count_authored(conversation.id, CARD_NOTICE):
            return
        config = self.config
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=Direction.AUTO,
            author_id=CARD_NOTICE,
            text=render(
                config.texts, "card_hidden", conversation.language, config.gateway.default_language
            ),
        )
        await tx.add_message(message)
        await self.relay.deliver_to_customer(tx, conversation, message)

    async def message(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        hidden = redact(inbound.text, tuple(self.config.core.privacy.redact))
        if hidden.changed:
            # stored and shown masked; relayed as this text, never copied whole
            inbound = replace(inbound, text=hidden.text, copyable=False)
        customer = await self._customer(tx, inbound)
        if customer.blocked:
            log.info("message from a blocked customer dropped", extra={"channel": inbound.channel})
            return IngestResult.ignoring("the customer is blocked")
        if inbound.delete_of:
            return await self.book.apply_delete(tx, inbound, role="customer", to_customer=False)
        if inbound.edit_of:
            edited = await self.book.apply_edit(tx, inbound, role="customer", to_customer=False)
            if edited is not None:
                return edited
        if inbound.album:
            joined = await self._join_album(tx, inbound)
            if joined is not None:
                return joined
        conversation, opened = await self._conversation_for(tx, customer, inbound)
        _mark_robot(conversation, robot=inbound.automated, opened=opened is Opened.NEW)
        if not conversation.language_sure and opened is not Opened.NEW:
            _learn_language(conversation, inbound.text)
        now = utcnow()
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=Direction.IN,
            author_id=str(customer.id),
            author_name=customer.display_name,
            text=inbound.text,
            attachments=[_attachment_dict(a) for a in inbound.attachments],
            reply_to_id=await self.book.reply_target(tx, inbound),
            # when the customer wrote, as their platform says: response times are
            # measured from here, not from when we got round to it (a clock ahead
            # of ours is not believed)
            created_at=min(inbound.sent_at or now, now),
        )
        await self.book.store(tx, message, inbound, side="customer")
        if hidden.card:
            await self._card_hidden(tx, conversation)
        if opened is Opened.FEEDBACK:
            # the score or comment asked for after the close: not a new request
            await self.feedback.take(tx, conversation, message)
            return IngestResult.stored(conversation.id, message.id)
        if conversation.awaiting_since is None and not inbound.automated:
            # the response clock starts at the first message nobody has answered
            conversation.awaiting_since = message.created_at
        if conversation.status == ConversationStatus.WAITING_CUSTOMER:
            move(conversation, ConversationStatus.ASSIGNED)
        tx.touch(conversation, customer_wrote=message.created_at)
        if conversation.status == ConversationStatus.SNOOZED:
            await self.timers.wake(tx, conversation, reason="💬 Woken early: the customer wrote")
        answered = False
        if opened is Opened.NEW:
            # the header (which opens the topic/thread) must be queued before the
            # first mirrored message: deliveries of one thread go out in id order
            await self.relay.header(tx, conversation, opening=True)
            preferred = await self.dispatcher._previous_assignee(tx, conversation)
            await self.relay.mirror(tx, conversation, message, role="customer")
            answered = await self._faq(tx, conversation, inbound, before_routing=True)
            await self.dispatcher.route(
                tx, conversation, preferred=preferred, greet=True, quiet=inbound.automated
            )
        elif opened is Opened.REOPENED:
            await self.relay.mirror(tx, conversation, message, role="customer")
            answered = await self._faq(tx, conversation, inbound, before_routing=True)
            await self.dispatcher.reopen(tx, conversation, operator=None, quiet=inbound.automated)
        else:
            await self.relay.mirror(tx, conversation, message, role="customer")
        if not answered and not inbound.automated and conversation.offered:
            answered = await self.autoreplies.choose(tx, conversation, inbound.text)
        if not answered:
            await self._faq(tx, conversation, inbound, before_routing=False)
        if inbound.album:
            await self._hold_album(tx, message, inbound)
        return IngestResult.stored(conversation.id, message.id)

    async def _faq(
        self, tx: Transaction, conversation: Conversation, inbound: Inbound, *, before_routing: bool
    ) -> bool:
        """An FAQ answer, if this is its moment (never to a machine: loops)."""
        if inbound.automated or not inbound.text:
            return False
        online = False
        if not before_routing and self.config.core.faq.when == "outside_hours":
            # "outside hours": the desk is closed by its schedule, or open with
            # nobody online and on shift to answer
            online = self.dispatcher.is_open() and await self.dispatcher.anyone_online(tx)
        if not self.autoreplies.due(
            conversation, before_routing=before_routing, anyone_online=online
        ):
            return False
        return await self.autoreplies.answer(tx, conversation, inbound.text)

    async def _hold_album(self, tx: Transaction, message: Message, inbound: Inbound) -> None:
        """Keep an album's copies back a moment, so parts still on their way join them
        and go out as one album rather than one by one."""
        assert message.id is not None and inbound.album
        await tx.add_refs(
            message.id, inbound.channel, ALBUM_SIDE, inbound.chat_id, [_album_ref(inbound)]
        )
        until = utcnow() + timedelta(seconds=ALBUM_WAIT_SECONDS)
        # (unsent_copies writes what is pending first, and its query flushes the rest)
        for row in await tx.unsent_copies(message.id):
            row.next_attempt_at = until
            tx.add(row)

    async def _join_album(self, tx: Transaction, inbound: Inbound) -> IngestResult | None:
        """A later part of an album whose message is stored and not yet relayed: it
        joins that message. None when there is nothing it can join (relayed already,
        or the first part), and it becomes a message of its own."""
        assert inbound.album is not None
        message = await tx.message_by_ref(inbound.channel, inbound.chat_id, _album_ref(inbound))
        if message is None or message.id is None:
            return None
        copies = await tx.unsent_copies(message.id)
        if len(copies) != len(await tx.all_copies(message.id)):
            return None  # some copy went out already: this part follows on its own
        message.attachments = [
            *(message.attachments or []),
            *(_attachment_dict(a) for a in inbound.attachments),
        ]
        message.text = message.text or inbound.text
        tx.add(message)
        if inbound.message_id:
            # every part that came in this batch: the copies are made from these ids
            ids = [inbound.message_id, *inbound.part_ids]
            await tx.add_refs(message.id, inbound.channel, "customer", inbound.chat_id, ids)
        until = utcnow() + timedelta(seconds=ALBUM_WAIT_SECONDS)
        for row in copies:
            # the copies carry the whole album: the files, and (read at send time) its ids
            row.payload = {**row.payload, "attachments": message.attachments, "text": message.text}
            row.next_attempt_at = until
            tx.add(row)
        return IngestResult.stored(message.conversation_id, message.id)

    async def failure_report(self, tx: Transaction, inbound: Inbound) -> IngestResult:
        """A bounce: operators see, in the conversation, that their message never came."""
        assert inbound.failure_of is not None
        message = await tx.message_by_external_id(inbound.channel, inbound.failure_of)
        if message is None:
            log.warning(
                "a delivery failure report for a message we do not know (%s)",
                inbound.failure_of,
                extra={"channel": inbound.channel},
            )
            return IngestResult.ignoring("the failed message is not ours")
        conversation = await tx.conversation(message.conversation_id)
        assert conversation is not None
        note = await self.relay.system(tx, conversation, f"⚠ Not delivered: {inbound.text[:500]}")
        return IngestResult.stored(conversation.id, note.id)

    async def _customer(self, tx: Transaction, inbound: Inbound) -> Customer:
        sender = inbound.sender
        known = await tx.identity(inbound.channel, sender.external_id)
        if known is None:
            customer = build(
                Customer,
                id=await tx.new_id(Customer),
                display_name=sender.display_name[:256] or "Customer",
                language=sender.language,
            )
            identity = build(
                CustomerIdentity,
                id=await tx.new_id(CustomerIdentity),
                customer_id=customer.id,
                channel=inbound.channel,
                external_id=sender.external_id,
                username=sender.username,
            )
            # both are written with the transaction's flush, after everything the
            # customer's first message changes in them
            tx.add_customer(customer, identity)
            return customer
        identity, customer = known
        if sender.display_name and customer.display_name != sender.display_name[:256]:
            customer.display_name = sender.display_name[:256]
        if sender.language and customer.language != sender.language:
            customer.language = sender.language
        if sender.username != identity.username:
            identity.username = sender.username
            tx.add(identity)
        tx.add(customer)
        return customer

    async def _conversation_for(
        self, tx: Transaction, customer: Customer, inbound: Inbound
    ) -> tuple[Conversation, Opened]:
        """The open conversation, a recently closed one reopened, or a new one."""
        assert customer.id is not None
        if inbound.explicit_threads:
            latest = await self._threaded(tx, customer, inbound)
        else:
            latest = await tx.latest_conversation(customer.id, inbound.channel, inbound.chat_id)
        if latest is not None and latest.status not in FINISHED_STATUSES:
            return latest, Opened.OPEN
        if (
            latest is not None
            and not inbound.automated
            and self.feedback.expects(latest, inbound.text)
        ):
            return latest, Opened.FEEDBACK
        reopen_window = timedelta(hours=self.config.routing.reopen_hours)
        if (
            latest is not None
            and latest.resolved_at is not None
            and utcnow() - latest.resolved_at <= reopen_window
        ):
            return latest, Opened.REOPENED
        written = detect_language(inbound.text)
        conversation = build(
            Conversation,
            id=await tx.new_id(Conversation),
            customer_id=customer.id,
            channel=inbound.channel,
            chat_id=inbound.chat_id,
            # what they write, else what their platform says, else the desk's own
            language=written or customer.language or self.config.gateway.default_language,
            language_sure=written is not None,
            subject=(inbound.subject or None) and inbound.subject[:512],
        )
        tx.opened(conversation)
        log.info(
            "conversation opened",
            extra={"conversation_id": conversation.id, "channel": inbound.channel},
        )
        return conversation, Opened.NEW

    async def _threaded(
        self, tx: Transaction, customer: Customer, inbound: Inbound
    ) -> Conversation | None:
        """The conversation a message says it continues: by the messages it replies to
        (newest first), else by the number in its subject. Only ever one of this
        customer's own: a guessed number never opens someone else's conversation."""
        for ref in reversed(inbound.thread_refs):
            message = await tx.message_by_ref(inbound.channel, inbound.chat_id, ref)
            if message is not None:
                found = await tx.conversation(message.conversation_id)
                if found is not None and found.customer_id == customer.id:
                    return found
        if inbound.conversation_token is not None:
            found = await tx.conversation(inbound.conversation_token)
            if (
                found is not None
                and found.customer_id == customer.id
                and found.channel == inbound.channel
            ):
                return found
        return None


def _album_ref(inbound: Inbound) -> str:
    """A ref naming an album, in the same chat as message ids: prefixed, never equal."""
    return f"album:{inbound.album}"


class Opened(Enum):
    """Which conversation a customer's message belongs to, and how it came to."""

    OPEN = "open"  # the one still open
    FEEDBACK = "feedback"  # a closed one whose rating or comment this is
    REOPENED = "reopened"  # a closed one, brought back (within routing.reopen_hours)
    NEW = "new"  # a new one


def _learn_language(conversation: Conversation, text: str) -> None:
    """A conversation that began with words too few to tell ("hi") takes the
    language of the first message that does tell, and keeps it."""
    written = detect_language(text)
    if written is not None:
        conversation.language = written
        conversation.language_sure = True


def _mark_robot(conversation: Conversation, *, robot: bool, opened: bool) -> None:
    """A conversation a robot opened (a bounce, an auto-reply, a newsletter) is
    tagged so: nothing automatic answers it, its closing included (``Dispatcher.
    resolve``). A person writing in it later lifts the tag."""
    tags = list(conversation.tags or ())
    if robot and opened and ROBOT_TAG not in tags:
        conversation.tags = [*tags, ROBOT_TAG]
    elif not robot and ROBOT_TAG in tags:
        conversation.tags = [t for t in tags if t != ROBOT_TAG]
