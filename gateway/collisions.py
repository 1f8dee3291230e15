"""The collision guard: two operators must not answer one customer at once.

A reply from an operator who is not the assignee, written while the assignee is at
work on the conversation (they wrote, or took it, less than ``[routing]
collision_minutes`` ago), is stored but held back: its writer is asked, in the
thread, to send it anyway, take the conversation over, or cancel it
(``handlers/collisions.py``). Nothing reaches the customer until they choose.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.config import Config, OperatorConfig
from gateway.events import ActionResult
from storage import ACTIVE_STATUSES, Conversation, Transaction
from storage.types import utcnow


async def colliding(
    tx: Transaction, config: Config, conversation: Conversation, operator: OperatorConfig
) -> tuple[str, int] | None:
    """Whom ``operator``'s reply would collide with, and how many minutes ago they
    were active; None when it may go at once."""
    minutes = config.core.routing.collision_minutes
    owner = conversation.assignee_id
    if not minutes or owner in (None, operator.id) or conversation.status not in ACTIVE_STATUSES:
        return None
    assert conversation.id is not None and owner is not None
    times = [conversation.assigned_at, await tx.last_written(conversation.id, owner)]
    active = max((t for t in times if t is not None), default=None)
    if active is None:
        return None
    since = utcnow() - active
    if since > timedelta(minutes=minutes):
        return None
    person = config.operator(owner)
    return (person.name if person else owner), int(since.total_seconds() // 60)


def held(message_id: int, conversation_id: int, owner: str, minutes: int) -> ActionResult:
    """What the writer of a held reply is asked, with a button for each way out."""
    when = "just now" if minutes < 1 else f"{minutes} min ago"
    return ActionResult(
        False,
        f"{owner} is answering this conversation (active {when}): your reply was not sent. "
        "Send it anyway, take the conversation over, or cancel it?",
        conversation_id,
        choices=(
            (f"send:{message_id}", "Send anyway"),
            (f"takeover:{message_id}", "Take over"),
            (f"discard:{message_id}", "Cancel"),
        ),
        lookup=True,
    )
