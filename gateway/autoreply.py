"""FAQ answers to customers: when they are allowed, which one, and how they are sent.

The matcher (``gateway.faq``) says how sure it is; this decides whether that is
sure enough, whether the configured moment has come (no operator free, nobody
online, or always first), and whether the conversation has had its share of
automatic answers. An answer goes to the customer marked as automatic and is
mirrored to the workspaces, so operators see what the bot said.
"""

from __future__ import annotations

import logging

from gateway.config.replies import FaqSection
from gateway.dispatcher import Dispatcher
from gateway.faq import Match, Matcher, build_matcher, decide
from gateway.relay import Desk, Relay
from gateway.texts import pick_language, render
from storage import Conversation, ConversationStatus, Direction, Message, Transaction, build

log = logging.getLogger(__name__)

#: the author_id of a stored FAQ answer: "faq:<entry id>"
FAQ_AUTHOR = "faq:"
#: Conversation.offered after an answer that asked "did this help?"
HELPED = "=helped"


class AutoReplies:
    def __init__(self, desk: Desk, relay: Relay, dispatcher: Dispatcher) -> None:
        self.desk = desk
        self.relay = relay
        self.dispatcher = dispatcher
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
        """Answer ``text`` from the FAQ if the match is confident; offer the closest
        questions if it is only close; nothing at all past the per-conversation cap."""
        section = self.desk.config.core.faq
        if not section.entries or not text.strip():
            return False
        if await tx.count_authored(conversation.id, FAQ_AUTHOR) >= section.max_auto_replies:  # type: ignore[arg-type]
            return False
        allowed = self._allowed(conversation.channel)
        found = self.matcher().match(text, limit=3, allowed=allowed)
        decision = decide(found, section.threshold, section.suggest_threshold)
        if decision.answer is not None:
            await self._send(
                tx, conversation, decision.answer.entry_id, score=decision.answer.score
            )
            return True
        if decision.offer:
            await self._offer(tx, conversation, list(decision.offer))
            return True
        return False

    async def choose(self, tx: Transaction, conversation: Conversation, text: str) -> bool:
        """The customer's reply to offered suggestions: a number picks one, 0 asks for
        a person. Anything else withdraws the offer (they moved on)."""
        offered = list(conversation.offered or ())
        if not offered:
            return False
        conversation.offered = None
        tx.add(conversation)
        choice = text.strip().rstrip(".)")
        if not choice.isdigit():
            return False
        number = int(choice)
        if offered == [HELPED] and number == 1:
            # the answer helped: nobody needs to pick this up
            await self.dispatcher.resolve(
                tx, conversation, by="the customer (the FAQ answer helped)"
            )
            return True
        if number == 0:
            config = self.desk.config
            ack = render(
                config.core.texts,
                "faq_person_ack",
                conversation.language,
                config.gateway.default_language,
            )
            await self._say(tx, conversation, ack, f"{FAQ_AUTHOR}person")
            return True
        if (
            offered != [HELPED]
            and 1 <= number <= len(offered)
            and offered[number - 1] in self._allowed(conversation.channel)
        ):
            await self._send(tx, conversation, offered[number - 1], score=None)
            return True
        return False

    def _allowed(self, channel: str) -> set[str]:
        section = self.desk.config.core.faq
        return {
            e.id for e in section.entries if e.enabled and (not e.channels or channel in e.channels)
        }

    async def _offer(self, tx: Transaction, conversation: Conversation, close: list[Match]) -> None:
        config = self.desk.config
        lang, default = conversation.language, config.gateway.default_language
        lines = [render(config.core.texts, "faq_suggest", lang, default)]
        lines += [f"{n}. {m.question}" for n, m in enumerate(close, start=1)]
        lines.append(f"0. {render(config.core.texts, 'faq_person', lang, default)}")
        conversation.offered = [m.entry_id for m in close]
        tx.add(conversation)
        person = render(config.core.texts, "faq_person", lang, default)
        choices = tuple((str(n), m.question[:60]) for n, m in enumerate(close, start=1))
        await self._say(
            tx,
            conversation,
            "\n".join(lines),
            f"{FAQ_AUTHOR}?",
            choices=(*choices, ("0", person[:60])),
        )
        log.info(
            "FAQ offered %s (best score %.2f)",
            ", ".join(conversation.offered),
            close[0].score,
            extra={"conversation_id": conversation.id, "channel": conversation.channel},
        )

    async def _send(
        self, tx: Transaction, conversation: Conversation, entry_id: str, *, score: float | None
    ) -> None:
        config = self.desk.config
        entry = next(e for e in config.core.faq.entries if e.id == entry_id)
        default = config.gateway.default_language
        answer = (
            entry.answer
            if isinstance(entry.answer, str)
            else pick_language(entry.answer, conversation.language, default)
        )
        lang = conversation.language
        footer = render(config.core.texts, "faq_footer", lang, default)
        choices: tuple[tuple[str, str], ...] = ()
        if config.core.faq.ask_feedback:
            # "did this help?": yes resolves the conversation, 0 keeps it for a person
            footer = render(config.core.texts, "faq_feedback", lang, default)
            choices = (
                ("1", render(config.core.texts, "faq_helped", lang, default)[:60]),
                ("0", render(config.core.texts, "faq_person", lang, default)[:60]),
            )
            conversation.offered = [HELPED]
            tx.add(conversation)
        await self._say(
            tx,
            conversation,
            f"{answer}\n\n{footer}" if footer else answer,
            f"{FAQ_AUTHOR}{entry.id}",
            choices=choices,
        )
        log.info(
            "FAQ %s answered (%s)",
            entry.id,
            f"score {score:.2f}" if score is not None else "chosen by the customer",
            extra={"conversation_id": conversation.id, "channel": conversation.channel},
        )

    async def _say(
        self,
        tx: Transaction,
        conversation: Conversation,
        text: str,
        author: str,
        *,
        choices: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """To the customer, marked as automatic, and to the workspaces, as the bot's."""
        message = build(
            Message,
            conversation_id=conversation.id,
            direction=Direction.AUTO,
            author_id=author[:64],
            author_name="FAQ",
            text=text,
        )
        await tx.add_message(message)
        await self.relay.deliver_to_customer(tx, conversation, message, choices=choices)
        await self.relay.mirror(tx, conversation, message, role="bot")
