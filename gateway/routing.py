"""Who gets a conversation: pure decisions over a snapshot of the operators.

Kept free of I/O so that the rules can be read, and tested, on their own; the
dispatcher feeds them the state it read (and locked) inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.config.models import OperatorConfig

NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    operator: OperatorConfig
    presence: str
    load: int
    max_chats: int
    last_assigned_at: datetime | None
    order: int  # position in config.toml, the last tie-breaker
    #: inside one of the operator's shifts (always, for operators without shifts)
    on_shift: bool = True

    @property
    def has_capacity(self) -> bool:
        return self.load < self.max_chats

    @property
    def present(self) -> bool:
        """Online and on shift: someone who may be given conversations."""
        return self.presence == "online" and self.on_shift

    @property
    def available(self) -> bool:
        return self.present and self.has_capacity


def speaks(candidate: Candidate, language: str | None) -> bool:
    langs = candidate.operator.languages
    if not langs or not language:
        return True
    base = language.split("-", 1)[0].lower()
    return any(lang == language or lang.split("-", 1)[0].lower() == base for lang in langs)


def eligible(
    candidates: Sequence[Candidate], language: str | None, *, match_language: bool
) -> list[Candidate]:
    """Online, on shift, under max_chats and, when asked, speaking the conversation's
    language.

    If nobody on the team lists the language at all, language is not a reason to
    leave a customer waiting: anyone available is eligible.
    """
    available = [c for c in candidates if c.available]
    if not match_language or not language:
        return available
    if not any(speaks(c, language) and c.operator.languages for c in candidates):
        return available
    return [c for c in available if speaks(c, language)]


def choose(
    strategy: str,
    candidates: Sequence[Candidate],
    language: str | None,
    *,
    match_language: bool,
    preferred: str | None = None,
) -> Candidate | None:
    """The operator to assign, or None to queue.

    ``preferred`` (the operator who helped this customer last) wins whenever they
    are eligible, in every strategy: customers should not have to explain twice.
    """
    pool = eligible(candidates, language, match_language=match_language)
    if not pool:
        return None
    if preferred:
        for c in pool:
            if c.operator.id == preferred:
                return c
    if strategy == "least_busy":
        # ties go to the operator idle the longest
        return min(pool, key=lambda c: (c.load, c.last_assigned_at or NEVER, c.order))
    if strategy == "round_robin":
        # the operator whose turn came longest ago, whatever their load
        return min(pool, key=lambda c: (c.last_assigned_at or NEVER, c.order))
    return None  # manual: operators claim from the queue
