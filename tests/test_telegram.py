"""Telegram end to end: the sandbox as Telegram, real aiogram, the real gateway."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import ClientDecodeError, TelegramBadRequest
from aiogram.methods import SendDocument, SendMessage
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)
from aiohttp.payload import JsonPayload

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.session import JsonSession
from gateway.app import Gateway
from gateway.history import link_customers
from gateway.privacy import erase_customer, export_customer, removal_outcomes
from sandbox.telegram import Limits, TelegramSandbox
from storage import Direction
from tests.support import conversation, messages, migrate, settle
from tests.telegram_support import desk_config, eventually, telegram_desk


async def test_a_customer_writes_operators_see_a_topic_and_anna_answers(
    database_url: str,
) -> None:
    async with telegram_desk(database_url) as desk:
        olga = desk.sandbox.add_user("Olga", username="olga", language_code="en")
        desk.sandbox.send(
            olga, "My parcel is late", entities=[{"type": "bold", "offset": 3, "length": 6}]
        )
        thread = await eventually(lambda: desk.topic_of("Olga"))
        header = await eventually(lambda: desk.in_topic(thread)[0])
        assert "Olga" in header["text"] and "@olga" in header["text"]
        assert [b["callback_data"] for b in header["reply_markup"]["inline_keyboard"][0]] == [
            "claim",
            "close",
            "transfer",
        ]
        # the customer's message is copied in, formatting and all
        copied = await eventually(
            lambda: next(m for m in desk.in_topic(thread) if m.get("text") == "My parcel is late")
        )
        assert copied["entities"][0]["type"] == "bold"
        await eventually(lambda: desk.to_customer(olga)[:1] == ["Hello!\n\nAnna will help you."])
        await eventually(lambda: desk.topics()[0]["name"].startswith("🟢 Olga"))

        desk.sandbox.send(
            desk.anna, "Hi Olga, checking now.", chat_id=desk.workspace, thread_id=thread
        )
        reply = await eventually(
            lambda: next(
                m for m in desk.sandbox.received(olga["id"]) if "checking now" in m["text"]
            )
        )
        assert reply["text"] == "<b>Anna</b>\nHi Olga, checking now."


async def test_every_message_type_reaches_the_topic(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        send = desk.sandbox.send
        send(olga, "hello")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        for media in KINDS[:8]:  # the media kinds
            send(
                olga,
                media=media,
                caption=f"a {media}" if media != "sticker" else None,
                file_name="file.bin" if media == "document" else None,
            )
        send(olga, fields={"location": {"latitude": 52.52, "longitude": 13.405}})
        send(
            olga,
            fields={
                "venue": {
                    "location": {"latitude": 1.0, "longitude": 2.0},
                    "title": "Office",
                    "address": "Main St 1",
                }
            },
        )
        send(olga, fields={"contact": {"phone_number": "+100200", "first_name": "Olga"}})
        send(olga, fields=_poll("p1", "Which?", ["A", "B"], "regular"))
        send(olga, fields={"dice": {"emoji": "🎲", "value": 4}})
        send(olga, fields={"game": {"title": "A game", "description": "d", "photo": []}})
        await eventually(lambda: len(desk.in_topic(thread)) >= 1 + 1 + 8 + 6)
        kinds = {k for m in desk.in_topic(thread) for k in m if k in KINDS}
        assert kinds == set(KINDS)

        async def inbound_texts() -> list[str]:
            return [m.text for m in await messages(desk.gateway, 1) if m.direction == "in"]

        await eventually(lambda: _has(inbound_texts(), "🎮 Game: A game"))
        stored = await messages(desk.gateway, 1)
        texts = [m.text for m in stored if m.direction == Direction.IN]
        assert "📍 Location: 52.52000, 13.40500" in texts
        assert "📇 Contact: Olga, +100200" in texts
        assert "📊 Poll: Which? (A / B)" in texts
        assert "🎲 rolled 4" in texts
        assert "🎮 Game: A game\nd" in texts
        photo = next(m for m in stored if m.attachments and m.attachments[0]["kind"] == "photo")
        assert photo.text == "a photo" and photo.attachments[0]["size"] == 2048


def _poll(poll_id: str, question: str, options: list[str], kind: str) -> dict:
    """A customer's poll, as the Bot API gives it."""
    return {
        "poll": {
            "id": poll_id,
            "question": question,
            "options": [{"text": o, "voter_count": 0, "persistent_id": o.lower()} for o in options],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": kind,
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
    }


UNCOPYABLE = {
    "invoice": (
        {
            "invoice": {
                "title": "Order 42",
                "description": "Two chairs",
                "start_parameter": "x",
                "currency": "EUR",
                "total_amount": 12550,
            }
        },
        ["🧾 Invoice: Order 42 (125.50 EUR)", "Two chairs"],
    ),
    "checklist": (
        {
            "checklist": {
                "title": "Before the visit",
                "tasks": [{"id": 1, "text": "Bring the receipt"}, {"id": 2, "text": "Call first"}],
            }
        },
        ["☑ Checklist: Before the visit", "• Bring the receipt", "• Call first"],
    ),
    "paid media": (
        {"paid_media": {"star_count": 50, "paid_media": [{"type": "preview"}]}, "caption": "look"},
        ["💰 Paid media: 1 item(s) for 50 ⭐", "look"],
    ),
    "story": (
        {"story": {"chat": {"id": 5, "type": "channel", "username": "shop"}, "id": 7}},
        ["📖 Story 7: https://t.me/shop/s/7"],
    ),
    "quiz": (
        _poll("q1", "Capital?", ["Rome", "Oslo"], "quiz"),
        ["📊 Quiz: Capital? (Rome / Oslo)"],
    ),
}


async def test_kinds_telegram_will_not_copy_reach_the_topic_as_faithful_text(
    sqlite_url: str,
) -> None:
    """Telegram refuses to copy an invoice, a checklist, paid media, a story or a
    quiz: each reaches the topic as text with what it has to show, in order with
    the messages around it, where before its copy failed for good and operators saw
    nothing."""
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hello")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        for fields, _lines in UNCOPYABLE.values():
            desk.sandbox.send(olga, fields=fields)
        desk.sandbox.send(olga, "after them")

        def texts() -> list[str]:
            return [m.get("text") or "" for m in desk.in_topic(thread)]

        await eventually(lambda: "after them" in texts())
        shown = texts()
        for kind, (_fields, lines) in UNCOPYABLE.items():
            found = [t for t in shown if all(line in t for line in lines)]
            assert found, f"{kind} not shown: {shown}"
        assert shown[-1] == "after them"  # in order, none left behind
        assert not any("Not shown" in t for t in shown)


async def test_a_forward_shows_where_it_came_from(sqlite_url: str) -> None:
    """A copy would drop Telegram's "Forwarded from" line: operators would take the
    forwarded words for the customer's own."""
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hello")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        origin = {"type": "user", "date": 1, "sender_user": desk.sandbox.add_user("Shop Bot")}
        desk.sandbox.send(olga, "Your order ships Monday", fields={"forward_origin": origin})
        channel = {"id": -100777, "type": "channel", "title": "Shop news", "username": "shopnews"}
        desk.sandbox.send(
            olga,
            "Sale!",
            fields={
                "forward_origin": {"type": "channel", "date": 1, "chat": channel, "message_id": 9}
            },
        )
        texts = lambda: [m.get("text") or "" for m in desk.in_topic(thread)]  # noqa: E731
        await eventually(lambda: any("Sale!" in t for t in texts()))
        for shown in (
            "↪ Forwarded from Shop Bot\nYour order ships Monday",
            "↪ Forwarded from Shop news https://t.me/shopnews/9\nSale!",
        ):
            assert any(shown in t for t in texts()), texts()


async def test_replies_keep_their_context_both_ways(sqlite_url: str) -> None:
    """A customer answering the copy of an operator's question: in the topic, the
    copy answers the question. An operator answering a customer's message in the
    topic: the customer sees it as an answer to their own message. A reply to what
    never reached the other side is quoted, except what operators keep to
    themselves."""
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hello")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        in_topic = {"chat_id": desk.workspace, "thread_id": thread}
        question = desk.sandbox.send(desk.anna, "Your order number?", **in_topic)

        def to_olga(text: str) -> dict:
            return next(
                m for m in desk.sandbox.received(olga["id"]) if text in (m.get("text") or "")
            )

        copy = await eventually(lambda: to_olga("Your order number?"))
        answer = desk.sandbox.send(olga, "It is 42", reply_to=copy)

        def in_thread(text: str) -> dict:
            return next(m for m in desk.in_topic(thread) if text in (m.get("text") or ""))

        copied = await eventually(lambda: in_thread("It is 42"))
        assert copied["reply_to_message"]["message_id"] == question["message_id"]
        desk.sandbox.send(desk.anna, "Thanks, found it", reply_to=copied, **in_topic)
        thanks = await eventually(lambda: to_olga("Thanks, found it"))
        assert thanks["reply_to_message"]["message_id"] == answer["message_id"]
        # a note is never quoted to the customer; the customer's own words are
        note = desk.sandbox.send(desk.anna, "/note she is a VIP", **in_topic)
        desk.sandbox.send(desk.anna, "Noted", reply_to=note, **in_topic)
        noted = await eventually(lambda: to_olga("Noted"))
        assert "VIP" not in noted["text"] and "reply_to_message" not in noted


async def test_a_message_that_cannot_be_shown_in_the_topic_says_so_there(
    sqlite_url: str,
) -> None:
    """A copy the group refuses for good (here: Telegram answers 400 to it) is not
    dropped in silence: operators see what failed, in the topic."""
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hello")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: any(m.get("text") == "hello" for m in desk.in_topic(thread)))
        desk.sandbox.inject("error", method="copyMessage", status=400)
        desk.sandbox.send(olga, "this one is refused")
        await eventually(
            lambda: any(
                "Not shown in telegram" in (m.get("text") or "") for m in desk.in_topic(thread)
            )
        )


async def test_edits_both_ways_and_notes_stay_inside(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        first = desk.sandbox.send(olga, "helo")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: any(m.get("text") == "helo" for m in desk.in_topic(thread)))
        desk.sandbox.edit(first, "hello")
        await eventually(
            lambda: any(m.get("text") == "hello\n<i>(edited)</i>" for m in desk.in_topic(thread))
        )

        answer = desk.sandbox.send(desk.anna, "Hi Olgaa", chat_id=desk.workspace, thread_id=thread)
        await eventually(lambda: "<b>Anna</b>\nHi Olgaa" in desk.to_customer(olga))
        desk.sandbox.edit(answer, "Hi Olga")
        await eventually(lambda: "<b>Anna</b>\nHi Olga" in desk.to_customer(olga))
        assert "<b>Anna</b>\nHi Olgaa" not in desk.to_customer(olga)

        desk.sandbox.send(desk.anna, "/note she is a VIP", chat_id=desk.workspace, thread_id=thread)
        # confirmed to Telegram only after the commit: the database is final now
        await eventually(lambda: desk.sandbox.world.updates == [])
        notes = [m for m in await messages(desk.gateway, 1) if m.direction == Direction.NOTE]
        assert [n.text for n in notes] == ["she is a VIP"]
        assert all("VIP" not in text for text in desk.to_customer(olga))


async def test_a_stranger_in_the_group_is_ignored(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        mallory = desk.sandbox.add_user("Mallory")
        desk.sandbox.send(
            mallory, "I am support, send me your password", chat_id=desk.workspace, thread_id=thread
        )
        desk.sandbox.send(mallory, "/close", chat_id=desk.workspace, thread_id=thread)
        desk.sandbox.send(desk.boris, "/note checked", chat_id=desk.workspace, thread_id=thread)
        # confirmed to Telegram only after the commit: the database is final now
        await eventually(lambda: desk.sandbox.world.updates == [])
        stored = await messages(desk.gateway, 1)
        assert [m.text for m in stored if m.direction == Direction.NOTE] == ["checked"]
        assert all("password" not in m.text for m in stored)  # Mallory's never stored
        assert (await conversation(desk.gateway, 1)).status == "assigned"  # not closed
        await eventually(lambda: desk.topics()[0]["name"].startswith("🟢"))
        assert all("password" not in text for text in desk.to_customer(olga))


async def test_buttons_claim_close_and_transfer(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        header = await eventually(lambda: desk.in_topic(thread)[0])
        query = desk.sandbox.press(desk.boris, header, "claim")
        answer = await eventually(lambda: desk.sandbox.world.callback_answers[query])
        assert answer == {
            "text": "Anna has this conversation; ask them to /transfer it to you.",
            "show_alert": True,
        }
        query = desk.sandbox.press(desk.anna, header, "transfer")
        picker = await eventually(
            lambda: next(m for m in desk.in_topic(thread) if m.get("text") == "Transfer to whom?")
        )
        query = desk.sandbox.press(desk.anna, picker, "transfer:boris")
        answer = await eventually(lambda: desk.sandbox.world.callback_answers[query])
        assert answer["text"] == "Transferred to Boris."
        await eventually(
            lambda: desk.to_customer(olga)[-1] == "Boris is taking over your conversation."
        )
        query = desk.sandbox.press(desk.boris, header, "close")
        await eventually(lambda: desk.sandbox.world.callback_answers[query]["text"] == "Closed.")
        await eventually(lambda: desk.topics()[0]["name"].startswith("✅"))
        await eventually(
            lambda: (
                desk.in_topic(thread)[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
                == "reopen"
            )
        )


async def test_a_blocked_bot_is_reported_in_the_topic(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        desk.sandbox.block_bot(olga)
        desk.sandbox.send(desk.anna, "Are you there?", chat_id=desk.workspace, thread_id=thread)
        await eventually(
            lambda: any(
                "Not delivered: the customer blocked the bot" in (m.get("text") or "")
                for m in desk.in_topic(thread)
            )
        )


async def test_a_deleted_topic_is_recreated_when_needed(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        desk.sandbox.delete_topic(desk.workspace, thread)
        desk.sandbox.send(olga, "still there?")
        new_thread = await eventually(lambda: desk.topic_of("Olga"))
        assert new_thread != thread
        await eventually(
            lambda: any(m.get("text") == "still there?" for m in desk.in_topic(new_thread))
        )
        # the new topic gets a full header again
        await eventually(
            lambda: any(
                "Channel: telegram" in (m.get("text") or "") for m in desk.in_topic(new_thread)
            )
        )


async def test_a_topic_opens_with_the_first_message_and_one_that_fails_there_goes_alone(
    sqlite_url: str,
) -> None:
    """The topic, its card and the customer's first message go in one delivery. When
    the copy fails there, the topic and card stand: the message follows on its own,
    once, and one refused for good fails alone, leaving the topic to the next."""
    # limits that let a topic's three calls go at once (throttled, it carries nothing)
    roomy = "chat_messages_per_second = 100\ngroup_messages_per_minute = 10000"
    async with telegram_desk(sqlite_url, extra=roomy) as desk:
        desk.sandbox.inject("error", method="copyMessage", status=502)
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "My parcel is late")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(
            lambda: any(m.get("text") == "My parcel is late" for m in desk.in_topic(thread))
        )
        texts = [m.get("text") or "" for m in desk.in_topic(thread)]
        assert "Olga" in texts[0]  # the card first
        assert texts.count("My parcel is late") == 1
        assert len(desk.topics()) == 1

        desk.sandbox.inject("error", method="copyMessage", status=400, times=2)
        petr = desk.sandbox.add_user("Petr")
        desk.sandbox.send(petr, "lost one")
        petrs = await eventually(lambda: desk.topic_of("Petr"))
        await eventually(lambda: not desk.sandbox.faults.pending)  # carried, then alone
        desk.sandbox.send(petr, "next one")
        await eventually(lambda: any(m.get("text") == "next one" for m in desk.in_topic(petrs)))
        texts = [m.get("text") or "" for m in desk.in_topic(petrs)]
        assert "Petr" in texts[0] and "lost one" not in texts
        assert len(desk.topics()) == 2


KINDS = (
    "photo",
    "document",
    "video",
    "animation",
    "audio",
    "voice",
    "video_note",
    "sticker",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_webhook_mode_checks_the_secret(sqlite_url: str) -> None:
    port = free_port()
    extra = (
        f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/telegram/webhook"\n'
        'webhook_secret = "webhook-secret-123"'
    )
    async with telegram_desk(sqlite_url, extra=extra, http_port=port) as desk:
        async with aiohttp.ClientSession() as http:
            forged = {
                "update_id": 999,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 5, "type": "private", "first_name": "X"},
                    "from": {"id": 5, "is_bot": False, "first_name": "X"},
                    "text": "forged",
                },
            }
            async with http.post(
                f"http://127.0.0.1:{port}/telegram/webhook",
                json=forged,
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            ) as reply:
                assert reply.status == 401
            async with http.post(
                f"http://127.0.0.1:{port}/telegram/webhook",
                data=b"{not json",
                headers={"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-123"},
            ) as reply:
                assert reply.status == 400
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "via webhook")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: any(m.get("text") == "via webhook" for m in desk.in_topic(thread)))
        stored = await messages(desk.gateway, 1)
        assert "forged" not in [m.text for m in stored]


async def test_an_album_over_webhooks_stays_one_message_and_one_album(sqlite_url: str) -> None:
    # webhooks bring an album's parts one request at a time, each committed alone; and
    # the gateway serves the path of webhook_url, whatever it is, without webhook_path
    port = free_port()
    extra = (
        f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/support/tg-updates"\n'
        'webhook_secret = "webhook-secret-123"'
    )
    async with telegram_desk(sqlite_url, extra=extra, http_port=port) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        for n in range(3):
            desk.sandbox.send(
                olga,
                media="photo",
                media_group_id="album-7",
                caption="scratches" if n == 0 else None,
            )
        await eventually(
            lambda: len([m for m in desk.in_topic(thread) if m.get("media_group_id")]) == 3
        )
        copies = [m for m in desk.in_topic(thread) if m.get("media_group_id")]
        assert len({m["media_group_id"] for m in copies}) == 1  # one album in the topic
        stored = [m for m in await messages(desk.gateway, 1) if m.direction == Direction.IN]
        assert [m.text for m in stored] == ["hi", "scratches"]
        assert [a["kind"] for a in stored[-1].attachments] == ["photo"] * 3
        assert desk.sandbox.webhook_deliveries >= 4


@pytest.mark.parametrize("customers", [2])
async def test_with_telegram_limits_on_nothing_is_lost_or_sent_twice(
    sqlite_url: str, customers: int
) -> None:
    async with telegram_desk(sqlite_url, limits=Limits()) as desk:
        people = [desk.sandbox.add_user(f"Customer{n}") for n in range(customers)]
        for n, person in enumerate(people):
            for m in range(2):
                desk.sandbox.send(person, f"c{n} m{m}")
        for n in range(customers):
            await eventually(lambda n=n: desk.topic_of(f"Customer{n}"), limit=120)
        for n, person in enumerate(people):
            thread = desk.topic_of(f"Customer{n}")
            await eventually(
                lambda t=thread, n=n: (
                    [
                        m.get("text")
                        for m in desk.in_topic(t)
                        if (m.get("text") or "").startswith("c")
                    ]
                    == [f"c{n} m0", f"c{n} m1"]
                ),
                limit=120,
            )
            await eventually(
                lambda p=person: desk.to_customer(p)[-1].endswith("help you."), limit=120
            )
        stats = desk.sandbox.world.stats
        assert stats.early_retries == 0  # every retry_after was honoured
        # one topic per customer: a 429 in the middle of opening one never opens two
        assert sorted(t["name"] for t in desk.topics()) == [
            f"🟢 Customer{n} #{n + 1}" for n in range(customers)
        ]


async def _has(texts, prefix: str) -> bool:
    return any(t.startswith(prefix) for t in await texts)


class CrashingTelegram(TelegramAdapter):
    """Dies (like a killed process) after committing ``survive`` updates of a batch."""

    def __init__(self, *args, survive: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.survive = survive

    async def handle(self, update) -> None:
        if self.survive == 0:
            raise asyncio.CancelledError  # the process is gone, mid-batch
        await super().handle(update)
        self.survive -= 1


async def test_a_crash_in_the_middle_of_a_polling_batch_loses_and_doubles_nothing(
    database_url: str,
) -> None:
    async with TelegramSandbox(limits=Limits(enabled=False)) as sandbox:
        forum = sandbox.add_forum()
        anna, boris = sandbox.add_user("Anna"), sandbox.add_user("Boris")
        config = desk_config(sandbox, forum, anna, boris, database_url)
        await migrate(database_url)
        olga = sandbox.add_user("Olga")
        for n in range(5):
            sandbox.send(olga, f"message {n}")

        crashing = CrashingTelegram(config.channels["telegram"], config, survive=2)
        first = Gateway(config, plugins={}, adapters=[crashing], serve_http=False)
        await first.start()
        await eventually(lambda: crashing._leading is not None and crashing._leading.done())
        await first.stop()
        assert len(sandbox.world.updates) == 5  # nothing was acknowledged to Telegram

        second = Gateway(config, serve_http=False)
        await second.start()
        try:
            thread = await eventually(lambda: desk_topic(sandbox, forum, "Olga"))
            await eventually(
                lambda: (
                    [
                        m.get("text")
                        for m in sandbox.received(forum["id"], thread)
                        if (m.get("text") or "").startswith("message")
                    ]
                    == [f"message {n}" for n in range(5)]
                )
            )
            await eventually(lambda: sandbox.world.updates == [])
            stored = [m.text for m in await messages(second, 1) if m.direction == Direction.IN]
            assert stored == [f"message {n}" for n in range(5)]
            assert len(sandbox.topics(forum["id"])) == 1
        finally:
            await second.stop()


class StumblingTelegram(TelegramAdapter):
    """Fails once on one update (a passing fault), and notes the order it takes them."""

    def __init__(self, *args, stumble_on: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stumble_on = stumble_on
        self.taken: list[str] = []

    async def handle(self, update) -> None:
        text = update.message.text if update.message else ""
        self.taken.append(text)
        if text == self.stumble_on and self.taken.count(text) == 1:
            raise RuntimeError("a passing fault")
        await super().handle(update)


async def test_a_polling_batch_takes_chats_side_by_side_each_in_order(sqlite_url: str) -> None:
    """One update that fails holds back its own chat (in order, nothing twice), not
    the other customers in the same batch."""
    async with TelegramSandbox(limits=Limits(enabled=False)) as sandbox:
        forum = sandbox.add_forum()
        anna, boris = sandbox.add_user("Anna"), sandbox.add_user("Boris")
        config = desk_config(sandbox, forum, anna, boris, sqlite_url)
        olga, petro = sandbox.add_user("Olga"), sandbox.add_user("Petro")
        for user, text in [
            (olga, "olga 0"),
            (olga, "olga 1"),
            (petro, "petro 0"),
            (olga, "olga 2"),
            (petro, "petro 1"),
            (petro, "petro 2"),
        ]:
            sandbox.send(user, text)

        adapter = StumblingTelegram(config.channels["telegram"], config, stumble_on="olga 1")
        gateway = Gateway(config, plugins={}, adapters=[adapter], serve_http=False)
        await gateway.start()
        try:
            for name in ("Olga", "Petro"):
                thread = await eventually(lambda name=name: desk_topic(sandbox, forum, name))
                await eventually(
                    lambda name=name, thread=thread: (
                        [
                            m.get("text")
                            for m in sandbox.received(forum["id"], thread)
                            if (m.get("text") or "").startswith(name.lower())
                        ]
                        == [f"{name.lower()} {n}" for n in range(3)]
                    )
                )
            # Petro's lane went on while Olga's waited for its retry
            retried = adapter.taken.index("olga 1", adapter.taken.index("olga 1") + 1)
            assert {"petro 0", "petro 1", "petro 2"} <= set(adapter.taken[:retried])
            assert "olga 2" not in adapter.taken[: adapter.taken.index("olga 1") + 1]
            await eventually(lambda: sandbox.world.updates == [])
        finally:
            await gateway.stop()


def desk_topic(sandbox: TelegramSandbox, forum: dict, name: str) -> int:
    return next(t["message_thread_id"] for t in sandbox.topics(forum["id"]) if name in t["name"])


async def test_an_album_stays_one_message_and_one_album(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        for n, media in enumerate(("photo", "photo", "video")):
            desk.sandbox.send(
                olga,
                media=media,
                media_group_id="album-1",
                caption="the damage" if n == 0 else None,
            )
        copies = await eventually(
            lambda: [m for m in desk.in_topic(thread) if m.get("media_group_id")]
        )
        await eventually(
            lambda: len([m for m in desk.in_topic(thread) if m.get("media_group_id")]) == 3
        )
        copies = [m for m in desk.in_topic(thread) if m.get("media_group_id")]
        assert len({m["media_group_id"] for m in copies}) == 1  # still one album
        stored = [m for m in await messages(desk.gateway, 1) if m.direction == Direction.IN]
        album = stored[-1]
        assert album.text == "the damage"
        assert [a["kind"] for a in album.attachments] == ["photo", "photo", "video"]


async def test_an_album_split_over_two_polls_arrives_whole(sqlite_url: str) -> None:
    """The first photo comes in one getUpdates batch, the other two in the next: the
    two later parts join the first as one message, and all three reach the topic as
    one album (the second batch's last part was lost: only its first id was kept)."""
    async with telegram_desk(sqlite_url) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        desk.sandbox.send(olga, media="photo", media_group_id="split", caption="three photos")
        await eventually(lambda: desk.sandbox.world.updates == [])  # taken in a batch of one
        for _ in range(2):
            desk.sandbox.send(olga, media="photo", media_group_id="split")

        def album() -> list[dict]:
            return [m for m in desk.in_topic(thread) if m.get("media_group_id")]

        await eventually(lambda: len(album()) == 3)
        assert len({m["media_group_id"] for m in album()}) == 1
        stored = [m for m in await messages(desk.gateway, 1) if m.direction == Direction.IN]
        assert [a["kind"] for a in stored[-1].attachments] == ["photo"] * 3


async def test_status_and_presence_from_the_general_topic(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        general = {"chat_id": desk.workspace}
        desk.sandbox.send(desk.boris, "/away", **general)
        await eventually(
            lambda: any(
                "You are away." in (m.get("text") or "")
                for m in desk.sandbox.received(desk.workspace)
            )
        )
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "hi")
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        desk.sandbox.send(desk.anna, "/status", **general)
        answer = await eventually(
            lambda: next(
                m["text"]
                for m in desk.sandbox.received(desk.workspace)
                if "Queue:" in (m.get("text") or "")
            )
        )
        assert answer == "✅ Queue: nobody waiting.\nOnline: Anna 1/3.\nAway: Boris 0/3."
        # chatter in the general topic is not a conversation
        desk.sandbox.send(desk.anna, "coffee anyone?", **general)
        await eventually(lambda: desk.sandbox.world.updates == [])
        assert len(desk.topics()) == 1


async def test_a_bot_without_topic_rights_says_what_to_fix(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with TelegramSandbox(limits=Limits(enabled=False)) as sandbox:
        forum = sandbox.add_forum(bot_is_admin=False)
        anna, boris = sandbox.add_user("Anna"), sandbox.add_user("Boris")
        config = desk_config(sandbox, forum, anna, boris, sqlite_url)
        await migrate(sqlite_url)
        gateway = Gateway(config, serve_http=False)
        await gateway.start()
        try:
            olga = sandbox.add_user("Olga")
            sandbox.send(olga, "hi")
            # the customer is still answered
            await eventually(
                lambda: (
                    [m["text"] for m in sandbox.received(olga["id"])]
                    == ["Hello!\n\nAnna will help you."]
                )
            )
            await eventually(
                lambda: "the bot an admin with the 'Manage topics' right" in caplog.text
            )
        finally:
            await gateway.stop()


async def test_a_backlog_in_the_group_is_coalesced_not_minutes_behind(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url, limits=Limits()) as desk:
        olga = desk.sandbox.add_user("Olga")
        desk.sandbox.send(olga, "first")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(
            lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga), limit=60
        )
        calls_before = desk.sandbox.world.stats.sent_per_chat[desk.workspace]
        texts = [f"line {n}" for n in range(12)]
        for text in texts:
            desk.sandbox.send(olga, text)
        await eventually(
            lambda: (
                [
                    m.get("text")
                    for m in desk.in_topic(thread)
                    if (m.get("text") or "").startswith("line")
                ]
                == texts
            ),
            limit=120,
        )
        calls = desk.sandbox.world.stats.sent_per_chat[desk.workspace] - calls_before
        assert calls < len(texts) / 2  # 12 messages in a handful of calls
        assert desk.sandbox.world.stats.rate_limited == 0
        assert desk.sandbox.world.stats.early_retries == 0


SHARDS = ["222222222:shard-two", "333333333:shard-three"]


@pytest.mark.long
async def test_workspace_bots_share_the_group_and_each_keeps_its_topics(sqlite_url: str) -> None:
    """With telegram.workspace_bots, conversations' topics are spread over the bots
    (each bot has its own 20 messages a minute in the group). A topic's bot posts its
    card and the customer's texts; the customer's media, which only the main bot can
    copy, and everything to the customer go through the main bot; a press of a
    button reaches the bot that posted it and is answered by it."""
    async with TelegramSandbox(limits=Limits(enabled=False)) as sandbox:
        for token in SHARDS:
            sandbox.add_bot(token)
        extra = "workspace_bots = [" + ", ".join(f'"{t}"' for t in SHARDS) + "]"
        async with telegram_desk(sqlite_url, sandbox=sandbox, extra=extra) as desk:
            people = [sandbox.add_user(f"Customer{n}") for n in range(8)]
            for n, person in enumerate(people):
                sandbox.send(person, f"c{n} first")
                sandbox.send(person, f"c{n} second")
            world = sandbox.world
            for n in range(len(people)):
                thread = await eventually(lambda n=n: desk.topic_of(f"Customer{n}"))
                await eventually(
                    lambda t=thread, n=n: (
                        "\n".join(m.get("text") or "" for m in desk.in_topic(t)).count(f"c{n} ")
                        == 2
                    )
                )
            owners = {
                topic["message_thread_id"]: world.messages[desk.workspace][
                    topic["message_thread_id"]
                ]["from"]["id"]
                for topic in desk.topics()
            }
            assert len(set(owners.values())) >= 2  # spread over the bots
            for thread, owner in owners.items():
                # the card and the texts come from the bot that opened the topic
                assert {m["from"]["id"] for m in desk.in_topic(thread)} == {owner}
            assert world.stats.copied and len(world.stats.copied) == 16  # each text once

            # a topic of a workspace bot, end to end
            shard_ids = {int(t.split(":")[0]) for t in SHARDS}
            thread, owner = next((t, o) for t, o in owners.items() if o in shard_ids)
            name = next(t["name"] for t in desk.topics() if t["message_thread_id"] == thread)
            customer = next(p for p in people if f"{p['first_name']} " in name)
            header = desk.in_topic(thread)[0]
            query = sandbox.press(desk.boris, header, "claim")
            answer = await eventually(lambda: world.callback_answers[query])
            assert "ask them to /transfer" in answer["text"]  # Anna has it; Boris was told
            sandbox.send(desk.anna, "On it!", chat_id=desk.workspace, thread_id=thread)
            await eventually(lambda: desk.to_customer(customer)[-1].endswith("\nOn it!"))
            photo = sandbox.send(customer, media="photo", caption="the receipt")
            await eventually(
                lambda: any(
                    m.get("caption") == "the receipt" and m["from"]["id"] == world.main_bot["id"]
                    for m in desk.in_topic(thread)
                )
            )
            assert world.stats.copied[(customer["id"], photo["message_id"])] == 1
            texts = [m for m in world.messages[customer["id"]].values() if m.get("text")]
            sandbox.edit(texts[0], texts[0]["text"] + " (typo fixed)")
            await eventually(
                lambda: any(
                    "(typo fixed)" in (m.get("text") or "")
                    and m["from"]["id"] == owner
                    and m.get("reply_to_message")
                    for m in desk.in_topic(thread)
                )
            )
            # nobody but the main bot ever wrote to a customer
            for person in people:
                assert {m["from"]["id"] for m in sandbox.received(person["id"])} == {
                    world.main_bot["id"]
                }


async def test_calls_go_as_json_bodies_and_uploads_as_multipart() -> None:
    """``JsonSession``: the call's own JSON, nested objects as objects, nothing the
    form would have left out; a file still goes as multipart."""
    session = JsonSession()
    bot = Bot("42:TEST", session=session)
    try:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Claim", callback_data="claim")]]
        )
        call = SendMessage(
            chat_id=-100, text="hi", reply_markup=keyboard, disable_notification=False
        )
        body = session.build_form_data(bot, call)
        assert isinstance(body, JsonPayload)
        assert json.loads(body._value) == {
            "chat_id": -100,
            "text": "hi",
            "reply_markup": {"inline_keyboard": [[{"text": "Claim", "callback_data": "claim"}]]},
        }
        upload = SendDocument(chat_id=-100, document=BufferedInputFile(b"%PDF", "a.pdf"))
        assert isinstance(session.build_form_data(bot, upload), aiohttp.FormData)
    finally:
        await session.close()


async def test_answers_to_sends_are_read_for_their_ids_and_errors_still_raise() -> None:
    """``JsonSession.check_response``: over the wire, a send gives the new message's
    id (a topic its thread id) and nothing else to read; refusals raise aiogram's
    exceptions as before, and an answer without the ids is an error, not a guess."""
    async with TelegramSandbox(limits=Limits(enabled=False)) as sandbox:
        olga = sandbox.add_user("Olga")
        forum = sandbox.add_forum()
        bot = Bot(
            sandbox.token,
            session=JsonSession(api=TelegramAPIServer.from_base(sandbox.api_base)),
        )
        try:
            topic = await bot.create_forum_topic(forum["id"], "Olga #1")
            assert topic.message_thread_id == sandbox.topics(forum["id"])[0]["message_thread_id"]
            card = await bot.send_message(
                forum["id"],
                "<b>Olga</b>",
                message_thread_id=topic.message_thread_id,
                reply_markup=InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text="Take", callback_data="t:1")]]
                ),
            )
            (stored,) = sandbox.received(forum["id"], topic.message_thread_id)
            assert card.message_id == stored["message_id"]
            assert card.message_thread_id == topic.message_thread_id
            with pytest.raises(AttributeError):
                card.text  # noqa: B018 - not read, so not there: never a silent None
            first, second = sandbox.send(olga, "one"), sandbox.send(olga, "two")
            copies = await bot.copy_messages(
                forum["id"],
                olga["id"],
                [first["message_id"], second["message_id"]],
                message_thread_id=topic.message_thread_id,
            )
            in_topic = sandbox.received(forum["id"], topic.message_thread_id)
            assert [c.message_id for c in copies] == [m["message_id"] for m in in_topic[1:]]
            album = await bot.send_media_group(
                olga["id"],
                [
                    InputMediaPhoto(media=BufferedInputFile(b"a" * 10, "a.jpg")),
                    InputMediaPhoto(media=BufferedInputFile(b"b" * 10, "b.jpg")),
                ],
            )
            assert [m.message_id for m in album] == [
                m["message_id"] for m in sandbox.received(olga["id"])
            ]
            # what is read in full stays full
            me = await bot.get_me()
            assert me.username == "SupportSandboxBot" and me.is_bot
            sandbox.delete_topic(forum["id"], topic.message_thread_id)
            with pytest.raises(TelegramBadRequest, match="message thread not found"):
                await bot.send_message(forum["id"], "hi", message_thread_id=topic.message_thread_id)
            no_ids = json.dumps({"ok": True, "result": {"date": 1}})
            with pytest.raises(ClientDecodeError):
                bot.session.check_response(bot, SendMessage(chat_id=1, text="x"), 200, no_ids)
        finally:
            await bot.session.close()


async def test_the_workspace_command_menu_lists_every_operator_action_once(
    sqlite_url: str,
) -> None:
    async with telegram_desk(sqlite_url) as desk:
        world = desk.sandbox.world
        menu = await eventually(lambda: world.commands)
        names = [entry["command"] for entry in menu]
        assert names == [name for name, _ in desk.gateway.core.actions.menu()]
        # a held reply's buttons are not commands to type
        assert not {"send", "takeover", "discard"} & set(names)
        assert {"offline", "online", "away", "claim", "close", "status"} <= set(names)
        assert "resolve" not in names  # an alias, not a second entry
        assert all(entry["description"] for entry in menu)


SAVED_REPLIES = """
[[replies]]
name = "refund"
title = "Refund policy"
text.en = "Hi {customer}, refunds take 5 days. {operator}"
text.de = "Hallo {customer}, Erstattungen dauern 5 Tage. {operator}"

[[replies]]
name = "bye"
text = "Glad we could help with #{conversation}!"
"""


async def test_a_saved_reply_goes_out_in_the_customers_language(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url, extra=SAVED_REPLIES) as desk:
        sandbox = desk.sandbox
        olga = sandbox.add_user("Olga", language_code="de")
        sandbox.send(olga, "Hallo, ich möchte mein Geld zurück")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: len(desk.to_customer(olga)) == 1)
        # a typo is answered in the topic with the list, never sent to the customer
        sandbox.send(desk.anna, "/r refnud", chat_id=desk.workspace, thread_id=thread)
        listing = await eventually(
            lambda: next(m for m in desk.in_topic(thread) if "No saved reply" in m.get("text", ""))
        )
        buttons = [b for row in listing["reply_markup"]["inline_keyboard"] for b in row]
        assert [(b["text"], b["callback_data"]) for b in buttons] == [
            ("Refund policy", "reply:refund"),
            ("bye", "reply:bye"),
        ]
        query = sandbox.press(desk.anna, listing, "reply:refund")
        await eventually(lambda: sandbox.world.callback_answers[query])
        await eventually(lambda: len(desk.to_customer(olga)) == 2)
        assert desk.to_customer(olga)[-1].endswith("Hallo Olga, Erstattungen dauern 5 Tage. Anna")
        marked = await eventually(
            lambda: next(
                m for m in desk.in_topic(thread) if "sent a saved reply" in m.get("text", "")
            )
        )
        assert "Erstattungen" in marked["text"]
        sandbox.send(desk.anna, "/reply bye", chat_id=desk.workspace, thread_id=thread)
        await eventually(lambda: len(desk.to_customer(olga)) == 3)
        assert desk.to_customer(olga)[-1].endswith("Glad we could help with #1!")
        stored = await messages(desk.gateway, 1)
        assert [m.author_id for m in stored if m.direction == Direction.OUT] == ["anna", "anna"]


async def test_history_lists_the_customers_earlier_topics_with_links(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        sandbox = desk.sandbox
        olga = sandbox.add_user("Olga", username="olga")
        sandbox.send(olga, "my parcel is lost")
        first = await eventually(lambda: desk.topic_of("Olga"))
        sandbox.send(desk.anna, "/tag vip", chat_id=desk.workspace, thread_id=first)
        sandbox.send(desk.anna, "/close", chat_id=desk.workspace, thread_id=first)
        await eventually(lambda: desk.topics()[0]["name"].startswith("✅"))
        # her second account: one person once an admin links them
        other = sandbox.add_user("Olga K", username="olga_k")
        sandbox.send(other, "it is me again, from my other phone")
        second = await eventually(lambda: desk.topic_of("Olga K"))
        assert "moved" in await link_customers(desk.gateway.repository, "@olga_k", "@olga")
        sandbox.send(desk.anna, "/history", chat_id=desk.workspace, thread_id=second)
        listed = await eventually(
            lambda: next(m for m in desk.in_topic(second) if "earlier" in m.get("text", ""))
        )
        group = str(desk.workspace).removeprefix("-100")
        assert f"https://t.me/c/{group}/{first}" in listed["text"]
        assert "#1 " in listed["text"] and "#vip" in listed["text"]


async def test_a_colleagues_reply_waits_for_a_tap_in_the_topic(sqlite_url: str) -> None:
    async with telegram_desk(sqlite_url) as desk:
        sandbox = desk.sandbox
        olga = sandbox.add_user("Olga")
        sandbox.send(olga, "hi")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: "Hello!\n\nAnna will help you." in desk.to_customer(olga))
        sandbox.send(desk.anna, "Hello Olga", chat_id=desk.workspace, thread_id=thread)
        await eventually(lambda: desk.to_customer(olga)[-1].endswith("Hello Olga"))
        sandbox.send(desk.boris, "Boris here", chat_id=desk.workspace, thread_id=thread)
        asked = await eventually(
            lambda: next(m for m in desk.in_topic(thread) if "is answering" in m.get("text", ""))
        )
        buttons = [
            b["callback_data"] for row in asked["reply_markup"]["inline_keyboard"] for b in row
        ]
        assert [b.split(":")[0] for b in buttons] == ["send", "takeover", "discard"]
        # Anna cannot decide for Boris; Boris sends it anyway
        query = sandbox.press(desk.anna, asked, buttons[0])
        answer = await eventually(lambda: sandbox.world.callback_answers[query])
        assert "Only whoever wrote" in answer["text"]
        assert not desk.to_customer(olga)[-1].endswith("Boris here")
        query = sandbox.press(desk.boris, asked, buttons[0])
        await eventually(lambda: sandbox.world.callback_answers[query]["text"] == "Sent.")
        await eventually(lambda: desk.to_customer(olga)[-1].endswith("Boris here"))
        assert (await conversation(desk.gateway, 1)).assignee_id == "anna"


async def test_an_erased_customers_topic_is_deleted(database_url: str) -> None:
    async with telegram_desk(database_url) as desk:
        sandbox = desk.sandbox
        olga = sandbox.add_user("Olga", username="olga")
        for n in range(25):  # more than one part of ids
            sandbox.send(olga, f"message {n}")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        await eventually(lambda: len(desk.in_topic(thread)) >= 20)
        ivan = sandbox.add_user("Ivan")
        sandbox.send(ivan, "hello")
        await eventually(lambda: desk.topic_of("Ivan"))
        # her data first, as a subject access request asks, then erased
        exported = await export_customer(desk.gateway.repository, "@olga", {})
        assert exported is not None
        said = [m["text"] for m in exported["conversations"][0]["messages"]]
        assert [t for t in said if t.startswith("message ")] == [f"message {n}" for n in range(25)]
        erased = await erase_customer(desk.gateway.repository, "@olga", yes=True)
        assert erased is not None and erased.done
        await eventually(lambda: [t["name"] for t in desk.topics()] == ["🟢 Ivan #2"])
        async with desk.gateway.repository.transaction() as tx:
            trail = [e.action for e in await tx.audit_events(datetime(2020, 1, 1, tzinfo=UTC))]
        assert trail == ["export", "erase"]
        outcomes = await removal_outcomes(desk.gateway.repository, erased, wait=10)
        assert outcomes == ["  removed from telegram: conversation #1's copies"]


async def test_a_card_number_is_hidden_from_the_topic_and_the_customer_told_once(
    database_url: str,
) -> None:
    privacy = '\n[privacy]\nredact = ["card"]\n'
    async with telegram_desk(database_url, extra=privacy) as desk:
        sandbox = desk.sandbox
        olga = sandbox.add_user("Olga")
        sandbox.send(olga, "my card is 4242 4242 4242 4242, please refund")
        thread = await eventually(lambda: desk.topic_of("Olga"))
        shown = await eventually(
            lambda: next(m for m in desk.in_topic(thread) if "refund" in m.get("text", ""))
        )
        assert "•••• 4242" in shown["text"] and "4242 4242 4242" not in shown["text"]
        await eventually(lambda: any("hid the card number" in t for t in desk.to_customer(olga)))
        sandbox.send(olga, "or this one 5555555555554444")
        await eventually(
            lambda: any("•••• 4444" in m.get("text", "") for m in desk.in_topic(thread))
        )
        await settle(desk.gateway)
        told = [t for t in desk.to_customer(olga) if "hid the card number" in t]
        assert len(told) == 1
        stored = await messages(desk.gateway, 1)
        assert not any("4242 4242" in m.text or "5555555555554444" in m.text for m in stored)
