"""Slack end to end: the sandbox as Slack, real slack-bolt, the real gateway.

Every story runs in Socket Mode and in HTTP mode unless it is about one of them.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from sqlmodel import select

from sandbox.slack import Limits, SlackSandbox, sign
from sandbox.telegram import Limits as TelegramLimits
from sandbox.telegram import TelegramSandbox
from storage import Message
from tests.slack_support import SlackDesk, slack_desk
from tests.support import SAFETY_SECONDS, settle
from tests.telegram_support import eventually

MODES = ["socket", "http"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_customer_writes_operators_see_a_card_and_anna_answers(
    database_url: str, mode: str
) -> None:
    async with slack_desk(database_url, mode=mode) as desk:
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
            lambda: (
                [m["text"] for m in desk.to_customer(carol)] == ["Hello!\n\nAnna will help you."]
            )
        )

        reply = sandbox.post(
            desk.anna,
            "We are on it &lt;b&gt;now&lt;/b&gt;",
            channel=desk.channel,
            thread_ts=card["ts"],
        )
        await eventually(lambda: len(desk.to_customer(carol)) == 2)
        answer = desk.to_customer(carol)[1]
        assert answer["username"] == "Anna"
        assert answer["text"] == "We are on it &lt;b&gt;now&lt;/b&gt;"
        # the card shows who has the conversation
        await eventually(lambda: "assigned · Anna" in desk.card_of("Carol Smith")["text"])
        # our own copies were never taken in again: one reply in the thread is Anna's
        assert [
            m["ts"] for m in desk.replies("Carol Smith") if m.get("user") == desk.anna["id"]
        ] == [reply["ts"]]


async def _opened(desk, customer_name: str = "Carol Smith"):  # type: ignore[no-untyped-def]
    """Carol writes and her conversation's card and first reply are up."""
    carol = desk.sandbox.add_user(customer_name, name=customer_name.split()[0].lower())
    first = desk.sandbox.post(carol, "Where is my parcel?")
    await eventually(lambda: desk.replies(customer_name))
    await eventually(lambda: len(desk.to_customer(carol)) == 1)  # greeting and assigned
    return carol, first


@pytest.mark.parametrize("mode", MODES)
async def test_edits_deletes_notes_and_strangers(sqlite_url: str, mode: str) -> None:
    async with slack_desk(sqlite_url, mode=mode) as desk:
        sandbox, channel = desk.sandbox, desk.channel
        carol, first = await _opened(desk)
        thread = desk.thread_of("Carol Smith")

        # Anna answers, then corrects herself: the customer's copy is edited
        reply = sandbox.post(desk.anna, "It left on Monday", channel=channel, thread_ts=thread)
        await eventually(lambda: len(desk.to_customer(carol)) == 2)
        sandbox.edit(desk.anna, channel, reply, "It left on Tuesday")
        await eventually(lambda: desk.to_customer(carol)[1]["text"] == "It left on Tuesday")

        # a note stays inside, marked as one
        note = sandbox.post(desk.anna, "note: VIP, be nice", channel=channel, thread_ts=thread)
        await eventually(lambda: sandbox.world.message(channel["id"], note["ts"]).get("reactions"))
        assert sandbox.world.message(channel["id"], note["ts"])["reactions"][0]["name"] == "memo"
        # editing a note never sends it anywhere
        sandbox.edit(desk.anna, channel, note, "note: VIP, be very nice")

        # the customer edits: the copy in the thread follows, marked
        sandbox.edit(carol, sandbox.dm(carol), first, "Where is my parcel #123?")
        await eventually(lambda: "parcel #123? _(edited)_" in desk.texts("Carol Smith")[0])

        # Anna deletes her answer: it disappears from the customer's DM
        sandbox.delete(desk.anna, channel, reply)
        await eventually(lambda: len(desk.to_customer(carol)) == 1)

        # a colleague who is not an operator: not relayed, told why, only to him
        stranger = sandbox.add_user("Sam Stranger", name="sam")
        channel["members"].append(stranger["id"])
        sandbox.post(stranger, "I think it's lost", channel=channel, thread_ts=thread)
        await eventually(lambda: sandbox.ephemeral(channel, stranger))
        assert "not sent to the customer" in sandbox.ephemeral(channel, stranger)[0]["text"]
        # a message outside any thread is not a conversation: ignored, silently
        sandbox.post(desk.anna, "morning all", channel=channel)

        # Carol deletes her message: operators keep it, struck through
        sandbox.delete(carol, sandbox.dm(carol), first)
        await eventually(lambda: "deleted by the customer" in desk.texts("Carol Smith")[0])

        await desk.sandbox.quiet()
        await settle(desk.gateway)
        texts = [m["text"] for m in desk.to_customer(carol)]
        assert not any("VIP" in t or "lost" in t or "morning" in t for t in texts)
        assert len(desk.cards()) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_card_buttons_claim_transfer_close(sqlite_url: str, mode: str) -> None:
    async with slack_desk(sqlite_url, mode=mode) as desk:
        sandbox, channel = desk.sandbox, desk.channel
        carol, _ = await _opened(desk)
        card = desk.card_of("Carol Smith")
        assert "Anna" in card["text"]  # routed to Anna, the least busy

        sandbox.press(desk.boris, channel, card, "claim")
        await eventually(lambda: sandbox.ephemeral(channel, desk.boris))
        assert "Anna has this conversation" in sandbox.ephemeral(channel, desk.boris)[0]["text"]

        sandbox.press(desk.anna, channel, card, "transfer", selected="boris")
        await eventually(lambda: "Boris" in desk.card_of("Carol Smith")["text"])
        await eventually(lambda: "Boris" in desk.to_customer(carol)[-1]["text"])

        sandbox.press(desk.boris, channel, card, "close")
        await eventually(lambda: "resolved" in desk.card_of("Carol Smith")["text"])
        buttons = next(b for b in desk.card_of("Carol Smith")["blocks"] if b["type"] == "actions")
        assert [e["action_id"] for e in buttons["elements"]] == ["reopen"]

        # someone who is not an operator presses a button: refused, nothing changes
        stranger = sandbox.add_user("Sam Stranger", name="sam")
        sandbox.press(stranger, channel, card, "reopen")
        await eventually(lambda: sandbox.ephemeral(channel, stranger))
        assert "Only configured operators" in sandbox.ephemeral(channel, stranger)[0]["text"]
        assert "resolved" in desk.card_of("Carol Smith")["text"]


async def test_forged_or_stale_signatures_get_401_and_store_nothing(sqlite_url: str) -> None:
    async with slack_desk(sqlite_url, mode="http") as desk:
        sandbox = desk.sandbox
        carol = sandbox.add_user("Carol Smith", name="carol")
        dm = sandbox.dm(carol)
        message = sandbox.world.user_message(carol, dm, "let me in")
        body = json.dumps(sandbox.world.event_callback(sandbox.world.message_event(dm, message)))
        url = f"http://127.0.0.1:{desk.port}/slack/events"
        now = str(int(time.time()))
        stale = str(int(time.time()) - 6 * 60)
        attempts = {
            "forged": (now, sign("not-the-secret", now, body)),
            "stale": (stale, sign(sandbox.signing_secret, stale, body)),
            "unsigned": (now, ""),
            # a timestamp that is no number, or one no clock reaches
            "not a number": ("soon", sign(sandbox.signing_secret, "soon", body)),
            "huge": ("9" * 400, sign(sandbox.signing_secret, "9" * 400, body)),
        }
        async with aiohttp.ClientSession() as http:
            for name, (timestamp, signature) in attempts.items():
                headers = {
                    "Content-Type": "application/json",
                    "X-Slack-Request-Timestamp": timestamp,
                    "X-Slack-Signature": signature,
                }
                async with http.post(url, data=body, headers=headers) as reply:
                    assert reply.status == 401, name
            # rightly signed but malformed, or of a kind nobody asked for: answered, no crash
            headers["X-Slack-Request-Timestamp"] = now
            for odd in (
                "{not json",
                json.dumps({"type": "event_callback", "event": {"type": "tokens_revoked"}}),
                json.dumps({"type": "event_callback", "event": {"type": 7, "user": [1]}}),
                json.dumps(["a list", "not an object"]),
            ):
                headers["X-Slack-Signature"] = sign(sandbox.signing_secret, now, odd)
                async with http.post(url, data=odd, headers=headers) as reply:
                    assert reply.status < 500, odd
            # the same body, rightly signed, is taken: the refusals were the signatures
            headers["X-Slack-Signature"] = sign(sandbox.signing_secret, now, body)
            async with http.post(url, data=body, headers=headers) as reply:
                assert reply.status == 200
        async with desk.gateway.repository.transaction() as tx:
            stored = (await tx.session.exec(select(Message).where(Message.direction == "in"))).all()
        assert [m.text for m in stored] == ["let me in"]


def carols_lines(desk: SlackDesk) -> list[str]:
    return [
        line
        for m in desk.replies("Carol Smith")
        if m.get("username") == "Carol Smith"
        for line in m["text"].split("\n")
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_retries_and_resent_messages_are_taken_once(sqlite_url: str, mode: str) -> None:
    # Slack stops waiting after 3 s; here after 1 ms, so every event is retried while
    # its first delivery is still being committed
    sandbox = SlackSandbox(
        limits=Limits(enabled=False), ack_timeout=0.001, retry_delays=(0.05,) * 3
    )
    async with sandbox, slack_desk(sqlite_url, mode=mode, sandbox=sandbox) as desk:
        carol = sandbox.add_user("Carol Smith", name="carol")
        sent = [sandbox.post(carol, f"message {n}") for n in range(5)]
        # and Slack sends one of them again, under a new event_id
        sandbox.resend(sandbox.dm(carol), sent[2])
        # retries race their originals, so the order may vary; a backlog may be
        # coalesced into one reply: what counts is each line, exactly once
        await eventually(lambda: len(carols_lines(desk)) >= 5)
        sandbox.ack_timeout = 3.0
        await sandbox.quiet()
        await settle(desk.gateway)
        assert sandbox.world.stats.events_retried > 0
        assert sorted(carols_lines(desk)) == [f"message {n}" for n in range(5)]
        async with desk.gateway.repository.transaction() as tx:
            stored = (await tx.session.exec(select(Message).where(Message.direction == "in"))).all()
        assert len(stored) == 5


async def test_a_socket_dropped_mid_stream_loses_nothing(sqlite_url: str) -> None:
    async with slack_desk(sqlite_url, mode="socket") as desk:
        sandbox = desk.sandbox
        carol = sandbox.add_user("Carol Smith", name="carol")
        for n in range(3):
            sandbox.post(carol, f"before {n}")
        await eventually(lambda: len(carols_lines(desk)) == 3)
        await sandbox.drop_sockets()
        for n in range(4):
            sandbox.post(carol, f"after {n}")  # queued at Slack while the app is away
        await eventually(lambda: sandbox.connected == 1)  # slack_sdk reconnects
        await eventually(lambda: len(carols_lines(desk)) == 7)
        await sandbox.quiet()
        await settle(desk.gateway)
        assert carols_lines(desk) == [f"before {n}" for n in range(3)] + [
            f"after {n}" for n in range(4)
        ]


async def test_a_429_storm_delivers_everything_and_crosses_no_limit(sqlite_url: str) -> None:
    # Slack here is stricter than the gateway's own limiter (a burst of 1, not 3), so
    # 429s come; each Retry-After must be honoured and nothing lost or doubled
    limits = Limits(channel_per_second=1.0, channel_burst=1, tier3_per_minute=50, tier3_burst=5)
    sandbox = SlackSandbox(limits=limits, retry_delays=(0.05, 0.2, 0.5))
    async with sandbox, slack_desk(sqlite_url, sandbox=sandbox) as desk:
        customers = [sandbox.add_user(f"Customer {n}", name=f"c{n}") for n in range(4)]
        for round_ in range(3):
            for number, customer in enumerate(customers):
                sandbox.post(customer, f"c{number} m{round_}")
        for number in range(4):
            await eventually(
                lambda n=number: "\n".join(desk.texts(f"Customer {n}")).count(f"c{n} m") == 3,
                limit=120,
            )
        await settle(desk.gateway, limit=120)
        stats = sandbox.world.stats
        assert stats.rate_limited > 0  # there was a storm
        assert stats.early_retries == 0  # and every Retry-After was honoured
        for customer in customers:
            assert len(desk.to_customer(customer)) == 1  # greeting and assigned, once
        assert len(desk.cards()) == 4
        # one message a second per channel, and at most the burst in any second
        for per_second in stats.per_channel_second.values():
            assert max(per_second.values()) <= limits.channel_burst + 1


@pytest.mark.long
async def test_both_workspaces_one_conversation_files_both_ways(database_url: str) -> None:
    telegram = TelegramSandbox(limits=TelegramLimits(enabled=False), webhook_retry_delay=0.05)
    async with telegram, slack_desk(database_url, telegram=telegram) as desk:
        sandbox, forum = desk.sandbox, desk.forum
        assert forum is not None and desk.anna_tg is not None
        dan = telegram.add_user("Dan", username="dan_tg")
        telegram.send(dan, "Hello from Telegram")

        # the conversation lives in both workspaces: a topic and a card with its thread
        await eventually(lambda: desk.texts("Dan") == ["Hello from Telegram"] or None)
        topic = await eventually(
            lambda: next(t["message_thread_id"] for t in telegram.topics(forum["id"]))
        )

        # Anna answers in Slack: Dan gets it in Telegram, the topic shows it, marked
        sandbox.post(
            desk.anna, "Hi Dan, checking", channel=desk.channel, thread_ts=desk.thread_of("Dan")
        )
        await eventually(
            lambda: any("Hi Dan, checking" in t for t in tg_texts(telegram, dan["id"]))
        )
        await eventually(
            lambda: any(
                "Anna" in t and "Hi Dan, checking" in t
                for t in tg_texts(telegram, forum["id"], topic)
            )
        )

        # Anna corrects herself, then takes it back: Dan's copy follows, both times
        answer = next(m for m in desk.replies("Dan") if m.get("user") == desk.anna["id"])
        sandbox.edit(desk.anna, desk.channel, answer, "Hi Dan, found it")
        await eventually(lambda: any("found it" in t for t in tg_texts(telegram, dan["id"])))
        sandbox.delete(desk.anna, desk.channel, answer)
        await eventually(lambda: not any("Hi Dan" in t for t in tg_texts(telegram, dan["id"])))

        # Dan sends a photo: copied in Telegram, uploaded to Slack with the same bytes
        photo = telegram.send(dan, None, media="photo", caption="the parcel", file_size=3000)
        shared = await eventually(lambda: [m for m in desk.replies("Dan") if m.get("files")])
        uploaded = sandbox.file(shared[0]["files"][0]["id"])
        original = telegram.world.files[photo["photo"][-1]["file_id"]]
        assert uploaded.data == original.data and uploaded.size == 3000

        # a video over the 20 MB bots may download: operators are told, not left guessing
        telegram.send(dan, None, media="video", file_size=21 * 2**20, file_name="unboxing.mp4")
        await eventually(
            lambda: any("📎 video (21.0 MB): over the 20 MB" in t for t in desk.texts("Dan"))
        )

        # a Slack customer's file reaches the Telegram topic as a document
        erin = sandbox.add_user("Erin Slack", name="erin")
        sandbox.post(
            erin, "see attached", files=[("invoice.pdf", b"%PDF-1.4 invoice", "application/pdf")]
        )
        erin_topic = await eventually(
            lambda: next(
                t["message_thread_id"] for t in telegram.topics(forum["id"]) if "Erin" in t["name"]
            )
        )
        document = await eventually(
            lambda: next(
                m["document"] for m in telegram.received(forum["id"], erin_topic) if "document" in m
            )
        )
        assert document["file_name"] == "invoice.pdf"
        assert telegram.world.files[document["file_id"]].data == b"%PDF-1.4 invoice"

        # Anna closes Dan's conversation from Telegram: the Slack card follows
        telegram.send(desk.anna_tg, "/close", chat_id=forum["id"], thread_id=topic)
        await eventually(lambda: "resolved" in desk.card_of("Dan")["text"])


def tg_texts(telegram: TelegramSandbox, chat: int, thread: int | None = None) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in telegram.received(chat, thread)]


@pytest.mark.parametrize("mode", MODES)
async def test_presence_and_status_by_slash_command(sqlite_url: str, mode: str) -> None:
    async with slack_desk(sqlite_url, mode=mode) as desk:
        sandbox, channel = desk.sandbox, desk.channel
        sandbox.command(desk.anna, channel, "/support", "away")
        await eventually(lambda: sandbox.ephemeral(channel, desk.anna))
        assert sandbox.ephemeral(channel, desk.anna)[0]["text"] == "You are away."
        # away: new conversations go to Boris
        carol = sandbox.add_user("Carol Smith", name="carol")
        sandbox.post(carol, "hello?")
        await eventually(lambda: "Boris" in desk.card_of("Carol Smith")["text"])
        sandbox.command(desk.boris, channel, "/support", "status")
        await eventually(lambda: sandbox.ephemeral(channel, desk.boris))
        status = sandbox.ephemeral(channel, desk.boris)[0]["text"]
        assert "Online: Boris 1/3" in status and "Away: Anna 0/3" in status
        # only operators: anyone else is refused
        stranger = sandbox.add_user("Sam Stranger", name="sam")
        sandbox.command(stranger, channel, "/support", "online")
        await eventually(lambda: sandbox.ephemeral(channel, stranger))
        assert "Only configured operators" in sandbox.ephemeral(channel, stranger)[0]["text"]

        # or by mentioning the app: in the channel, the status; in a thread, a command
        bot = sandbox.world.bot_user
        sandbox.post(desk.anna, f"<@{bot}>", channel=channel)
        await eventually(lambda: len(sandbox.ephemeral(channel, desk.anna)) == 2)
        assert sandbox.ephemeral(channel, desk.anna)[1]["text"].startswith("Queue: nobody")
        thread = desk.thread_of("Carol Smith")
        sandbox.post(desk.boris, f"<@{bot}> snooze 1h", channel=channel, thread_ts=thread)
        await eventually(lambda: "snoozed" in desk.card_of("Carol Smith")["text"])
        # a command to the app is not a reply: Carol never sees it
        await settle(desk.gateway)
        assert not any("snooze" in m["text"] for m in desk.to_customer(carol))


async def test_customers_in_a_shared_channel_and_files_from_operators(sqlite_url: str) -> None:
    sandbox = SlackSandbox(limits=Limits(enabled=False), retry_delays=(0.05, 0.2, 0.5))
    async with sandbox:
        frank = sandbox.add_user("Frank Acme", name="frank")
        shared = sandbox.add_channel("acme-support", members=[frank])
        async with slack_desk(
            sqlite_url, sandbox=sandbox, customer_channels=[shared["id"]]
        ) as desk:
            sandbox.post(frank, "Our export fails", channel=shared)
            thread = await eventually(lambda: desk.thread_of("Frank Acme"))
            # the answers go back to the shared channel, Anna's with her file
            sandbox.post(
                desk.anna,
                "Here is the fixed config",
                channel=desk.channel,
                thread_ts=thread,
                files=[("export.toml", b"[export]\nformat = 'csv'\n", "text/plain")],
            )
            bot_posts = lambda: [m for m in sandbox.top_level(shared) if m.get("bot_id")]  # noqa: E731
            await eventually(lambda: any(m.get("files") for m in bot_posts()))
            texts = [m["text"] for m in bot_posts()]
            assert "Here is the fixed config" in texts
            sent = next(m for m in bot_posts() if m.get("files"))["files"][0]
            assert sandbox.file(sent["id"]).data == b"[export]\nformat = 'csv'\n"
            # a channel that is neither the desk nor a customer channel is not listened to
            other = sandbox.add_channel("random", members=[frank])
            sandbox.post(frank, "lunch?", channel=other)
            await sandbox.quiet()
            assert len(desk.cards()) == 1


async def test_a_reply_in_a_thread_not_yet_recorded_waits_for_it(sqlite_url: str) -> None:
    """The card's thread is on Slack a moment before its record commits (with the
    outbox worker's next claim): an operator who answers in between must not meet
    "no conversation" and lose the reply. The record is held back here until Anna's
    reply has reached the gateway."""
    async with slack_desk(sqlite_url) as desk:
        worker = desk.gateway.workers["slack"]
        release = asyncio.Event()
        record = worker._recorded

        async def held(outcome):  # type: ignore[no-untyped-def]
            if outcome[1].thread_ref:
                await release.wait()
            await record(outcome)

        worker._recorded = held  # type: ignore[method-assign]
        unrecorded = next(a for a in desk.gateway.adapters if a.name == "slack")._unrecorded
        asked = unrecorded.known
        reply_waits = asyncio.Event()

        async def noted(thread_ref):  # type: ignore[no-untyped-def]
            if thread_ref is not None:
                reply_waits.set()
            await asked(thread_ref)

        unrecorded.known = noted  # type: ignore[method-assign]
        carol = desk.sandbox.add_user("Carol Smith", name="carol")
        desk.sandbox.post(carol, "Where is my parcel?")
        thread = await eventually(lambda: desk.thread_of("Carol Smith"))
        desk.sandbox.post(desk.anna, "It ships today", channel=desk.channel, thread_ts=thread)
        # the reply is in, and waits: its thread is still unrecorded
        await asyncio.wait_for(reply_waits.wait(), SAFETY_SECONDS)
        assert not any(m["text"] == "It ships today" for m in desk.to_customer(carol))
        release.set()
        await eventually(
            lambda: any(m["text"] == "It ships today" for m in desk.to_customer(carol))
        )


async def test_slack_faults_5xx_slow_and_dropped_calls_deliver_once(sqlite_url: str) -> None:
    async with slack_desk(sqlite_url) as desk:
        sandbox = desk.sandbox
        carol, _ = await _opened(desk)
        thread = desk.thread_of("Carol Smith")
        sandbox.inject("error", method="chat.postMessage", times=2, status=503)
        sandbox.post(desk.anna, "first answer", channel=desk.channel, thread_ts=thread)
        await eventually(lambda: desk.to_customer(carol)[-1]["text"] == "first answer")
        sandbox.inject("slow", method="chat.postMessage", delay=1.0)
        sandbox.post(desk.anna, "second answer", channel=desk.channel, thread_ts=thread)
        await eventually(lambda: desk.to_customer(carol)[-1]["text"] == "second answer")
        sandbox.inject("drop", method="chat.postMessage")
        sandbox.post(desk.anna, "third answer", channel=desk.channel, thread_ts=thread)
        await eventually(lambda: desk.to_customer(carol)[-1]["text"] == "third answer")
        await settle(desk.gateway)
        texts = [m["text"] for m in desk.to_customer(carol)]
        for answer in ("first answer", "second answer", "third answer"):
            assert texts.count(answer) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_what_the_gateway_does_not_serve_is_acknowledged_not_retried(
    sqlite_url: str, mode: str
) -> None:
    """Kinds no listener serves (a reaction, another app's button, another slash
    command) are answered at once: Slack would send them again otherwise."""
    async with slack_desk(sqlite_url, mode=mode) as desk:
        sandbox, channel = desk.sandbox, desk.channel
        carol = sandbox.add_user("Carol Smith", name="carol")
        sandbox.post(carol, "hello?")
        thread = await eventually(lambda: desk.thread_of("Carol Smith"))
        await sandbox.quiet()
        before = sandbox.world.stats.events_retried
        sandbox.emit(
            sandbox.world.event_callback(
                {"type": "reaction_added", "user": carol["id"], "reaction": "+1"}
            )
        )
        card = {"ts": thread}
        sandbox.press(desk.anna, channel, card, "another_apps_button")
        sandbox.command(desk.anna, channel, "/weather", "today")
        sandbox.command(desk.anna, channel, "/support", "status")
        await eventually(lambda: sandbox.ephemeral(channel, desk.anna))
        await sandbox.quiet()
        assert sandbox.world.stats.events_retried == before
        assert desk.card_of("Carol Smith")  # nothing the button did


SORTING = """
[tags]
suggested = ["vip", "Billing"]

[[replies]]
name = "refund"
title = "Refund policy"
text = "Hi {customer}, refunds take 5 days."
"""


async def test_the_card_menus_send_a_saved_reply_tag_and_set_the_priority(
    sqlite_url: str,
) -> None:
    async with slack_desk(sqlite_url, extra=SORTING) as desk:
        sandbox, channel = desk.sandbox, desk.channel
        carol, _ = await _opened(desk)
        card = desk.card_of("Carol Smith")
        menus = {
            e["action_id"]: [o["value"] for o in e.get("options", ())]
            for block in card["blocks"]
            if block["type"] == "actions"
            for e in block["elements"]
        }
        assert menus["reply"] == ["refund"]
        assert menus["priority"] == ["normal", "high", "urgent"]
        assert menus["tag"] == ["vip", "billing"]

        sandbox.press(desk.anna, channel, card, "reply", selected="refund")
        await eventually(lambda: len(desk.to_customer(carol)) == 2)
        assert desk.to_customer(carol)[-1]["text"].endswith("Hi Carol Smith, refunds take 5 days.")
        await eventually(lambda: any("Saved reply" in t for t in desk.texts("Carol Smith")))

        sandbox.press(desk.anna, channel, card, "tag", selected="vip")
        await eventually(lambda: "#vip" in str(desk.card_of("Carol Smith")["blocks"]))
        sandbox.press(desk.anna, channel, card, "priority", selected="urgent")
        await eventually(lambda: "urgent" in str(desk.card_of("Carol Smith")["blocks"]))
        # a tag the card has is offered for removal
        card = desk.card_of("Carol Smith")
        tags = next(
            e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == "tag"
        )  # fmt: skip
        assert [o["value"] for o in tags["options"]] == ["-vip", "billing"]
        sandbox.press(desk.anna, channel, card, "tag", selected="-vip")
        await eventually(lambda: "#vip" not in str(desk.card_of("Carol Smith")["blocks"]))

        # /support reply in the thread (by mention), and a button on the answer
        thread = desk.thread_of("Carol Smith")
        bot = sandbox.world.bot_user
        sandbox.post(desk.anna, f"<@{bot}> reply", channel=channel, thread_ts=thread)
        answer = await eventually(
            lambda: next(m for m in sandbox.ephemeral(channel, desk.anna) if m.get("blocks"))
        )
        assert "refund" in answer["text"]
        sandbox.press(desk.anna, channel, answer, "reply", value="refund")
        await eventually(lambda: len(desk.to_customer(carol)) == 3)
        # the slash command names the conversation by its number
        sandbox.command(desk.anna, channel, "/support", "reply refund #1")
        await eventually(lambda: len(desk.to_customer(carol)) == 4)
        sandbox.command(desk.anna, channel, "/support", "tag #1 billing")
        await eventually(lambda: "#billing" in str(desk.card_of("Carol Smith")["blocks"]))

        # Boris sends a saved reply in Anna's busy conversation: held, his to decide,
        # with the buttons in a message only he sees
        sandbox.press(desk.boris, channel, card, "reply", selected="refund")
        asked = await eventually(
            lambda: next(m for m in sandbox.ephemeral(channel, desk.boris) if m.get("blocks"))
        )
        assert "Anna is answering this conversation" in asked["text"]
        buttons = [e["action_id"] for b in asked["blocks"] if b["type"] == "actions"
                   for e in b["elements"]]  # fmt: skip
        assert buttons == ["send", "takeover", "discard"]
        sandbox.press(
            desk.boris, channel, asked, "takeover", value=asked["blocks"][1]["elements"][1]["value"]
        )
        await eventually(lambda: len(desk.to_customer(carol)) == 6)  # transferred, then the reply
        await eventually(lambda: "Boris" in desk.card_of("Carol Smith")["text"])


async def test_an_erased_customers_thread_and_card_are_deleted(database_url: str) -> None:
    from gateway.privacy import erase_customer

    async with slack_desk(database_url) as desk:
        carol, _ = await _opened(desk)
        thread = desk.thread_of("Carol Smith")
        desk.sandbox.post(desk.anna, "Let me check", channel=desk.channel, thread_ts=thread)
        await eventually(lambda: len(desk.to_customer(carol)) == 2)
        erased = await erase_customer(desk.gateway.repository, "Carol Smith", yes=True)
        assert erased is None  # a name is not a reference: an id, @username or address is
        erased = await erase_customer(desk.gateway.repository, carol["id"], yes=True)
        assert erased is not None and erased.done
        await eventually(lambda: desk.cards() == [])
        # what the app posted in the thread is gone; Anna's own words are hers to delete
        left = [m["text"] for m in desk.sandbox.world.thread(desk.channel["id"], thread)]
        assert left == ["Let me check"]
