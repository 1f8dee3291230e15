"""An operator's reply to a visitor who has left the page goes by email too, to the
address they left in the widget (``[web] ask_contact``), through the email channel;
it is in the widget as well when they come back.

Left means: no connection of theirs in this process, and none seen for
``email_after_minutes`` (the chat's ``seen`` time, written when a connection
opens and closes and by each long poll). A visitor who left a moment ago gets the
mail when that time is up, whether or not they came back meanwhile. A reply to
the mail continues the same conversation: the address became the visitor's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from adapters.web.config import WebSection
from adapters.web.hub import Hub
from adapters.web.visitors import CHANNEL
from gateway.adapter import Host
from gateway.events import Delivery

log = logging.getLogger(__name__)

#: the channel that carries a reply to an absent visitor
EMAIL = "email"


class Absent:
    def __init__(self, section: WebSection, host: Host, hub: Hub) -> None:
        self.section = section
        self.host = host
        self.hub = hub

    async def follow(self, delivery: Delivery) -> None:
        """Queue the delivery by email when it is a person's reply and its visitor
        has gone (with an address to write to)."""
        outbound = delivery.outbound
        chat_id = outbound.chat_id
        if (
            outbound.kind != "message"
            or outbound.author_role not in ("operator", "saved")
            or not chat_id
            or self.hub.present(chat_id)
        ):
            return
        state = await self.host.chat_state(CHANNEL, chat_id) or {}
        address = state.get("email")
        if not isinstance(address, str):
            return
        wait = self.section.email_after_minutes * 60
        gone = _seconds_since(state.get("seen"))
        problem = await self.host.forward(
            outbound, EMAIL, address, delay_seconds=max(0.0, wait - gone)
        )
        if problem is not None:
            log.info("web: a reply to %s stays in the widget only: %s", chat_id, problem)


def _seconds_since(stamp: object) -> float:
    if not isinstance(stamp, str):
        return float("inf")
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()
