"""The Bot API sandbox, driven by the real aiogram client: the wire protocol holds."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)
from aiohttp import web

from sandbox.telegram import Limits, TelegramSandbox


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sandbox():
    async with TelegramSandbox(webhook_retry_delay=0.01) as running:
        yield running


def bot_for(sandbox: TelegramSandbox, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.api_base))
    return Bot(token or sandbox.token, session=session)


@pytest.fixture
async def bot(sandbox: TelegramSandbox):
    client = bot_for(sandbox)
    yield client
    await client.session.close()


async def test_get_me_and_a_wrong_token(sandbox: TelegramSandbox, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "SupportSandboxBot"
    stranger = bot_for(sandbox, "42:wrong")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await stranger.session.close()


async def test_updates_are_confirmed_by_a_later_offset(sandbox: TelegramSandbox, bot: Bot) -> None:
    olga = sandbox.add_user("Olga", username="olga", language_code="ru")
    sandbox.send(olga, "hello", entities=[{"type": "bold", "offset": 0, "length": 5}])
    sandbox.send(olga, "are you there?")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates] == ["hello", "are you there?"]
    assert updates[0].message.from_user.language_code == "ru"
    assert updates[0].message.entities[0].type == "bold"
    # not confirmed yet: the same updates again
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [u.update_id for u in updates]
    # a long poll waits for the next one and confirms the first two
    waiting = asyncio.create_task(bot.get_updates(offset=updates[-1].update_id + 1, timeout=10))
    await asyncio.sleep(0.05)
    sandbox.send(olga, "third")
    third = await waiting
    assert [u.message.text for u in third] == ["third"]


async def test_sending_with_telegram_limits_on_length(sandbox: TelegramSandbox, bot: Bot) -> None:
    olga = sandbox.add_user("Olga")
    sent = await bot.send_message(olga["id"], "x" * 4096)
    assert sent.text == "x" * 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(olga["id"], "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(olga["id"], BufferedInputFile(b"img", "a.jpg"), caption="c" * 1025)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(123, "hi")
    assert [m["text"] for m in sandbox.received(olga["id"])] == ["x" * 4096]


async def test_a_forum_topic_lives_and_dies(sandbox: TelegramSandbox, bot: Bot) -> None:
    forum = sandbox.add_forum()
    topic = await bot.create_forum_topic(forum["id"], "Olga · telegram")
    header = await bot.send_message(
        forum["id"],
        "Olga",
        message_thread_id=topic.message_thread_id,
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Claim", callback_data="claim:1")]]
        ),
    )
    assert header.message_thread_id == topic.message_thread_id
    await bot.edit_forum_topic(forum["id"], topic.message_thread_id, name="Olga · assigned")
    assert sandbox.topics(forum["id"])[0]["name"] == "Olga · assigned"
    await bot.close_forum_topic(forum["id"], topic.message_thread_id)
    await bot.reopen_forum_topic(forum["id"], topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.reopen_forum_topic(forum["id"], topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NAME_INVALID"):
        await bot.create_forum_topic(forum["id"], "x" * 129)
    sandbox.delete_topic(forum["id"], topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(forum["id"], "hi", message_thread_id=topic.message_thread_id)


async def test_the_bot_needs_topic_rights(sandbox: TelegramSandbox, bot: Bot) -> None:
    forum = sandbox.add_forum(bot_is_admin=False)
    with pytest.raises(TelegramBadRequest, match="not enough rights"):
        await bot.create_forum_topic(forum["id"], "Olga")


async def test_media_is_copied_uploaded_and_downloaded(sandbox: TelegramSandbox, bot: Bot) -> None:
    olga = sandbox.add_user("Olga")
    forum = sandbox.add_forum()
    topic = await bot.create_forum_topic(forum["id"], "Olga")
    photo = sandbox.send(olga, media="photo", caption="my parcel", file_size=5000)
    copied = await bot.copy_message(
        forum["id"], olga["id"], photo["message_id"], message_thread_id=topic.message_thread_id
    )
    (in_topic,) = sandbox.received(forum["id"], topic.message_thread_id)
    assert in_topic["message_id"] == copied.message_id
    assert in_topic["caption"] == "my parcel" and in_topic["photo"]

    file = await bot.get_file(photo["photo"][-1]["file_id"])
    data = await bot.download_file(file.file_path)
    assert len(data.read()) == 5000

    doc = await bot.send_document(olga["id"], BufferedInputFile(b"%PDF-1.4 invoice", "inv.pdf"))
    assert doc.document.file_name == "inv.pdf"
    back = await bot.download(doc.document.file_id)
    assert back.read() == b"%PDF-1.4 invoice"

    album = await bot.send_media_group(
        olga["id"],
        media=[
            InputMediaPhoto(media=BufferedInputFile(b"1", "1.jpg"), caption="first"),
            InputMediaPhoto(media=photo["photo"][-1]["file_id"]),
        ],
    )
    assert len({m.media_group_id for m in album}) == 1 and len(album) == 2

    big = sandbox.send(olga, media="document", file_size=21 * 1024 * 1024, file_name="big.iso")
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big["document"]["file_id"])


async def test_edits_buttons_and_deletes(sandbox: TelegramSandbox, bot: Bot) -> None:
    olga = sandbox.add_user("Olga")
    sent = await bot.send_message(
        olga["id"],
        "Rate us",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="5", callback_data="csat:5")]]
        ),
    )
    query_id = sandbox.press(olga, sent.model_dump(by_alias=True, exclude_none=True), "csat:5")
    (update,) = await bot.get_updates(timeout=0)
    assert update.callback_query.data == "csat:5"
    assert await bot.answer_callback_query(query_id, text="Thanks!")
    assert sandbox.world.callback_answers[query_id]["text"] == "Thanks!"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)

    edited = await bot.edit_message_text("Rated 5", chat_id=olga["id"], message_id=sent.message_id)
    assert edited.text == "Rated 5" and edited.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Rated 5", chat_id=olga["id"], message_id=sent.message_id)
    assert await bot.delete_message(olga["id"], sent.message_id)
    assert sandbox.received(olga["id"]) == []

    mine = sandbox.send(olga, "typo")
    sandbox.edit(mine, "fixed")
    updates = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert updates[-1].edited_message.text == "fixed"


async def test_a_customer_who_blocked_the_bot(sandbox: TelegramSandbox, bot: Bot) -> None:
    olga = sandbox.add_user("Olga")
    sandbox.block_bot(olga)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(olga["id"], "hello?")
    (update,) = await bot.get_updates(timeout=0)
    assert update.my_chat_member.new_chat_member.status == "kicked"


async def test_per_chat_flood_limit_answers_429_with_retry_after() -> None:
    clock = FakeClock()
    async with TelegramSandbox(clock=clock) as sandbox:
        bot = bot_for(sandbox)
        try:
            olga = sandbox.add_user("Olga")
            for n in range(3):  # the burst
                await bot.send_message(olga["id"], f"m{n}")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(olga["id"], "one too many")
            assert caught.value.retry_after == 1
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(olga["id"], "again, too early")
            assert sandbox.world.stats.early_retries == 1
            clock.now += 1
            await bot.send_message(olga["id"], "after waiting")
            assert sandbox.world.stats.rate_limited == 2
            assert sandbox.world.stats.sent_per_chat[olga["id"]] == 4
        finally:
            await bot.session.close()


async def test_a_group_gets_20_messages_in_any_minute() -> None:
    """Counted over any 60 s, not as a bucket that refills: 10 at once and 10 more
    half a minute later fill the minute, and only the first ten leaving it makes
    room (a bucket of 20 refilling 1 per 3 s would take 10 more at 30 s)."""
    clock = FakeClock()
    limits = Limits(chat_burst=1000, chat_per_second=1000)
    async with TelegramSandbox(clock=clock, limits=limits) as sandbox:
        bot = bot_for(sandbox)
        try:
            forum = sandbox.add_forum()
            for n in range(10):
                await bot.send_message(forum["id"], f"m{n}")
            clock.now += 30
            for n in range(10):
                await bot.send_message(forum["id"], f"n{n}")
            with pytest.raises(TelegramRetryAfter) as caught:
                await bot.send_message(forum["id"], "21st")
            assert caught.value.retry_after == 30  # when the first ten leave the minute
            assert sandbox.world.stats.rate_limited_by_scope == {"group": 1}
            clock.now += 30
            for n in range(10):
                await bot.send_message(forum["id"], f"o{n}")
            with pytest.raises(TelegramRetryAfter):
                await bot.send_message(forum["id"], "too many again")
        finally:
            await bot.session.close()


async def test_a_refused_message_uses_up_no_other_limit() -> None:
    """A 429 sends nothing: the group's refused 21st message must not spend the
    bot-wide token a customer's reply needs (Telegram counts messages sent)."""
    clock = FakeClock()
    limits = Limits(chat_burst=1000, chat_per_second=1000, global_per_second=21)
    async with TelegramSandbox(clock=clock, limits=limits) as sandbox:
        bot = bot_for(sandbox)
        try:
            forum = sandbox.add_forum()
            olga = sandbox.add_user("Olga")
            for n in range(20):
                await bot.send_message(forum["id"], f"m{n}")
            for _ in range(3):
                with pytest.raises(TelegramRetryAfter):
                    await bot.send_message(forum["id"], "21st")
            await bot.send_message(olga["id"], "the 21st of the second")
            assert sandbox.world.stats.sent == 21
        finally:
            await bot.session.close()


async def test_limits_can_be_switched_off_for_load_tests() -> None:
    async with TelegramSandbox(limits=Limits(enabled=False)) as sandbox:
        bot = bot_for(sandbox)
        try:
            olga = sandbox.add_user("Olga")
            for n in range(50):
                await bot.send_message(olga["id"], f"m{n}")
            assert sandbox.world.stats.rate_limited == 0
        finally:
            await bot.session.close()


async def test_faults_5xx_slow_and_dropped(sandbox: TelegramSandbox, bot: Bot) -> None:
    olga = sandbox.add_user("Olga")
    sandbox.inject("error", method="sendMessage", status=502)
    with pytest.raises(TelegramServerError):
        await bot.send_message(olga["id"], "first try")
    sandbox.inject("drop", method="sendMessage")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(olga["id"], "second try")
    sandbox.inject("slow", method="sendMessage", delay=0.05)
    await bot.send_message(olga["id"], "third try")
    assert [m["text"] for m in sandbox.received(olga["id"])] == ["third try"]


async def test_webhook_delivery_with_secret_and_retries(sandbox: TelegramSandbox, bot: Bot) -> None:
    received: list[tuple[str | None, dict]] = []
    answers = iter([500, 200, 200])

    async def hook(request: web.Request) -> web.Response:
        status = next(answers)
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        olga = sandbox.add_user("Olga")
        sandbox.send(olga, "one")
        sandbox.send(olga, "two")
        for _ in range(500):
            if sandbox.webhook_deliveries == 2:
                break
            await asyncio.sleep(0.01)
        texts = [body["message"]["text"] for _, body in received]
        assert texts == ["one", "one", "two"]  # the 500 made Telegram send it again
        assert {secret for secret, _ in received} == {"s3cret"}
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


async def test_the_control_api_over_http(sandbox: TelegramSandbox, bot: Bot) -> None:
    async with aiohttp.ClientSession(sandbox.api_base) as http:
        async with http.post("/sandbox/users", json={"first_name": "Petr"}) as reply:
            petr = await reply.json()
        async with http.post("/sandbox/send", json={"user_id": petr["id"], "text": "hi"}) as r:
            assert r.status == 200
        (update,) = await bot.get_updates(timeout=0)
        assert update.message.text == "hi"
        await bot.send_message(petr["id"], "hello Petr")
        async with http.get(f"/sandbox/chats/{petr['id']}") as reply:
            assert [m["text"] for m in await reply.json()] == ["hello Petr"]
        async with http.get("/sandbox/stats") as reply:
            assert (await reply.json())["sent"] == 1
