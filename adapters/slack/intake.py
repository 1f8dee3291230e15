"""Slack requests that bolt cannot read, acknowledged and skipped.

bolt builds its context from a request's body before any listener runs, and a
JSON-valid body of the wrong shape (a user or a channel that is a number, say)
raises there: in Socket Mode the envelope is then never acknowledged, so Slack sends
it again and again, each time holding a connection's turn; over HTTP it was a 500,
retried the same. Such a request is acknowledged here (or answered 400 over HTTP),
logged once at warning, without its content, and skipped.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

log = logging.getLogger(__name__)


def readable(body: Any, mode: str = "socket_mode") -> bool:
    """Whether bolt can make a request of ``body`` and match it to a listener: its
    matchers read the types as strings."""
    try:
        AsyncBoltRequest(body=body, mode=mode)
    except Exception:
        return False
    return shaped(body)


def shaped(body: Any) -> bool:
    """Whether a parsed body has the types bolt's listener matchers read as strings."""
    if not isinstance(body, dict) or not isinstance(body.get("type", ""), str):
        return False
    event = body.get("event")
    if event is None:
        return True
    return (
        isinstance(event, dict)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("subtype", ""), str | None)
    )


class SocketHandler(AsyncSocketModeHandler):
    """bolt's Socket Mode handler, which acknowledges what bolt cannot read."""

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        if readable(req.payload):
            try:
                # a listener's own failure is bolt's 500 (no ack: Slack retries, as it
                # should when the event may succeed later); what escapes is bolt's
                # reading of the envelope (its matchers, on a field of the wrong type)
                await super().handle(cast(Any, client), req)  # bolt's own client, typed narrower
                return
            except Exception as exc:
                reason = type(exc).__name__
        else:
            reason = "unreadable"
        log.warning(
            "slack: a %s envelope of a shape bolt cannot read (%s) was acknowledged and skipped",
            req.type,
            reason,
        )
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
