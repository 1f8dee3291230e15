"""Auto-close, CSAT and snooze through the real channels: the Telegram sandbox and
aiogram, the Slack sandbox and slack-bolt, Dovecot and aiosmtpd for email. The
gateway's clock is moved, and the sandboxes date their messages by it."""

from __future__ import annotations

from email.utils import format_datetime

from sandbox.slack import Limits as SlackLimits
from sandbox.slack import SlackSandbox
from sandbox.telegram import Limits, TelegramSandbox
from storage import Conversation
from tests.clock import ManualClock
from tests.slack_support import slack_desk
from tests.support import settle
from tests.telegram_support import eventually, telegram_desk
from tests.test_email import body, email_desk, mail, sent_to

RATE = "How would you rate our help? Reply with a number from 1 (poor) to 5 (excellent)."
COMMENT = "Thank you! If you like, tell us in one message what we could do better."
THANKS = "Thank you for your feedback!"


async def only_conversation(gateway) -> Conversation:  # type: ignore[no-untyped-def]
    async with gateway.repository.transaction() as tx:
        found = await tx.conversation(1)
    assert found is not None
    return found


async def test_telegram_auto_close_and_a_rating_by_button(
    sqlite_url: str, clock: ManualClock
) -> None:
    sandbox = TelegramSandbox(
        limits=Limits(enabled=False), webhook_retry_delay=0.05, wall=clock.timestamp
    )
    await sandbox.start()
    try:
        async with telegram_desk(sqlite_url, sandbox=sandbox) as desk:
            olga = sandbox.add_user("Olga")
            sandbox.send(olga, "Can I pay by card?")
            topic = await eventually(lambda: desk.topic_of("Olga"))
            # the gateway has recorded the topic once it copies Olga's message there
            await eventually(lambda: len(desk.in_topic(topic)) >= 2)
            sandbox.send(desk.anna, "Yes, any card.", chat_id=desk.workspace, thread_id=topic)
            await eventually(lambda: any("any card" in t for t in desk.to_customer(olga)))
            clock.advance(hours=48, minutes=1)
            await desk.gateway.core.run_due()
            ask = await eventually(
                lambda: next(m for m in sandbox.received(olga["id"]) if m.get("text") == RATE)
            )
            buttons = [row[0] for row in ask["reply_markup"]["inline_keyboard"]]
            assert [b["callback_data"] for b in buttons] == [f"pick:{n}" for n in range(1, 6)]
            assert buttons[4]["text"] == "5 ★★★★★"
            sandbox.press(olga, ask, "pick:4")
            await eventually(lambda: desk.to_customer(olga)[-1] == COMMENT)
            sandbox.send(olga, "Answers could be faster")
            await eventually(lambda: desk.to_customer(olga)[-1] == THANKS)
            conv = await only_conversation(desk.gateway)
            assert (conv.status, conv.csat_score, conv.csat_comment) == (
                "resolved",
                4,
                "Answers could be faster",
            )
            texts = lambda: [m.get("text") or "" for m in desk.in_topic(topic)]  # noqa: E731
            await eventually(lambda: any("rated this conversation 4/5" in t for t in texts()))
            await eventually(lambda: any("Answers could be faster" in t for t in texts()))
            assert any("no answer from the customer for 48 h" in t for t in texts())
    finally:
        await sandbox.stop()


async def test_telegram_snooze_and_the_wake_up_mention(sqlite_url: str, clock: ManualClock) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "I will send the receipt tonight")
        topic = await eventually(lambda: desk.topic_of("Olga"))
        # the gateway has recorded the topic once it copies Olga's message there
        await eventually(lambda: len(desk.in_topic(topic)) >= 2)
        # a snooze past any calendar is refused, and Anna is told why, in the topic
        desk.sandbox.send(desk.anna, "/snooze 1000000000d", chat_id=desk.workspace, thread_id=topic)
        await eventually(
            lambda: any("At most 30 days" in (m.get("text") or "") for m in desk.in_topic(topic))
        )
        desk.sandbox.send(desk.anna, "/snooze 4h", chat_id=desk.workspace, thread_id=topic)
        await eventually(lambda: desk.topic_of("💤"))
        clock.advance(hours=4, minutes=1)
        await desk.gateway.core.run_due()
        wake = await eventually(
            lambda: next(m for m in desk.in_topic(topic) if "Snooze over" in (m.get("text") or ""))
        )
        # Anna is mentioned by id (HTML parse mode), so Telegram notifies her
        assert f'<a href="tg://user?id={desk.anna["id"]}">Anna</a>' in wake["text"]
        await eventually(lambda: desk.topic_of("🟢"))


async def test_slack_close_button_rating_buttons_and_the_snooze_menu(
    sqlite_url: str, clock: ManualClock
) -> None:
    sandbox = SlackSandbox(
        limits=SlackLimits(enabled=False), retry_delays=(0.05, 0.2, 0.5), wall=clock.timestamp
    )
    await sandbox.start()
    try:
        async with slack_desk(sqlite_url, sandbox=sandbox) as desk:
            channel = desk.channel
            carol = sandbox.add_user("Carol Smith", name="carol")
            sandbox.post(carol, "Where is my parcel?")
            await eventually(lambda: desk.replies("Carol Smith"))
            card = desk.card_of("Carol Smith")
            sandbox.press(desk.anna, channel, card, "snooze", selected="1h")
            await eventually(lambda: "snoozed" in desk.card_of("Carol Smith")["text"])
            await eventually(lambda: sandbox.ephemeral(channel, desk.anna))
            assert sandbox.ephemeral(channel, desk.anna)[-1]["text"].startswith("Snoozed until")
            clock.advance(hours=1, minutes=1)
            await desk.gateway.core.run_due()
            await eventually(
                lambda: any(
                    "Snooze over" in t and f"<@{desk.anna['id']}>" in t
                    for t in desk.texts("Carol Smith")
                )
            )
            # it is also sent to the channel: the conversation comes up where all look
            assert "Snooze over" in desk.broadcasts()[-1]["text"]
            sandbox.press(desk.anna, channel, desk.card_of("Carol Smith"), "close")
            ask = await eventually(
                lambda: next(m for m in desk.to_customer(carol) if m.get("text") == RATE)
            )
            actions = next(b for b in ask["blocks"] if b["type"] == "actions")
            assert [e["value"] for e in actions["elements"]] == ["1", "2", "3", "4", "5"]
            sandbox.press(carol, sandbox.dm(carol), ask, "pick-5", value="5")
            await eventually(lambda: desk.to_customer(carol)[-1]["text"] == COMMENT)
            sandbox.post(carol, "All good")
            await eventually(lambda: desk.to_customer(carol)[-1]["text"] == THANKS)
            await eventually(
                lambda: any("rated this conversation 5/5" in t for t in desk.texts("Carol Smith"))
            )
            conv = await only_conversation(desk.gateway)
            assert (conv.csat_score, conv.csat_comment) == (5, "All good")
    finally:
        await sandbox.stop()


async def test_email_auto_close_and_a_rating_by_reply(sqlite_url: str, clock: ManualClock) -> None:
    async with email_desk(sqlite_url) as (desk, dovecot, smtp):
        dated = {"Date": format_datetime(clock.now())}
        dovecot.append(mail("Is the shop open on Sunday?", extra=dated).as_bytes())
        await eventually(lambda: desk.texts("Olga Ivanova"))
        desk.sandbox.post(
            desk.anna, "Yes, 10 to 16.", channel=desk.channel, thread_ts=desk.thread_of("Olga")
        )
        await eventually(lambda: any("10 to 16" in body(m) for m in sent_to(smtp, "olga")))
        clock.advance(hours=48, minutes=1)
        await desk.gateway.core.run_due()
        ask = await eventually(lambda: next(m for m in sent_to(smtp, "olga") if RATE in body(m)))
        reply = mail(
            f"5\n\nOn Mon, Support wrote:\n> {RATE}",
            subject=f"Re: {ask['Subject']}",
            extra={
                "In-Reply-To": ask["Message-ID"],
                "References": ask["Message-ID"],
                "Date": format_datetime(clock.now()),
            },
        )
        dovecot.append(reply.as_bytes())
        await eventually(lambda: any(COMMENT in body(m) for m in sent_to(smtp, "olga")))
        await settle(desk.gateway)
        conv = await only_conversation(desk.gateway)
        assert (conv.status, conv.csat_score) == ("resolved", 5)
        await eventually(
            lambda: any("rated this conversation 5/5" in t for t in desk.texts("Olga Ivanova"))
        )
