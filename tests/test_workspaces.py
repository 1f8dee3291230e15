"""Operators on Telegram and on Slack see one conversation and answer from either."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from gateway.app import Gateway
from gateway.events import ActionResult, OperatorCommand
from storage import ConversationStatus, Direction
from tests.support import (
    RecordingAdapter,
    conversation,
    make_config,
    messages,
    operator_tg,
    operator_writes,
    running,
    settle,
)


def mirrored_texts(adapter: RecordingAdapter, conversation_id: int) -> list[str]:
    return [
        d.outbound.text for d in adapter.in_thread(conversation_id) if d.outbound.kind == "message"
    ]


async def test_both_workspaces_see_everything_and_replies_cross_over(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter(name="telegram")
    slack = RecordingAdapter(name="slack")
    async with running(config, tg, slack) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "Where is my parcel?"))
        conv_id = result.conversation_id
        await settle(gw)
        # the thread opens in both workspaces, with the customer's message
        for workspace in (tg, slack):
            thread = workspace.in_thread(conv_id)
            assert thread[0].outbound.kind == "header"
            assert "Where is my parcel?" in mirrored_texts(workspace, conv_id)

        # Anna (assigned) answers from Slack: the customer gets it on Telegram, and
        # the Telegram topic shows it too
        await operator_writes(gw, slack, "anna", conv_id, "It left the warehouse today.")
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "It left the warehouse today."
        assert "It left the warehouse today." in mirrored_texts(tg, conv_id)
        assert "It left the warehouse today." not in mirrored_texts(slack, conv_id)

        # Boris helps from Telegram while Anna is at it: held until he says send
        # anyway, then relayed, and noted (help, not theft)
        held = await operator_writes(gw, tg, "boris", conv_id, "Tracking number: 42")
        await press(gw, "boris", conv_id, f"send:{held.message_id}")
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "Tracking number: 42"
        assert (await conversation(gw, conv_id)).assignee_id == "anna"
        system = [m.text for m in await messages(gw, conv_id) if m.direction == Direction.SYSTEM]
        assert "Boris answered in Anna's conversation." in system
        # a note written on Slack is shown on Telegram, never to the customer
        await operator_writes(gw, slack, "anna", conv_id, "/note she ordered twice")
        await settle(gw)
        assert "she ordered twice" in mirrored_texts(tg, conv_id)
        assert all("ordered twice" not in t for t in tg.to_customer("chat-olga"))


async def test_a_reply_claims_an_unassigned_conversation_if_there_is_room(
    database_url: str,
) -> None:
    config = make_config(database_url, strategy="manual", max_chats=1)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("olga", "hi"))
        second = await gw.core.ingest(tg.customer_says("petr", "hi"))
        await operator_writes(gw, tg, "anna", first.conversation_id, "Hello Olga!")
        conv = await conversation(gw, first.conversation_id)
        assert (conv.assignee_id, conv.status) == ("anna", ConversationStatus.WAITING_CUSTOMER)
        # anna is full now: her reply to petr is delivered, petr stays in the queue
        await operator_writes(gw, tg, "anna", second.conversation_id, "Hello Petr!")
        await settle(gw)
        assert tg.to_customer("chat-petr")[-1] == "Hello Petr!"
        conv = await conversation(gw, second.conversation_id)
        assert (conv.assignee_id, conv.status) == (None, ConversationStatus.QUEUED)
        system = [m.text for m in await messages(gw, conv.id) if m.direction == Direction.SYSTEM]
        assert "Anna answered but has no free slot; the conversation stays in the queue." in system


async def test_presence_gates_routing_and_coming_online_takes_the_queue(
    database_url: str,
) -> None:
    config = make_config(database_url, operators=("anna",), max_chats=2)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        seed = await gw.core.ingest(tg.customer_says("seed", "hi"))
        await operator_writes(gw, tg, "anna", seed.conversation_id, "/offline")
        waiting = [await gw.core.ingest(tg.customer_says(f"c{i}", "hi")) for i in range(3)]
        await settle(gw)
        assert tg.to_customer("chat-c0")[-1] == "Hello!\n\nNobody is online."
        result = await operator_writes(gw, tg, "anna", seed.conversation_id, "/online")
        assert result.ignored is None
        convs = [await conversation(gw, w.conversation_id) for w in waiting]
        # one free slot (seed holds the other): the oldest waiting one gets it
        assert [c.assignee_id for c in convs] == ["anna", None, None]
        await settle(gw)
        assert tg.to_customer("chat-c0")[-1] == "Anna will help you."


async def test_match_language_prefers_operators_who_speak_it(database_url: str) -> None:
    config = make_config(
        database_url,
        match_language=True,
        max_chats=5,
        languages={"anna": ["en"], "boris": ["uk", "ru"]},
    )
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        en = await gw.core.ingest(tg.customer_says("john", "hi", language="en"))
        uk = await gw.core.ingest(tg.customer_says("oksana", "привіт", language="uk"))
        ru = await gw.core.ingest(tg.customer_says("ivan", "привет", language="ru"))
        de = await gw.core.ingest(tg.customer_says("hans", "hallo", language="de"))
        assignees = [
            (await conversation(gw, r.conversation_id)).assignee_id for r in (en, uk, ru, de)
        ]
        assert assignees[:3] == ["anna", "boris", "boris"]
        assert assignees[3] == "anna"  # nobody speaks German: the least busy takes it


async def test_a_header_refresh_that_changes_nothing_is_not_sent(database_url: str) -> None:
    """Telegram allows a forum group 20 messages a minute: no header call is wasted."""
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi", name="Olga"))
        await settle(gw)
        headers = [d for d in tg.in_thread(result.conversation_id) if d.outbound.kind == "header"]
        # written as "new" then refreshed as "assigned": one call, showing the latter
        assert len(headers) == 1
        card = headers[0].outbound.card
        assert (card.status, card.assignee_name, card.customer_name) == ("assigned", "Anna", "Olga")
        await operator_writes(gw, tg, "anna", result.conversation_id, "/close")
        await settle(gw)
        headers = [d for d in tg.in_thread(result.conversation_id) if d.outbound.kind == "header"]
        assert len(headers) == 2
        assert headers[1].outbound.card.status == "resolved"
        assert headers[1].thread_ref == f"T{result.conversation_id}"


async def test_a_backlog_of_customer_messages_goes_out_as_one_delivery(
    database_url: str,
) -> None:
    """When a thread falls behind, the customer's waiting messages travel together."""
    config = make_config(database_url)
    tg = RecordingAdapter(max_batch=10)
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("olga", "hi", message_id="c0"))
        await settle(gw)
        conv_id = first.conversation_id
        tg.gate = asyncio.Event()  # the group stalls
        for n in range(1, 6):
            await gw.core.ingest(tg.customer_says("olga", f"part {n}", message_id=f"c{n}"))
        tg.gate.set()
        await settle(gw)
        calls = [
            d
            for d in tg.deliveries
            if d.outbound.conversation_id == conv_id
            and d.outbound.kind == "message"
            and d.outbound.text.startswith("part")
        ]
        # whatever the first call took while the group stalled, the rest went together
        assert len(calls) <= 2
        together = [p.outbound.text for d in calls for p in (d, *d.more)]
        assert together == [f"part {n}" for n in range(1, 6)]  # in order, none missing
        # each message kept its own id in the thread: an edit still finds its copy
        await gw.core.ingest(tg.customer_says("olga", "part 3!", edit_of="c3"))
        await settle(gw)
        edit = next(d for d in tg.deliveries if d.outbound.kind == "edit")
        assert edit.outbound.text == "part 3!" and len(edit.edit_refs) == 1


async def press(gw: Gateway, operator: str, conversation_id: int, data: str) -> ActionResult:
    """An operator taps a button in the conversation's topic (callback data ``data``)."""
    name, _, args = data.partition(":")
    return await gw.core.act(
        OperatorCommand(
            channel="telegram",
            event_id=f"press-{operator}-{data}-{len(data)}-{id(args)}",
            operator_external_id=operator_tg(gw.config, operator),
            name=name,
            args=args,
            workspace_thread=f"T{conversation_id}",
            answer="always",
        )
    )


async def test_a_reply_in_a_colleagues_busy_conversation_waits_for_its_writer(
    database_url: str,
) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        conv_id = (await gw.core.ingest(tg.customer_says("olga", "hi"))).conversation_id
        assert (await conversation(gw, conv_id)).assignee_id == "anna"
        await operator_writes(gw, tg, "anna", conv_id, "Hello, Olga")
        held = await operator_writes(gw, tg, "boris", conv_id, "Hi, I can help")
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "Hello, Olga"  # not Boris's
        asked = [d.outbound for d in tg.in_thread(conv_id) if d.outbound.kind == "notice"]
        assert "Anna is answering this conversation" in asked[-1].text
        assert [label for _, label in asked[-1].choices] == ["Send anyway", "Take over", "Cancel"]
        # only its writer decides
        refused = await press(gw, "anna", conv_id, f"send:{held.message_id}")
        assert not refused.ok
        cancelled = await press(gw, "boris", conv_id, f"discard:{held.message_id}")
        assert cancelled.ok
        again = await press(gw, "boris", conv_id, f"send:{held.message_id}")
        assert not again.ok and "already sent or cancelled" in again.message
        await settle(gw)
        assert all("I can help" not in t for t in tg.to_customer("chat-olga"))

        # taking over: the conversation is Boris's, the customer hears so, then the reply
        held = await operator_writes(gw, tg, "boris", conv_id, "Boris here, I have it")
        taken = await press(gw, "boris", conv_id, f"takeover:{held.message_id}")
        assert taken.ok
        await settle(gw)
        assert (await conversation(gw, conv_id)).assignee_id == "boris"
        assert tg.to_customer("chat-olga")[-1] == "Boris here, I have it"
        stored = [m for m in await messages(gw, conv_id) if m.author_id == "boris"]
        # the cancelled one is kept for the record, never sent
        assert [(m.direction, m.deleted_at is not None) for m in stored] == [
            (Direction.HELD, True),
            (Direction.OUT, False),
        ]
        # the assignee writes on: no hold for them
        await operator_writes(gw, tg, "boris", conv_id, "Anything else?")
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "Anything else?"


async def test_the_collision_guard_can_be_turned_off(database_url: str) -> None:
    config = make_config(database_url)
    routing = config.core.routing.model_copy(update={"collision_minutes": 0})
    config = replace(config, core=config.core.with_sections(routing=routing))
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        conv_id = (await gw.core.ingest(tg.customer_says("olga", "hi"))).conversation_id
        await operator_writes(gw, tg, "anna", conv_id, "Hello, Olga")
        await operator_writes(gw, tg, "boris", conv_id, "Hi, I can help")
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "Hi, I can help"
