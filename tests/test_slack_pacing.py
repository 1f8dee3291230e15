"""Slack's limits on every call a delivery makes: a long text's parts go at a
channel's pace, a very long one goes as a preview and a file, and a 429 met halfway
through a delivery is waited out for its Retry-After, nothing sent twice."""

from __future__ import annotations

from sandbox.slack import Limits, SlackSandbox
from tests.slack_support import SlackDesk, slack_desk
from tests.support import settle
from tests.telegram_support import eventually

PART = 4000  # Slack's text limit the adapter splits at


def long_text(chars: int, tag: str) -> str:
    words = (f"{tag}{n}" for n in range(chars))
    text = ""
    for word in words:
        if len(text) + len(word) + 1 > chars:
            return text
        text += word + " "
    return text


def carols(desk: SlackDesk) -> list[dict]:
    return [m for m in desk.replies("Carol Smith") if m.get("username") == "Carol Smith"]


async def test_long_texts_keep_the_channels_pace_and_a_very_long_one_is_a_file(
    sqlite_url: str,
) -> None:
    sandbox = SlackSandbox(retry_delays=(0.05, 0.2, 0.5))  # Slack's limits on
    async with sandbox, slack_desk(sqlite_url, sandbox=sandbox) as desk:
        carol = sandbox.add_user("Carol Smith", name="carol")
        sandbox.post(carol, "hello")
        await eventually(lambda: len(carols(desk)) == 1)
        in_parts = long_text(int(2.5 * PART), "a")
        sandbox.post(carol, in_parts)
        await eventually(lambda: len(carols(desk)) == 4)
        very_long = long_text(30_000, "b")
        sandbox.post(carol, very_long)
        await eventually(lambda: any(m.get("files") for m in desk.replies("Carol Smith")))
        await settle(desk.gateway)

        posts = carols(desk)
        parts = [m["text"] for m in posts[1:4]]
        assert " ".join(parts).split() == in_parts.split()  # all of it, once, in order
        preview, *rest = posts[4:]
        assert not rest  # two posts for the very long one, not eight
        assert very_long.startswith(preview["text"].split(" …")[0])
        assert "30" in preview["text"]  # how long the whole is
        shared = [f for m in desk.replies("Carol Smith") for f in m.get("files") or ()]
        assert len(shared) == 1
        assert sandbox.file(shared[0]["id"]).data.decode() == very_long
        stats = sandbox.world.stats
        assert stats.rate_limited == 0  # the gateway kept to Slack's pace on its own


async def test_a_429_halfway_through_a_long_text_is_waited_out(sqlite_url: str) -> None:
    # Slack here is stricter than the gateway's limiter (a burst of 1, not 3): the
    # later parts meet 429s, each Retry-After honoured, no part sent twice
    limits = Limits(channel_per_second=1.0, channel_burst=1)
    sandbox = SlackSandbox(limits=limits, retry_delays=(0.05, 0.2, 0.5))
    async with sandbox, slack_desk(sqlite_url, sandbox=sandbox) as desk:
        carol = sandbox.add_user("Carol Smith", name="carol")
        sandbox.post(carol, "hello")
        await eventually(lambda: len(carols(desk)) == 1)
        in_parts = long_text(int(2.5 * PART), "c")
        sandbox.post(carol, in_parts)
        await eventually(lambda: len(carols(desk)) == 4)
        await settle(desk.gateway)

        parts = [m["text"] for m in carols(desk)[1:]]
        assert " ".join(parts).split() == in_parts.split()
        stats = sandbox.world.stats
        assert stats.rate_limited > 0
        assert stats.early_retries == 0
