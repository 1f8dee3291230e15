"""A conversation's status moves only as the desk's rules allow (gateway/lifecycle.py)."""

from __future__ import annotations

import pytest

from gateway.lifecycle import MOVES, IllegalMove, move
from storage import Conversation, ConversationStatus


def conversation(status: ConversationStatus) -> Conversation:
    return Conversation(id=7, customer_id=1, channel="telegram", chat_id="1", status=status)


def test_the_moves_the_desk_makes_are_allowed_and_staying_put_is_too() -> None:
    for start, targets in MOVES.items():
        for target in (*targets, start):
            c = conversation(start)
            move(c, target)
            assert c.status == target


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (ConversationStatus.RESOLVED, ConversationStatus.WAITING_CUSTOMER),
        (ConversationStatus.RESOLVED, ConversationStatus.ASSIGNED),
        (ConversationStatus.QUEUED, ConversationStatus.SNOOZED),
        (ConversationStatus.NEW, ConversationStatus.WAITING_CUSTOMER),
    ],
)
def test_a_move_no_rule_allows_is_refused_and_changes_nothing(
    start: ConversationStatus, target: ConversationStatus
) -> None:
    c = conversation(start)
    with pytest.raises(IllegalMove, match="conversation 7"):
        move(c, target)
    assert c.status == start


def test_every_status_has_its_moves_written_down() -> None:
    assert set(MOVES) == set(ConversationStatus)
