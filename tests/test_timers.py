"""Time: business hours, SLA reminders and breaches, auto-close with CSAT, snooze,
shifts and presence, and deadlines that survive a restart. The clock is moved, never
waited for; deadlines are acted on by calling the scheduler's tick directly."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlmodel import col, select

from gateway.app import Gateway
from gateway.config import Config, parse_config
from storage import ConversationStatus, Direction, Message, SlaBreach
from tests.clock import ManualClock
from tests.support import (
    RecordingAdapter,
    all_conversations,
    config_text,
    conversation,
    make_config,
    migrate,
    operator_writes,
    running,
    settle,
)
from tests.wording import assert_names_the_time

KYIV_WEEKDAYS = """
[hours]
timezone = "Europe/Kyiv"
schedule = { mon-fri = "09:00-18:00" }
"""

QUIET_SLA = """
[sla]
customer_update_minutes = 0
"""


def requeueing_config(database_url: str, extra: str) -> Config:
    """An away operator's conversations go back to the queue after 15 minutes."""
    text = config_text(database_url, extra=extra).replace(
        "match_language = false", "match_language = false\nrequeue_away_minutes = 15"
    )
    return parse_config(text)


async def deadlines(gw: Gateway, conversation_id: int) -> dict[str, datetime]:
    async with gw.repository.transaction() as tx:
        return {kind: row.due_at for kind, row in (await tx.deadlines(conversation_id)).items()}


async def breaches(gw: Gateway) -> list[SlaBreach]:
    async with gw.repository.transaction() as tx:
        return list((await tx.session.exec(select(SlaBreach).order_by(col(SlaBreach.id)))).all())


async def tick(gw: Gateway) -> int:
    taken = await gw.core.run_due()
    await settle(gw)
    return taken


def near(when: datetime, expected: datetime) -> bool:
    """The clock keeps running between a test's jumps: equal within a few seconds."""
    return abs(when - expected) < timedelta(seconds=5)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def test_outside_hours_the_customer_hears_the_opening_and_waits_for_it(
    database_url: str, clock: ManualClock
) -> None:
    faq = """
[faq]
[[faq.entries]]
id = "delivery"
questions = ["How long does delivery take?"]
answer = "Two to four days."
"""
    config = make_config(
        database_url, ("anna",), max_chats=1, extra=KYIV_WEEKDAYS + QUIET_SLA + faq
    )
    tg = RecordingAdapter()
    clock.set(utc(2026, 11, 28, 12))  # Saturday, 14:00 in Kyiv: closed
    async with running(config, tg) as gw:
        olga = await gw.core.ingest(tg.customer_says("olga", "Where is my order?"))
        clock.advance(minutes=1)
        petro = await gw.core.ingest(tg.customer_says("petro", "How long does delivery take?"))
        await settle(gw)
        [told] = tg.to_customer("chat-olga")
        before, opens, after = re.split(r"(?<=open again )(.+)(?=; a member)", told)
        assert (
            before == "Hello!\n\nThanks for your message! We are closed right now and open again "
        )
        assert after == "; a member of our team will answer you then."
        assert_names_the_time(opens, utc(2026, 11, 30, 7), ZoneInfo("Europe/Kyiv"), "en")
        # the FAQ still answers while the desk is closed
        assert tg.to_customer("chat-petro")[-1].startswith("Two to four days.")
        for result in (olga, petro):
            conv = await conversation(gw, result.conversation_id)
            assert conv.status == ConversationStatus.QUEUED and conv.assignee_id is None
            assert (await deadlines(gw, conv.id))["route"] == utc(2026, 11, 30, 7)
        # anna is online, but the desk is closed: nothing is routed before the opening
        clock.set(utc(2026, 11, 30, 6, 59))
        assert await tick(gw) == 0
        clock.set(utc(2026, 11, 30, 7, 0, 1))
        assert await tick(gw) == 2
        assert (await conversation(gw, olga.conversation_id)).assignee_id == "anna"
        still = await conversation(gw, petro.conversation_id)
        assert still.status == ConversationStatus.QUEUED  # anna's one slot went to the oldest
        # open now: the queue moves when a slot frees, not by the clock
        assert "route" not in await deadlines(gw, still.id)
        assert tg.to_customer("chat-olga")[-1] == "Anna will help you."


async def test_sla_reminds_the_assignee_then_pings_the_team_and_counts_one_breach(
    database_url: str, clock: ManualClock
) -> None:
    sla = "[sla]\nfirst_response_minutes = 30\nremind_before_minutes = 5\n"
    sla += "customer_update_minutes = 0\n"
    config = make_config(database_url, extra=sla)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "My order is late"))
        conv_id = result.conversation_id
        await settle(gw)
        assert (await conversation(gw, conv_id)).assignee_id == "anna"
        due = await deadlines(gw, conv_id)
        assert due["sla_remind"] - due["sla_breach"] == timedelta(minutes=-5)
        clock.advance(minutes=24)
        assert await tick(gw) == 0
        clock.advance(minutes=1, seconds=5)
        assert await tick(gw) == 1
        reminder = tg.notes(conv_id)[-1]
        assert reminder[0].startswith("⏰ Reminder: the customer has waited 25 min")
        assert reminder[1] == ("anna",)
        clock.advance(minutes=5)
        assert await tick(gw) == 1
        text, mentions = tg.notes(conv_id)[-1]
        assert text.startswith("🚨 Response target missed: the customer has waited 30 min")
        assert set(mentions) == {"anna", "boris"}
        assert [(b.target, b.operator_id) for b in await breaches(gw)] == [("first", "anna")]
        # still unanswered a period later: pinged again, but it is one breach
        clock.advance(minutes=30)
        assert await tick(gw) == 1
        assert tg.notes(conv_id)[-1][0].startswith("🚨 Response target missed")
        assert len(await breaches(gw)) == 1
        # an answer stops the clock; the wait for the customer starts
        await operator_writes(gw, tg, "anna", conv_id, "Sorry, checking now!")
        assert set(await deadlines(gw, conv_id)) == {"auto_close"}
        # the customer's next message is due within next_response_minutes (120)
        clock.advance(minutes=3)
        await gw.core.ingest(tg.customer_says("olga", "Any news?"))
        conv = await conversation(gw, conv_id)
        due = await deadlines(gw, conv_id)
        assert due["sla_breach"] - conv.awaiting_since == timedelta(minutes=120)


async def test_sla_breach_can_reassign_to_the_next_free_operator(
    database_url: str, clock: ManualClock
) -> None:
    sla = '[sla]\nfirst_response_minutes = 10\non_breach = "reassign"\n'
    sla += "customer_update_minutes = 0\n"
    config = make_config(database_url, extra=sla)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "Hello?"))
        conv_id = result.conversation_id
        clock.advance(minutes=11)
        await tick(gw)
        conv = await conversation(gw, conv_id)
        assert conv.assignee_id == "boris"
        assert tg.to_customer("chat-olga")[-1] == "Boris takes over."
        assert any("Reassigned from Anna to Boris" in text for text, _ in tg.notes(conv_id))
        assert [(b.target, b.operator_id) for b in await breaches(gw)] == [("first", "anna")]


async def test_a_waiting_customer_hears_we_are_still_on_it_once(
    database_url: str, clock: ManualClock
) -> None:
    sla = "[sla]\ncustomer_update_minutes = 20\nfirst_response_minutes = 0\n"
    config = make_config(database_url, ("anna",), max_chats=1, extra=sla)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("olga", "Hi"))
        queued = await gw.core.ingest(tg.customer_says("petro", "Hi"))
        await settle(gw)
        assert tg.to_customer("chat-petro")[-1] == "Hello!\n\nYou are number 1 in line."
        clock.advance(minutes=21)
        assert await tick(gw) == 2  # both waited 20 minutes without an answer
        update = (
            "We have not forgotten you: your message is with our team and you will get an "
            "answer here. Thank you for your patience."
        )
        assert tg.to_customer("chat-petro")[-1] == update
        assert tg.to_customer("chat-olga")[-1] == update
        # operators see what the customer was told
        thread = [d.outbound.text for d in tg.in_thread(queued.conversation_id)]
        assert update in thread
        clock.advance(minutes=40)
        assert await tick(gw) == 0
        assert tg.to_customer("chat-petro").count(update) == 1


async def test_response_targets_count_business_hours_only(
    database_url: str, clock: ManualClock
) -> None:
    config = make_config(database_url, extra=KYIV_WEEKDAYS)
    tg = RecordingAdapter()
    clock.set(utc(2026, 11, 23, 15, 50))  # Monday 17:50 in Kyiv, ten minutes to closing
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "Still there?"))
        due = await deadlines(gw, result.conversation_id)
        # 30 business minutes: 10 today, 20 tomorrow from 09:00 (07:00 UTC)
        assert near(due["sla_breach"], utc(2026, 11, 24, 7, 20))
        assert near(due["sla_remind"], utc(2026, 11, 24, 7, 15))
        assert near(due["nudge"], utc(2026, 11, 24, 7, 10))


async def test_auto_close_asks_for_a_rating_and_a_comment_and_keeps_both(
    database_url: str, clock: ManualClock
) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "Can I change my address?"))
        conv_id = result.conversation_id
        await operator_writes(gw, tg, "anna", conv_id, "Yes: write the new one here.")
        clock.advance(hours=47)
        assert await tick(gw) == 0
        clock.advance(hours=1, minutes=1)
        assert await tick(gw) == 1
        conv = await conversation(gw, conv_id)
        assert conv.status == ConversationStatus.RESOLVED
        assert tg.to_customer("chat-olga")[-2:] == [
            "Closed, thanks!",
            "How would you rate our help? Reply with a number from 1 (poor) to 5 (excellent).",
        ]
        ask = [d for d in tg.deliveries if d.outbound.choices][-1]
        assert [reply for reply, _ in ask.outbound.choices] == ["1", "2", "3", "4", "5"]
        assert "no answer from the customer for 48 h" in tg.notes(conv_id)[-1][0]
        assert await deadlines(gw, conv_id) == {}

        await gw.core.ingest(tg.customer_says("olga", "4"))
        await settle(gw)
        conv = await conversation(gw, conv_id)
        assert conv.status == ConversationStatus.RESOLVED and conv.csat_score == 4
        assert tg.to_customer("chat-olga")[-1].startswith("Thank you! If you like, tell us")
        await gw.core.ingest(tg.customer_says("olga", "Quick and kind, thanks"))
        await settle(gw)
        conv = await conversation(gw, conv_id)
        assert conv.csat_comment == "Quick and kind, thanks"
        assert conv.status == ConversationStatus.RESOLVED
        assert tg.to_customer("chat-olga")[-1] == "Thank you for your feedback!"
        notes = [text for text, _ in tg.notes(conv_id)]
        assert "⭐ The customer rated this conversation 4/5." in notes
        assert "💬 The customer's comment: Quick and kind, thanks" in notes
        # the rating and the comment are not relayed as messages: only the notes
        relayed = [
            d.outbound.text for d in tg.in_thread(conv_id) if d.outbound.author_role == "customer"
        ]
        assert relayed == ["Can I change my address?"]
        # after that, a message is a message again: it reopens the conversation
        await gw.core.ingest(tg.customer_says("olga", "One more thing"))
        assert (await conversation(gw, conv_id)).status == ConversationStatus.ASSIGNED


async def test_an_operator_close_asks_too_and_a_late_digit_is_just_a_message(
    database_url: str, clock: ManualClock
) -> None:
    config = make_config(database_url, reopen_hours=0)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "Thanks, all good"))
        await operator_writes(gw, tg, "anna", result.conversation_id, "/close")
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1].startswith("How would you rate our help?")
        clock.advance(hours=25)  # past csat.rating_hours
        late = await gw.core.ingest(tg.customer_says("olga", "5"))
        assert late.conversation_id != result.conversation_id  # a new conversation
        assert (await conversation(gw, result.conversation_id)).csat_score is None


async def test_snooze_puts_a_conversation_aside_until_its_time_or_the_customer(
    database_url: str, clock: ManualClock
) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "I will send the photo later"))
        conv_id = result.conversation_id
        await operator_writes(gw, tg, "anna", conv_id, "/snooze 2h")
        conv = await conversation(gw, conv_id)
        assert conv.status == ConversationStatus.SNOOZED
        assert set(await deadlines(gw, conv_id)) == {"wake"}  # no SLA while it sleeps
        refused = await operator_writes(gw, tg, "anna", conv_id, "/snooze soon")
        assert refused.ignored == "For how long? /snooze 2h (or 30m, 1d, 1h30m)."
        clock.advance(hours=2, minutes=1)
        assert await tick(gw) == 1
        conv = await conversation(gw, conv_id)
        assert conv.status == ConversationStatus.ASSIGNED and conv.snoozed_until is None
        assert tg.notes(conv_id)[-1] == ("⏰ Snooze over: back to Anna.", ("anna",))
        # a customer's message wakes it early
        await operator_writes(gw, tg, "anna", conv_id, "/snooze 1d")
        await gw.core.ingest(tg.customer_says("olga", "Here it is"))
        await settle(gw)
        conv = await conversation(gw, conv_id)
        assert conv.status == ConversationStatus.ASSIGNED
        assert tg.notes(conv_id)[-1] == (
            "💬 Woken early: the customer wrote: back to Anna.",
            ("anna",),
        )
        assert "wake" not in await deadlines(gw, conv_id)
        clock.advance(days=1, minutes=1)
        await tick(gw)  # the snooze it cut short never comes back
        assert sum(t.startswith("⏰ Snooze over") for t, _ in tg.notes(conv_id)) == 1


async def test_routing_follows_shifts_and_waits_for_the_next_one(
    database_url: str, clock: ManualClock
) -> None:
    text = config_text(database_url, extra=QUIET_SLA)
    text = text.replace(
        'name = "Anna"', 'name = "Anna"\nshifts = { mon-fri = "09:00-12:00" }'
    ).replace('name = "Boris"', 'name = "Boris"\nshifts = { mon-fri = "12:00-18:00" }')
    config = parse_config(text)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        morning = await gw.core.ingest(tg.customer_says("olga", "hi"))  # Monday 10:00 UTC
        assert (await conversation(gw, morning.conversation_id)).assignee_id == "anna"
        clock.set(utc(2026, 11, 23, 13))
        afternoon = await gw.core.ingest(tg.customer_says("petro", "hi"))
        assert (await conversation(gw, afternoon.conversation_id)).assignee_id == "boris"
        clock.set(utc(2026, 11, 23, 19))
        evening = await gw.core.ingest(tg.customer_says("ivan", "hi"))
        await settle(gw)
        assert tg.to_customer("chat-ivan")[-1] == "Hello!\n\nNobody is online."
        assert (await deadlines(gw, evening.conversation_id))["route"] == utc(2026, 11, 24, 9)
        clock.set(utc(2026, 11, 24, 9, 0, 1))
        await tick(gw)
        assert (await conversation(gw, evening.conversation_id)).assignee_id == "anna"


async def test_an_operator_away_too_long_has_their_chats_requeued(
    database_url: str, clock: ManualClock
) -> None:
    extra = QUIET_SLA.replace("[sla]", "[sla]\nfirst_response_minutes = 0")
    config = requeueing_config(database_url, extra)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        conv_id = result.conversation_id
        assert (await conversation(gw, conv_id)).assignee_id == "anna"
        # away and back within the grace time: nothing happens
        await operator_writes(gw, tg, "anna", conv_id, "/away")
        clock.advance(minutes=10)
        await operator_writes(gw, tg, "anna", conv_id, "/online")
        assert "requeue" not in await deadlines(gw, conv_id)
        await operator_writes(gw, tg, "anna", conv_id, "/away")
        clock.advance(minutes=14)
        assert await tick(gw) == 0
        clock.advance(minutes=2)
        assert await tick(gw) == 1
        conv = await conversation(gw, conv_id)
        assert conv.assignee_id == "boris"
        assert tg.to_customer("chat-olga")[-1] == "Boris will help you."
        assert any(
            "Anna has been away for 15 min: the conversation goes back to the queue." == text
            for text, _ in tg.notes(conv_id)
        )


async def test_deadlines_survive_a_restart_and_fire_once(
    sqlite_url: str, clock: ManualClock
) -> None:
    config = make_config(sqlite_url, extra=QUIET_SLA)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        for n in range(3):
            await gw.core.ingest(tg.customer_says(f"c{n}", "hello?"))
        await settle(gw)
    clock.advance(minutes=31)  # the gateway was down when the deadlines fell due
    restarted = make_config(sqlite_url, extra=QUIET_SLA, tick_seconds=0.05)
    tg2 = RecordingAdapter()
    async with running(restarted, tg2) as gw:
        # the scheduler's first tick, at start, catches up
        for _ in range(400):
            if len(await breaches(gw)) == 3 and not await gw.core.run_due():
                break
            await asyncio.sleep(0.02)
        await settle(gw)
        assert len(await breaches(gw)) == 3
        for conv in await all_conversations(gw):
            missed = [t for t, _ in tg2.notes(conv.id) if t.startswith("🚨")]
            # the reminder was overdue too; each deadline acted on once
            assert len(missed) == 1
            assert sum(t.startswith("⏰ Reminder") for t, _ in tg2.notes(conv.id)) == 1


async def test_several_processes_on_postgresql_act_on_each_deadline_once(
    postgres_url: str, clock: ManualClock
) -> None:
    config = make_config(postgres_url, max_chats=20, extra=QUIET_SLA)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        await asyncio.gather(
            *(gw.core.ingest(tg.customer_says(f"c{n}", "hello?")) for n in range(20))
        )
        await settle(gw)
    clock.advance(minutes=31)
    await migrate(postgres_url)
    first, second = RecordingAdapter(), RecordingAdapter()
    one = Gateway(config, plugins={}, adapters=[first], serve_http=False)
    two = Gateway(config, plugins={}, adapters=[second], serve_http=False)
    await one.start()
    await two.start()
    try:
        # both processes tick at start, and here again, at the same time; a row
        # another process holds is skipped, so keep ticking until no due row is left
        # (one held by a scheduler tick still in progress counts until it commits)
        for _ in range(200):
            await asyncio.gather(one.core.run_due(), two.core.run_due())
            async with one.repository.transaction() as tx:
                _, overdue, _ = await tx.deadline_summary(clock.now())
            if not overdue:
                break
            await asyncio.sleep(0.05)
        assert len(await breaches(one)) == 20
        async with one.repository.transaction() as tx:
            result = await tx.session.exec(
                select(Message.text).where(Message.direction == Direction.SYSTEM)
            )
            texts = list(result.all())
        # 20 reminders and 20 breaches, shared between the processes, none twice
        assert sum(t.startswith("🚨") for t in texts) == 20
        assert sum(t.startswith("⏰ Reminder") for t in texts) == 20
    finally:
        await one.stop()
        await two.stop()


async def test_a_failing_action_does_not_hold_back_the_deadlines_behind_it(
    database_url: str, clock: ManualClock
) -> None:
    config = make_config(database_url, extra="[sla]\nfirst_response_minutes = 0\n")
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("olga", "hi"))
        clock.advance(minutes=1)
        second = await gw.core.ingest(tg.customer_says("petro", "hi"))
        broken = first.conversation_id

        async def nudge_with_a_bug(tx, conversation) -> None:  # type: ignore[no-untyped-def]
            # stands in for a bug in one action, for one conversation
            if conversation.id == broken:
                raise RuntimeError("a bug in an action")
            await original(tx, conversation)

        original = gw.core.timers._actions["nudge"]
        gw.core.timers._actions["nudge"] = nudge_with_a_bug
        clock.advance(minutes=21)
        await tick(gw)
        update = tg.to_customer("chat-petro")[-1]
        assert update.startswith("We have not forgotten you")  # the one behind it went out
        due = await deadlines(gw, broken)
        assert due["nudge"] - clock.now() > timedelta(minutes=4)  # tried again later
        gw.core.timers._actions["nudge"] = original
        clock.advance(minutes=6)
        await tick(gw)
        assert tg.to_customer("chat-olga")[-1].startswith("We have not forgotten you")
        assert second.conversation_id != broken


async def test_a_further_message_while_the_customer_waits_reads_no_deadlines(
    database_url: str, clock: ManualClock
) -> None:
    """Its plan is the one committed for the first: the rows are not read again.
    Only a change the plan depends on plans it again: an operator's reply, and
    presence (which the conversation's own attributes do not show)."""
    sla = "[sla]\nfirst_response_minutes = 30\nnext_response_minutes = 30\n"
    sla += "customer_update_minutes = 20\n"
    config = requeueing_config(database_url, sla)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("olga", "My order is late"))
        conv_id = first.conversation_id
        await settle(gw)
        planned = await deadlines(gw, conv_id)
        assert set(planned) == {"sla_remind", "sla_breach", "nudge"}
        read: list[str] = []

        def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT") and "deadlines" in statement:
                read.append(statement)

        engine = gw.repository.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", note)
        try:
            clock.advance(minutes=5)
            await gw.core.ingest(tg.customer_says("olga", "Any news?"))
            await settle(gw)
            assert read == []
            assert await deadlines(gw, conv_id) == planned
            read.clear()
            # presence is not the conversation's: a change of it plans it again
            await operator_writes(gw, tg, "anna", conv_id, "/away")
            await settle(gw)
            away = await deadlines(gw, conv_id)
            assert set(away) == {*planned, "requeue"}
            await operator_writes(gw, tg, "anna", conv_id, "/online")
            await settle(gw)
            assert await deadlines(gw, conv_id) == planned
            read.clear()
            await operator_writes(gw, tg, "anna", conv_id, "Checking it now")
            await settle(gw)
            assert read
            # answered: nothing is due but closing it if the customer stays silent
            assert set(await deadlines(gw, conv_id)) == {"auto_close"}
        finally:
            event.remove(engine, "before_cursor_execute", note)
