"""A conversation's status, and the moves between statuses the desk makes.

Every change of status goes through ``move``, so the moves the product knows are
written down once, here, and a change no rule allows is a bug that fails its
transaction loudly instead of leaving a conversation somewhere no screen, timer
or report expects it:

    new ──────────► queued ───────► assigned ◄──────► waiting_customer
     │                 ▲               │  ▲                │
     │                 └─(away, left)──┤  └──(woken)── snoozed
     └─────────────────────────────────┴─► resolved ──(reopened)──► new

A move to the status a conversation already has changes nothing and is allowed
(enqueueing a queued conversation, snoozing a snoozed one).
"""

from __future__ import annotations

from storage import Conversation, ConversationStatus

NEW = ConversationStatus.NEW
QUEUED = ConversationStatus.QUEUED
ASSIGNED = ConversationStatus.ASSIGNED
WAITING = ConversationStatus.WAITING_CUSTOMER
SNOOZED = ConversationStatus.SNOOZED
RESOLVED = ConversationStatus.RESOLVED
CLOSED = ConversationStatus.CLOSED

#: where a conversation may go from each status
MOVES: dict[ConversationStatus, frozenset[ConversationStatus]] = {
    # routed at once, queued for want of an operator, or closed before anyone came
    NEW: frozenset({QUEUED, ASSIGNED, RESOLVED}),
    QUEUED: frozenset({ASSIGNED, RESOLVED}),
    # the operator answered; snoozed; back to the queue (away too long, or gone
    # from the config); closed
    ASSIGNED: frozenset({WAITING, SNOOZED, QUEUED, RESOLVED}),
    # the customer wrote back
    WAITING: frozenset({ASSIGNED, SNOOZED, QUEUED, RESOLVED}),
    # woken (by its timer, or early by the customer), or its operator left
    SNOOZED: frozenset({ASSIGNED, WAITING, QUEUED, RESOLVED}),
    # reopened: routed again from the start
    RESOLVED: frozenset({NEW}),
    CLOSED: frozenset({NEW}),
}


class IllegalMove(RuntimeError):
    """A status change no rule of the desk allows: a bug, never a customer's doing."""


def move(conversation: Conversation, to: ConversationStatus) -> None:
    """Set ``conversation``'s status to ``to``, if the desk allows that move."""
    now = ConversationStatus(conversation.status)
    if to != now and to not in MOVES[now]:
        raise IllegalMove(f"conversation {conversation.id}: {now} -> {to} is not a move")
    conversation.status = to
