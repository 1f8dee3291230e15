"""Routing stories over a recording channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import event

from gateway.errors import InvalidEvent
from gateway.events import Inbound, OperatorCommand, Sender
from storage import ConversationStatus, Direction
from tests.support import (
    RecordingAdapter,
    all_conversations,
    conversation,
    make_config,
    messages,
    operator_tg,
    operator_writes,
    running,
    settle,
)


async def test_a_customer_writes_is_greeted_assigned_and_answered(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "My order is late", name="Olga"))
        await settle(gw)
        conv = await conversation(gw, result.conversation_id)
        assert conv.status == ConversationStatus.ASSIGNED
        assert conv.assignee_id == "anna"
        assert tg.to_customer("chat-olga") == ["Hello!\n\nAnna will help you."]
        thread = tg.in_thread(conv.id)
        assert thread[0].outbound.kind == "header"
        assert thread[0].outbound.card.customer_name == "Olga"
        mirrored = [d.outbound for d in thread if d.outbound.kind == "message"]
        assert mirrored[0].text == "My order is late"
        assert mirrored[0].author_role == "customer"
        assert all(d.thread_ref == f"T{conv.id}" for d in thread[1:])

        await operator_writes(gw, tg, "anna", conv.id, "Checking!")
        await settle(gw)
        replies = [
            d.outbound
            for d in tg.deliveries
            if d.outbound.audience == "customer" and d.outbound.author_role == "operator"
        ]
        assert [(r.text, r.author_name) for r in replies] == [("Checking!", "Anna")]
        conv = await conversation(gw, conv.id)
        assert conv.status == ConversationStatus.WAITING_CUSTOMER
        assert conv.first_response_at is not None


async def test_max_chats_is_never_exceeded_under_concurrent_ingest(database_url: str) -> None:
    config = make_config(database_url, max_chats=3)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        await asyncio.gather(
            *(gw.core.ingest(tg.customer_says(f"c{i}", "help")) for i in range(20))
        )
        convs = await all_conversations(gw)
        assert len(convs) == 20
        load = Counter(c.assignee_id for c in convs if c.status == ConversationStatus.ASSIGNED)
        assert load == {"anna": 3, "boris": 3}
        queued = sorted(
            (c for c in convs if c.status == ConversationStatus.QUEUED),
            key=lambda c: (c.queued_at, c.id),
        )
        assert len(queued) == 14
        await settle(gw)
        # everyone in the queue was told a distinct place in line, 1 to 14
        positions = sorted(
            int(text.split("number ")[1].split(" ")[0])
            for c in queued
            for text in tg.to_customer(c.chat_id)
            if "in line" in text
        )
        assert positions == list(range(1, 15))


async def test_least_busy_spreads_and_ties_go_to_the_longest_idle(database_url: str) -> None:
    config = make_config(database_url, operators=("anna", "boris", "vera"), max_chats=4)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        order = []
        for i in range(6):
            result = await gw.core.ingest(tg.customer_says(f"c{i}", "hi"))
            order.append((await conversation(gw, result.conversation_id)).assignee_id)
        assert order == ["anna", "boris", "vera", "anna", "boris", "vera"]
        # vera closes one: she is now the least busy, and gets the next one
        convs = await all_conversations(gw)
        veras = [c for c in convs if c.assignee_id == "vera"]
        await operator_writes(gw, tg, "vera", veras[0].id, "/close")
        result = await gw.core.ingest(tg.customer_says("c9", "hello"))
        assert (await conversation(gw, result.conversation_id)).assignee_id == "vera"


async def test_round_robin_takes_turns_whatever_the_load(database_url: str) -> None:
    config = make_config(database_url, strategy="round_robin", max_chats=5)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("c0", "hi"))
        second = await gw.core.ingest(tg.customer_says("c1", "hi"))
        assert (await conversation(gw, first.conversation_id)).assignee_id == "anna"
        assert (await conversation(gw, second.conversation_id)).assignee_id == "boris"
        # anna closes hers, so she is less busy; round robin still gives boris's turn order
        await operator_writes(gw, tg, "anna", first.conversation_id, "/close")
        third = await gw.core.ingest(tg.customer_says("c2", "hi"))
        fourth = await gw.core.ingest(tg.customer_says("c3", "hi"))
        assert (await conversation(gw, third.conversation_id)).assignee_id == "anna"
        assert (await conversation(gw, fourth.conversation_id)).assignee_id == "boris"


async def test_the_queue_is_fifo_and_a_freed_slot_takes_its_head(database_url: str) -> None:
    config = make_config(database_url, operators=("anna",), max_chats=1)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("first", "hi"))
        second = await gw.core.ingest(tg.customer_says("second", "hi"))
        third = await gw.core.ingest(tg.customer_says("third", "hi"))
        await settle(gw)
        assert tg.to_customer("chat-second")[-1] == "Hello!\n\nYou are number 1 in line."
        assert tg.to_customer("chat-third")[-1] == "Hello!\n\nYou are number 2 in line."

        await operator_writes(gw, tg, "anna", first.conversation_id, "/close")
        await settle(gw)
        assert (await conversation(gw, second.conversation_id)).assignee_id == "anna"
        assert (await conversation(gw, third.conversation_id)).status == ConversationStatus.QUEUED
        assert tg.to_customer("chat-first")[-2] == "Closed, thanks!"
        assert tg.to_customer("chat-second")[-1] == "Anna will help you."


async def test_the_most_urgent_waiting_conversation_goes_first(database_url: str) -> None:
    config = make_config(database_url, operators=("anna",), max_chats=1)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("first", "hi"))
        second = await gw.core.ingest(tg.customer_says("second", "hi"))
        third = await gw.core.ingest(tg.customer_says("third", "hi"))
        # the newest in line is urgent, the middle one high: they go first, in that order
        raised = await operator_writes(gw, tg, "anna", third.conversation_id, "/priority urgent")
        assert raised.ignored is None
        await operator_writes(gw, tg, "anna", second.conversation_id, "/priority high")
        bad = await operator_writes(gw, tg, "anna", second.conversation_id, "/priority soon")
        assert bad.ignored is not None and "normal, high, urgent" in bad.ignored
        # a newcomer is told its place behind both
        fourth = await gw.core.ingest(tg.customer_says("fourth", "hi"))
        await settle(gw)
        assert tg.to_customer("chat-fourth")[-1] == "Hello!\n\nYou are number 3 in line."
        async with gw.repository.transaction() as tx:
            queue = [c.id for c in await tx.queue()]
        assert queue == [third.conversation_id, second.conversation_id, fourth.conversation_id]

        await operator_writes(gw, tg, "anna", first.conversation_id, "/close")
        await settle(gw)
        assert (await conversation(gw, third.conversation_id)).assignee_id == "anna"
        await operator_writes(gw, tg, "anna", third.conversation_id, "/close")
        await settle(gw)
        assert (await conversation(gw, second.conversation_id)).assignee_id == "anna"


async def test_tags_are_one_word_each_and_shown_on_the_card(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        opened = await gw.core.ingest(tg.customer_says("olga", "hi"))
        conversation_id = opened.conversation_id
        owner = (await conversation(gw, conversation_id)).assignee_id
        assert owner is not None
        tagged = await operator_writes(gw, tg, owner, conversation_id, "/tag #VIP, billing vip")
        assert tagged.ignored is None
        assert (await conversation(gw, conversation_id)).tags == ["vip", "billing"]
        refused = await operator_writes(gw, tg, owner, conversation_id, "/tag <b>bold</b>")
        assert refused.ignored is not None and refused.ignored.startswith("Not a tag")
        await operator_writes(gw, tg, owner, conversation_id, "/untag billing")
        assert (await conversation(gw, conversation_id)).tags == ["vip"]
        missing = await operator_writes(gw, tg, owner, conversation_id, "/untag billing")
        assert missing.ignored is not None
        await settle(gw)
        cards = [d.outbound.card for d in tg.deliveries if d.outbound.card is not None]
        assert cards and cards[-1].tags == ("vip",)
        # a stranger in the workspace cannot tag
        stranger = await gw.core.ingest(tg.operator_says("999", conversation_id, "/tag spam"))
        assert stranger.ignored is not None
        assert (await conversation(gw, conversation_id)).tags == ["vip"]


async def test_manual_strategy_queues_until_an_operator_claims(database_url: str) -> None:
    config = make_config(database_url, strategy="manual")
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        conv = await conversation(gw, result.conversation_id)
        assert conv.status == ConversationStatus.QUEUED
        claimed = await operator_writes(gw, tg, "boris", conv.id, "/claim")
        assert claimed.ignored is None
        assert (await conversation(gw, conv.id)).assignee_id == "boris"
        refused = await operator_writes(gw, tg, "anna", conv.id, "/claim")
        assert refused.ignored == "Boris has this conversation; ask them to /transfer it to you."
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "Boris will help you."


async def test_a_returning_customer_goes_back_to_their_operator(database_url: str) -> None:
    config = make_config(database_url, reopen_hours=0, max_chats=5)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        # who helped a customer last, and their latest conversation, are read only for
        # customers with a past
        asked: list[str] = []
        latest: list[str] = []

        def note(conn, cursor, statement, parameters, context, executemany) -> None:
            if "conversations.resolved_at >=" in statement:
                asked.append(statement)
            if "conversations.chat_id =" in statement and "conversations.id DESC" in statement:
                latest.append(statement)

        event.listen(gw.repository.db.engine.sync_engine, "before_cursor_execute", note)
        # boris helps olga (anna is busier)
        await gw.core.ingest(tg.customer_says("someone", "hi"))
        first = await gw.core.ingest(tg.customer_says("olga", "hi"))
        assert asked == latest == []  # two new customers: nobody helped them before
        conv = await conversation(gw, first.conversation_id)
        assert conv.assignee_id == "boris"
        await operator_writes(gw, tg, "boris", conv.id, "/close")
        # by least_busy, boris (0 chats) would get anyone; make him the busier one
        await gw.core.ingest(tg.customer_says("x1", "hi"))
        await gw.core.ingest(tg.customer_says("x2", "hi"))
        again = await gw.core.ingest(tg.customer_says("olga", "me again"))
        assert again.conversation_id != conv.id  # reopen window 0: a new conversation
        assert (await conversation(gw, again.conversation_id)).assignee_id == "boris"
        assert len(asked) == 1  # olga, the one returning customer
        assert len(latest) == 1  # and her latest conversation, closed


async def test_writing_into_a_recently_closed_conversation_reopens_it(database_url: str) -> None:
    config = make_config(database_url, reopen_hours=24)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("olga", "hi"))
        conv_id = first.conversation_id
        await operator_writes(gw, tg, "anna", conv_id, "/close")
        assert (await conversation(gw, conv_id)).status == ConversationStatus.RESOLVED
        again = await gw.core.ingest(tg.customer_says("olga", "one more thing"))
        assert again.conversation_id == conv_id
        conv = await conversation(gw, conv_id)
        assert conv.status == ConversationStatus.ASSIGNED
        assert conv.assignee_id == "anna"
        assert conv.resolved_at is None


async def test_transfer_hands_over_and_tells_the_customer(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        conv_id = result.conversation_id
        refused = await operator_writes(gw, tg, "anna", conv_id, "/transfer nobody")
        assert refused.ignored == "No operator called 'nobody'."
        done = await operator_writes(gw, tg, "anna", conv_id, "/transfer boris")
        assert done.ignored is None
        assert (await conversation(gw, conv_id)).assignee_id == "boris"
        await settle(gw)
        assert tg.to_customer("chat-olga")[-1] == "Boris takes over."
        notes = [m.text for m in await messages(gw, conv_id) if m.direction == Direction.SYSTEM]
        assert "Transferred by Anna to Boris." in notes


async def test_a_transfer_to_someone_full_or_away_is_refused(database_url: str) -> None:
    config = make_config(database_url, max_chats=1)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        a = await gw.core.ingest(tg.customer_says("c1", "hi"))
        b = await gw.core.ingest(tg.customer_says("c2", "hi"))  # boris is now full
        full = await operator_writes(gw, tg, "anna", a.conversation_id, "/transfer boris")
        assert full.ignored == "Boris already has 1 of 1 conversations."
        await operator_writes(gw, tg, "boris", a.conversation_id, "/away")
        await operator_writes(gw, tg, "boris", b.conversation_id, "/close")
        away = await operator_writes(gw, tg, "anna", a.conversation_id, "/transfer boris")
        assert away.ignored == "Boris is away; pick someone online."
        assert (await conversation(gw, a.conversation_id)).assignee_id == "anna"


async def test_the_same_event_twice_even_concurrently_is_one_message(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        event = tg.customer_says("olga", "hello", event_id="update-42")
        results = await asyncio.gather(*(gw.core.ingest(event) for _ in range(8)))
        assert sum(not r.duplicate for r in results) == 1
        assert len({r.conversation_id for r in results}) == 1
        again = await gw.core.ingest(event)
        assert again.duplicate
        stored = [m for m in await messages(gw, again.conversation_id) if m.direction == "in"]
        assert len(stored) == 1
        await settle(gw)
        assert len([t for t in tg.to_customer("chat-olga") if t.startswith("Hello!")]) == 1


async def test_only_configured_operators_act(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        await settle(gw)
        stranger = await gw.core.ingest(tg.operator_says("666", result.conversation_id, "hey"))
        assert stranger.ignored == "the sender is not a configured operator"
        command = await gw.core.ingest(tg.operator_says("666", result.conversation_id, "/close"))
        assert command.ignored == "Only configured operators can do that."
        await settle(gw)
        assert (await conversation(gw, result.conversation_id)).status == "assigned"
        assert "hey" not in tg.to_customer("chat-olga")


def test_a_malformed_event_is_refused_with_the_field_named() -> None:
    sender = Sender(external_id="42", display_name="Olga")
    with pytest.raises(InvalidEvent, match=r"Inbound\.event_id is empty"):
        Inbound(channel="telegram", event_id="", chat_id="1", sender=sender, text="hi")
    with pytest.raises(InvalidEvent, match="neither text nor attachments"):
        Inbound(channel="telegram", event_id="1", chat_id="1", sender=sender)
    with pytest.raises(InvalidEvent, match="timezone-aware"):
        Inbound(
            channel="telegram",
            event_id="1",
            chat_id="1",
            sender=sender,
            text="hi",
            sent_at=datetime(2026, 1, 1),
        )


async def test_status_names_the_waiting_customers_oldest_first(database_url: str) -> None:
    config = make_config(database_url, ("anna",), max_chats=1)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        for name in ("olga", "petro", "ivan"):
            await gw.core.ingest(tg.customer_says(name, "hello"))
        anna = operator_tg(config, "anna")
        result = await gw.core.act(OperatorCommand("telegram", "st-1", anna, "status"))
        assert result.message.splitlines() == [
            "Queue: 2 waiting, the oldest for 0 min.",
            "  #2 Petro (telegram), 0 min",
            "  #3 Ivan (telegram), 0 min",
            "Online: Anna 1/1.",
        ]


async def test_a_burst_is_read_ahead_in_a_few_statements_and_answered_as_one_by_one(
    database_url: str,
) -> None:
    """A poll's updates share a transaction, which asks the database for their dedupe
    keys, senders and latest conversations once (Transaction.preload); what each
    message then finds must be what it would have found alone, including what the
    burst's earlier messages changed: a sender seen first in the burst, a second
    message of a reopened conversation, the same update twice."""
    config = make_config(database_url, max_chats=50)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        olga = await gw.core.ingest(tg.customer_says("olga", "first question"))
        petr = await gw.core.ingest(tg.customer_says("petr", "still open"))
        await operator_writes(gw, tg, "anna", olga.conversation_id, "/close")
        await settle(gw)

        reads: Counter[str] = Counter()

        def count(conn, cursor, statement, parameters, context, executemany) -> None:
            if statement.lstrip().upper().startswith("SELECT"):
                # the shapes only ingest asks (the outbox workers run alongside)
                for shape in (
                    "FROM inbound_events",
                    "FROM customer_identities JOIN customers",
                    "FROM operator_states",
                    "GROUP BY conversations.assignee_id",
                ):
                    if shape in statement:
                        reads[shape] += 1
            elif statement.lstrip().startswith("INSERT INTO messages"):
                reads["INSERT INTO messages"] += 1
                reads["messages inserted"] += len(parameters) if executemany else 1
            else:
                for shape in ("INSERT INTO conversations", "INSERT INTO customers"):
                    if statement.lstrip().startswith(shape):
                        reads[shape] += 1

        engine = gw.repository.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            burst = [
                tg.customer_says(user, f"{user} {n}", event_id=f"burst-{user}-{n}")
                for n in range(2)
                for user in ("olga", "petr", "vera", "ivan", "zoya")
            ]
            burst.append(burst[2])  # vera's first update, delivered twice
            results = await asyncio.gather(*(gw.core.ingest(inbound) for inbound in burst))
        finally:
            event.remove(engine, "before_cursor_execute", count)

        by_user: dict[str, set[int]] = {}
        for inbound, result in zip(burst, results, strict=True):
            by_user.setdefault(inbound.sender.external_id, set()).add(result.conversation_id)
        assert by_user["olga"] == {olga.conversation_id}  # reopened, both messages in it
        assert by_user["petr"] == {petr.conversation_id}
        new = [by_user[user] for user in ("vera", "ivan", "zoya")]
        assert all(len(ids) == 1 for ids in new)
        assert len(set().union(*new)) == 3
        assert [r.duplicate for r in results] == [False] * 10 + [True]
        assert results[-1].message_id == results[2].message_id
        reopened = await conversation(gw, olga.conversation_id)
        assert reopened.status != ConversationStatus.RESOLVED
        for user in ("olga", "petr", "vera", "ivan", "zoya"):
            (conv_id,) = by_user[user]
            texts = [m.text for m in await messages(gw, conv_id) if m.direction == Direction.IN]
            assert texts[-2:] == [f"{user} 0", f"{user} 1"]
        # one statement for the burst's first messages, and a read of its own for
        # each second message of a known customer and for the update delivered
        # twice (what an earlier unit wrote is not read ahead; a customer it
        # created is known without reading); one by one, it was a read each
        assert reads["FROM customer_identities JOIN customers"] <= 1 + 2, reads
        assert reads["FROM inbound_events"] <= 1 + 1
        # the operators and their loads are read once per transaction (the burst
        # needs at most two), not again for every conversation routed
        assert reads["FROM operator_states"] <= 2, reads
        assert reads["GROUP BY conversations.assignee_id"] <= 2, reads
        # the new customers and conversations are written with the commit, each
        # table's rows in one statement, not one by one and then updated
        assert reads["INSERT INTO customers"] <= 2, reads
        assert reads["INSERT INTO conversations"] <= 2, reads
        # the burst's messages (ten, with the greetings and notes of three new
        # conversations) are written together (Transaction.add_message), not one by one
        assert reads["messages inserted"] >= 10 + 3 * 2
        assert reads["INSERT INTO messages"] <= 3


async def test_conversations_of_a_burst_are_numbered_without_gaps(database_url: str) -> None:
    """Operators see conversation numbers (#3 in a topic's name, in mail subjects): new
    ones take their ids before they are written, a burst's in one go on PostgreSQL
    (Transaction.preload), and none is skipped, whatever the backend."""
    config = make_config(database_url, max_chats=50)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        first = await gw.core.ingest(tg.customer_says("olga", "hello"))
        burst = [
            tg.customer_says(user, f"{user} {n}", event_id=f"{user}-{n}")
            for n in range(2)
            for user in ("petr", "vera", "ivan", "zoya")
        ]
        results = await asyncio.gather(*(gw.core.ingest(inbound) for inbound in burst))
        later = await gw.core.ingest(tg.customer_says("anna", "hi"))
        numbers = sorted({first.conversation_id, *(r.conversation_id for r in results)})
        assert numbers == [1, 2, 3, 4, 5]
        assert later.conversation_id == 6


async def test_a_bug_in_an_action_changes_nothing_and_the_operator_is_told(
    sqlite_url: str,
) -> None:
    """An action that raises (a bug meeting an unusual argument) keeps nothing it
    did, answers the operator where they typed, and is not run again when the same
    command comes back (a platform's retry)."""
    config = make_config(sqlite_url, ("anna",))
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("olga", "hello"))
        await settle(gw)
        action = gw.core.actions.get("close")
        assert action is not None
        runs = 0

        async def broken(ctx):  # type: ignore[no-untyped-def]
            nonlocal runs
            runs += 1
            await action.handler(ctx)  # it closes the conversation, then fails
            raise RuntimeError("a bug")

        gw.core.actions._actions["close"] = replace(action, handler=broken)
        anna = operator_tg(config, "anna")
        thread = str((await all_conversations(gw))[0].id)
        command = OperatorCommand(
            "telegram", "close-1", anna, "close", workspace_thread=f"T{thread}", answer="always"
        )
        result = await gw.core.act(command)
        assert not result.ok
        assert (await all_conversations(gw))[0].status == ConversationStatus.ASSIGNED
        await settle(gw)
        notices = [d.outbound for d in tg.deliveries if d.outbound.kind == "notice"]
        assert [(n.ok, "failed" in n.text) for n in notices] == [(False, True)]
        assert (await gw.core.act(command)).message == "already done"
        assert runs == 1


async def test_the_conversation_speaks_what_the_customer_writes(sqlite_url: str) -> None:
    """The first message decides the language when it is clear, over the app's
    setting (a Ukrainian with an English phone) and where the platform says nothing
    (Slack, email); when it is not clear, the setting or the desk's default stands."""
    config = make_config(sqlite_url, ("anna",))
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("taras", "Де моє замовлення?", language="en"))
        await gw.core.ingest(tg.customer_says("olga", "Где мой заказ?"))
        await gw.core.ingest(tg.customer_says("pat", "hi", language="de"))
        await gw.core.ingest(tg.customer_says("sam", "hi"))
        languages = [c.language for c in await all_conversations(gw)]
        assert languages == ["uk", "ru", "de", config.gateway.default_language]
        # a conversation begun with too few words takes the first clear message's
        # language and keeps it: a later message in another language changes nothing
        await gw.core.ingest(tg.customer_says("sam", "Скільки коштує доставка до Львова?"))
        await gw.core.ingest(tg.customer_says("sam", "Сколько стоит доставка?"))
        await gw.core.ingest(tg.customer_says("taras", "Where is my order?"))
        languages = [c.language for c in await all_conversations(gw)]
        assert languages == ["uk", "ru", "de", "uk"]
