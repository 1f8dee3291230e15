"""Slack end to end: the sandbox as Slack, real slack-bolt, the real gateway.

Every story runs in Socket Mode and in HTTP mode unless it is about one of them.
"""

from __future__ import annotations

import pytest

from tests.slack_support import slack_desk
from tests.telegram_support import eventually

MODES = ["socket", "http"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_customer_writes_operators_see_a_card_and_anna_answers(
    sqlite_url: str, mode: str
) -> None:
    async with slack_desk(sqlite_url, mode=mode) as desk:
        sandbox = desk.sandbox
        carol = sandbox.add_user("Carol Smith", name="carol", locale="de-DE")
        sandbox.post(carol, "Hi, my order <#C1|x> &amp; parcel is late")

        card = await eventually(lambda: desk.card_of("Carol Smith"))
        assert any(b["type"] == "actions" for b in card["blocks"])
        await eventually(lambda: desk.replies("Carol Smith"))
        first = desk.replies("Carol Smith")[0]
        assert first["username"] == "Carol Smith"
        assert first["text"] == "Hi, my order #x &amp; parcel is late"
        await eventually(
            lambda: [m["text"] for m in desk.to_customer(carol)] == ["Hello!", "Anna will help you."]
        )

        reply = sandbox.post(
            desk.anna, "We are on it &lt;b&gt;now&lt;/b&gt;", channel=desk.channel, thread_ts=card["ts"]
        )
        await eventually(lambda: len(desk.to_customer(carol)) == 3)
        answer = desk.to_customer(carol)[2]
        assert answer["username"] == "Anna"
        assert answer["text"] == "We are on it &lt;b&gt;now&lt;/b&gt;"
        # the card follows the conversation: assigned to Anna, now waiting for Carol
        await eventually(lambda: "waiting for the customer" in desk.card_of("Carol Smith")["text"])
        assert "Anna" in desk.card_of("Carol Smith")["text"]
        # our own copies were never taken in again: one reply in the thread is Anna's
        assert [m["ts"] for m in desk.replies("Carol Smith") if m.get("user") == desk.anna["id"]] == [
            reply["ts"]
        ]
