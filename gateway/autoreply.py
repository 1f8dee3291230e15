"""FAQ answers to customers: when they are allowed, which one, and how they are sent.

The matcher (``gateway.faq``) says how sure it is; this decides whether that is
sure enough, whether the configured moment has come (no operator free, nobody
online, or always first), and whether the conversation has had its share of
automatic answers. An answer goes to the customer marked as automatic and is
mirrored to the workspaces, so operators see what the bot said.
"""

from __future__ import annotations

import logging

from gateway.config.models import FaqSection
from gateway.faq import Entry, Match, Matcher
from gateway.relay import Desk, Relay
from gateway.texts import pick_language, render
from storage import Conversation, ConversationStatus, Direction, Message, Transaction

log = logging.getLogger(__name__)

#: the author_id of a stored FAQ answer: "faq:<entry id>"
FAQ_AUTHOR = "faq:"


def build_matcher(section: FaqSection) -> Matcher:
    return Matcher(
        [Entry(e.id, tuple(e.questions), tuple(e.keywords)) for e in section.entries if e.enabled]
    )


class AutoReplies:
    def __init__(self, desk: Desk, relay: Relay) -> None:
        self.desk = desk
        self.relay = relay
        self._built: tuple[FaqSection, Matcher] | None = None

    def matcher(self) -> Matcher:
        """The matcher of the config in force (rebuilt when the FAQ changes)."""
        section = self.desk.config.core.faq
        if self._built is None or self._built[0] is not section:
            self._built = (section, build_matcher(section))
        return self._built[1]

    def best(self, text: str, channel: str) -> Match | None:
        section = self.desk.config.core.faq
        allowed = {
            e.id for e in section.entries if e.enabled and (not e.channels or channel in e.channels)
        }
        found = self.matcher().match(text, limit=1, allowed=allowed)
        return found[0] if found else None

    def due(self, conversation: Conversation, *, before_routing: bool, anyone_online: bool) -> bool:
        """Whether this is the configured moment for an automatic answer."""
        when = self.desk.config.core.faq.when
        if before_routing:
            return when == "always_first"
        if conversation.status != ConversationStatus.QUEUED:
            return False
        if when == "no_operator_free":
            return True
        return when == "outside_hours" and not anyone_online

    async def answer(self, tx: Transaction, conversation: Conversation, text: str) -> bool:
        """Answer ``text`` from the FAQ if the match is confident and the cap allows."""
        config = self.desk.config
        section = config.core.faq
        if not section.entries or not text.strip():
            return False
        if await tx.count_authored(conversation.id, FAQ_AUTHOR) >= section.max_auto_replies:  # type: ignore[arg-type]
            return False
        match = self.best(text, conversation.channel)
        if match is None or match.score < section.threshold:
            return False
        entry = next(e for e in section.entries if e.id == match.entry_id)
        default = config.gateway.default_language
        answer = (
            entry.answer
            if isinstance(entry.answer, str)
            else pick_language(entry.answer, conversation.language, default)
        )
        footer = render(config.core.texts, "faq_footer", conversation.language, default)
        message = Message(
            conversation_id=conversation.id,
            direction=Direction.AUTO,
            author_id=f"{FAQ_AUTHOR}{entry.id}"[:64],
            author_name="FAQ",
            text=f"{answer}\n\n{footer}" if footer else answer,
        )
        tx.add(message)
        await tx.flush()
        await self.relay.deliver_to_customer(tx, conversation, message)
        await self.relay.mirror(tx, conversation, message, role="bot")
        log.info(
            "FAQ %s answered (score %.2f)",
            entry.id,
            match.score,
            extra={"conversation_id": conversation.id, "channel": conversation.channel},
        )
        return True
