"""CSAT: the customer's score (1-5) and optional comment after a close.

Every close asks (``Dispatcher.resolve``); this takes the answers. A 1-5 reply
within ``csat.rating_hours`` of the close is the score, and the next message within
``csat.comment_minutes`` of it the comment; both are stored on the conversation and
shown in its thread. Anything else is an ordinary message, which reopens the
conversation or starts a new one as usual.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway.relay import Desk, Relay
from gateway.texts import render
from storage import Conversation, Message, Transaction
from storage.types import utcnow

log = logging.getLogger(__name__)

COMMENT_LIMIT = 2000


def score_of(text: str) -> int | None:
    """ "4", "4.", "4/5", "★★★★" -> 4; anything else None."""
    stripped = text.strip().rstrip(".!)").strip()
    if stripped.endswith("/5"):
        stripped = stripped[:-2].strip()
    if stripped and set(stripped) <= {"★", "⭐"}:
        stripped = str(len(stripped.replace("⭐", "★")))
    if len(stripped) == 1 and stripped in "12345":
        return int(stripped)
    return None


class Feedback:
    def __init__(self, desk: Desk, relay: Relay) -> None:
        self.desk = desk
        self.relay = relay

    def expects(self, conversation: Conversation, text: str, now: datetime | None = None) -> bool:
        """Whether ``text`` answers this closed conversation's CSAT question."""
        csat = self.desk.config.core.csat
        now = now or utcnow()
        if conversation.csat_asked_at is None:
            return False
        if conversation.csat_score is None:
            fresh = now - conversation.csat_asked_at <= timedelta(hours=csat.rating_hours)
            return fresh and score_of(text) is not None
        return (
            csat.ask_comment
            and conversation.csat_comment is None
            and conversation.csat_rated_at is not None
            and now - conversation.csat_rated_at <= timedelta(minutes=csat.comment_minutes)
            and bool(text.strip())
        )

    async def take(self, tx: Transaction, conversation: Conversation, message: Message) -> None:
        """Store the score or the comment, show it in the thread, thank the customer."""
        config = self.desk.config
        lang, default = conversation.language, config.gateway.default_language
        if conversation.csat_score is None:
            score = score_of(message.text)
            assert score is not None
            conversation.csat_score = score
            conversation.csat_rated_at = utcnow()
            tx.touch(conversation)
            await self.relay.system(
                tx, conversation, f"⭐ The customer rated this conversation {score}/5."
            )
            follow = "csat_comment" if config.core.csat.ask_comment else "csat_thanks"
            await self.relay.say(tx, conversation, render(config.texts, follow, lang, default))
            log.info(
                "CSAT %d",
                score,
                extra={"conversation_id": conversation.id, "channel": conversation.channel},
            )
            return
        conversation.csat_comment = message.text.strip()[:COMMENT_LIMIT]
        tx.touch(conversation)
        await self.relay.system(
            tx, conversation, f"💬 The customer's comment: {conversation.csat_comment}"
        )
        await self.relay.say(tx, conversation, render(config.texts, "csat_thanks", lang, default))
