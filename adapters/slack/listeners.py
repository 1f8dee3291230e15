"""Which of the adapter's handlers takes a Slack event, action or command: bolt's
own listener matchers, one listener per kind, as a bolt app declares them.

Every request gets an answer: what no listener serves (an event kind the gateway
does not take, another app's action, another slash command) is acknowledged by the
catch-alls registered last, since bolt answers an unmatched request 404 and Slack
would send it again.

``Guard`` wraps the event listeners: it raises (500 / no ack, so Slack retries) only
when the event may succeed later, the gateway stopping or its database failing. An
event that fails for its own sake (a field of an unexpected shape) is logged once
and skipped, with a placeholder for operators where a customer wrote: retried, it
would fail the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp

from adapters.slack import normalise, render
from gateway.errors import InvalidEvent, ShuttingDown, StoreUnavailable

log = logging.getLogger(__name__)

Event = dict[str, Any]
EventListener = Callable[[Event], Awaitable[None]]

#: buttons on the card, as the core's commands
CARD_ACTIONS = (
    "claim", "close", "reopen", "transfer", "snooze", "reply", "priority", "tag",
    # a held reply's buttons (gateway.collisions)
    "send", "takeover", "discard",
)  # fmt: skip


class Takers(Protocol):
    """What the adapter does with each kind it serves."""

    async def written(self, event: Event) -> None:
        """A message (a file share, a thread broadcast, a /me) in a DM, a customer
        channel or the workspace."""

    async def edited(self, event: Event) -> None: ...

    async def deleted(self, event: Event) -> None: ...

    async def mentioned(self, event: Event) -> None:
        """``@app status``: a command to the app from the workspace."""

    async def unreadable(self, event: Event) -> None:
        """A customer's message that could not be taken in (``Guard``)."""

    async def picked(self, ack: AsyncAck, body: Event, action: Event) -> None:
        """A customer's tap on one of the choices under our message."""

    async def card_action(self, ack: AsyncAck, body: Event, action: Event) -> None:
        """A card's button or menu in the workspace."""

    async def slash_command(self, ack: AsyncAck, command: Event) -> None: ...


class Guard:
    """Wraps an event listener: see the module's docstring."""

    def __init__(self, take: Takers) -> None:
        self.take = take

    def __call__(self, listener: EventListener) -> EventListener:
        async def guarded(event: Event) -> None:
            try:
                await listener(event)
            except (ShuttingDown, StoreUnavailable):
                raise
            except InvalidEvent as exc:
                log.warning("slack: an event that cannot be relayed was dropped: %s", exc)
            except Exception as exc:
                log.error(
                    "slack: a %s event was skipped: %s",
                    str(event.get("type"))[:40],
                    type(exc).__name__,
                    exc_info=exc,
                )
                await self.take.unreadable(event)

        return guarded


async def _acknowledged(ack: AsyncAck) -> None:
    await ack()


async def _not_served(event: Event) -> None:
    """An event of a kind the gateway does not take (a reaction, a member joining,
    a message subtype that records what Slack did): acknowledged, skipped."""


def register(app: AsyncApp, take: Takers, slash_command: str) -> None:
    """The adapter's listeners on ``app``, the more specific first (bolt runs the
    first that matches)."""
    guard = Guard(take)
    app.event("app_mention")(guard(take.mentioned))
    app.event({"type": "message", "subtype": "message_changed"})(guard(take.edited))
    app.event({"type": "message", "subtype": "message_deleted"})(guard(take.deleted))
    app.event({"type": "message", "subtype": sorted(normalise.WRITTEN, key=str)})(
        guard(take.written)
    )
    app.event(re.compile(".*"))(_not_served)
    app.action(re.compile("^" + re.escape(render.PICK)))(take.picked)
    app.action(re.compile("^(" + "|".join(CARD_ACTIONS) + ")$"))(take.card_action)
    app.action(re.compile(".*"))(_acknowledged)
    app.command(slash_command)(take.slash_command)
    app.command(re.compile(".*"))(_acknowledged)
