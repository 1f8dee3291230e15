"""Deliveries under Telegram's real limits, against the sandbox with its limits on:
customers never wait behind the operators' group, the gateway's own pacing meets
no 429, a bot-wide 429 holds every chat, and operators' command answers arrive."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from gateway.events import Inbound, Sender
from sandbox.telegram import Limits
from storage import OutboxRow, OutboxStatus
from tests.telegram_support import Desk, eventually, telegram_desk

GREETING = "will help you"


async def workspace_backlog(desk: Desk) -> int:
    """Deliveries to the operators' group not made yet."""
    async with desk.gateway.repository.transaction() as tx:
        result = await tx.session.exec(
            select(func.count()).where(
                col(OutboxRow.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
                col(OutboxRow.chat_key).like("conversation:%"),
            )
        )
        return int(result.one())


@pytest.mark.long
async def test_customers_are_answered_while_the_group_is_throttled(sqlite_url: str) -> None:
    """Two dozen customers write at once: their topics, cards and copies are some
    seventy messages, minutes of the group's 20 a minute. Their greetings, and an
    operator's reply in the first topic, reach them while that backlog is still
    there. With few sends at a time (concurrency 2), a claim that looked only at the
    oldest rows found the group's, which could not go, and the reply waited for
    minutes."""
    async with telegram_desk(sqlite_url, limits=Limits(), concurrency=2) as desk:
        customers = [desk.sandbox.add_user(f"Customer{n:02d}") for n in range(24)]
        for customer in customers:
            desk.sandbox.send(customer, f"help, I am {customer['first_name']}")
        await eventually(
            lambda: all(
                any(GREETING in t or "in line" in t for t in desk.to_customer(c)) for c in customers
            )
        )
        assert await workspace_backlog(desk) > 0  # greeted while the group was behind
        first = await eventually(lambda: desk.topics()[0])
        customer = next(c for c in customers if c["first_name"] in first["name"])
        desk.sandbox.send(
            desk.anna,
            "On it, one moment.",
            chat_id=desk.workspace,
            thread_id=first["message_thread_id"],
        )
        await eventually(lambda: any("On it, one moment." in t for t in desk.to_customer(customer)))
        assert await workspace_backlog(desk) > 0  # the reply overtook the backlog
        assert desk.sandbox.world.stats.rate_limited == 0


@pytest.mark.long
async def test_a_storm_meets_no_429_and_every_message_arrives_once_in_order(
    sqlite_url: str,
) -> None:
    """Nine customers write two messages each at once, some thirty sends to the
    group with their topics and cards: everything reaches it, in order per topic, at
    the pace Telegram allows (20 in any minute in the group, 1 a second per chat),
    so the sandbox never has to refuse one."""
    async with telegram_desk(sqlite_url, limits=Limits()) as desk:
        customers = [desk.sandbox.add_user(f"Storm{n}") for n in range(9)]
        for n in range(2):
            for customer in customers:
                desk.sandbox.send(customer, f"{customer['first_name']} message {n}")

        def copies(name: str) -> list[str]:
            return [
                m["text"]
                for m in desk.in_topic(desk.topic_of(name))
                if (m.get("text") or "").startswith(name)
            ]

        for customer in customers:
            name = customer["first_name"]
            expected = [f"{name} message {n}" for n in range(2)]
            await eventually(lambda name=name, expected=expected: copies(name) == expected)
        stats = desk.sandbox.world.stats
        assert stats.rate_limited == 0
        assert stats.early_retries == 0


async def test_a_bot_wide_429_holds_every_chat_until_its_retry_after(sqlite_url: str) -> None:
    """Telegram holds the whole bot (another process sends as the same bot, or the
    bot's limit is lower than the gateway was told): the 429 answered to one chat's
    message is read as the bot's, and no chat sends before it runs out. One send at
    a time: a call already on its way when the 429 came cannot be recalled, and
    would count as early without saying anything of the gateway."""
    async with telegram_desk(sqlite_url, limits=Limits(), concurrency=1) as desk:
        first = desk.sandbox.add_user("First")
        desk.sandbox.send(first, "hello")
        await eventually(lambda: any(GREETING in t for t in desk.to_customer(first)))
        desk.sandbox.inject("flood", method="sendMessage", delay=2)
        customers = [desk.sandbox.add_user(f"Wide{n}") for n in range(4)]
        for customer in customers:
            desk.sandbox.send(customer, "hello")
        for customer in customers:
            await eventually(
                lambda customer=customer: any(
                    GREETING in t or "in line" in t for t in desk.to_customer(customer)
                )
            )
        stats = desk.sandbox.world.stats
        assert stats.rate_limited_by_scope["global"] == 1  # the bot was held
        assert stats.early_retries == 0  # and nothing came back before its time


@pytest.mark.long
async def test_an_operators_command_is_answered_while_the_group_is_full(sqlite_url: str) -> None:
    """/status typed while the group's minute is used up waits for room and comes;
    before, its answer met a 429 and was dropped without a word."""
    async with telegram_desk(sqlite_url, limits=Limits()) as desk:
        customers = [desk.sandbox.add_user(f"Busy{n}") for n in range(8)]
        for customer in customers:
            desk.sandbox.send(customer, "hi there")
        await eventually(lambda: len(desk.topics()) >= 3)
        desk.sandbox.send(desk.anna, "/status", chat_id=desk.workspace)
        await eventually(
            lambda: any(
                "Queue:" in (m.get("text") or "") for m in desk.sandbox.received(desk.workspace)
            )
        )
        assert desk.sandbox.world.stats.rate_limited == 0


async def test_a_very_long_text_reaches_the_topic_as_a_preview_and_a_file(
    sqlite_url: str,
) -> None:
    """A 200 KB text (a mail with its history) was 55 messages: minutes of the
    group's 20 a minute, 429s, and every other customer waiting behind it. Now its
    start, and all of it as a file; the next customer's message follows at once."""
    async with telegram_desk(sqlite_url, limits=Limits()) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hello")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        text = " ".join(f"line {n} of the long mail history." for n in range(6_000))
        assert len(text) > 200_000
        await desk.gateway.core.ingest(
            Inbound(
                channel="telegram",
                event_id="long-1",
                chat_id=str(olga["id"]),
                sender=Sender(external_id=str(olga["id"]), display_name="Olga"),
                text=text,
            )
        )
        petr = desk.sandbox.add_user("Petr")
        desk.sandbox.send(petr, "me too")

        def document() -> dict:
            return next(m for m in desk.in_topic(thread) if m.get("document"))

        shown = await eventually(document)
        stored = desk.sandbox.world.files[shown["document"]["file_id"]]
        assert stored.data == text.encode()
        previews = [m["text"] for m in desk.in_topic(thread) if "line 0 of" in m.get("text", "")]
        assert len(previews) == 1 and len(previews[0]) < 4096
        await eventually(lambda: desk.topic_of("Petr"))
        assert desk.sandbox.world.stats.rate_limited == 0
