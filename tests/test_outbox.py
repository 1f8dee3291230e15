"""Deliveries: retries, throttling, failures, order, and restarts that lose nothing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from gateway.adapter import RateLimit
from gateway.config import parse_config
from gateway.errors import PermanentFailure, RateLimited, ShuttingDown, TemporaryFailure
from gateway.events import Attachment, ConversationCard, Delivery, Outbound, Receipt
from storage import Direction, OutboxRow, OutboxStatus
from tests.support import (
    RecordingAdapter,
    config_text,
    conversation,
    make_config,
    messages,
    operator_tg,
    operator_writes,
    running,
    settle,
)
from tests.telegram_support import eventually


async def outbox_rows(gw) -> list[OutboxRow]:
    async with gw.repository.transaction() as tx:
        return list((await tx.session.exec(select(OutboxRow))).all())


async def test_a_throttled_chat_gets_everything_once_and_in_order(database_url: str) -> None:
    config = make_config(database_url, max_attempts=2)
    tg = RecordingAdapter()
    tg.fail("chat-olga", lambda: RateLimited(0.05), times=4)  # more than max_attempts
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("olga", "hi"))
        await settle(gw)
        # 429s do not use up tries: both texts arrive, once each, greeting first
        assert tg.to_customer("chat-olga") == ["Hello!\n\nAnna will help you."]
        assert gw.workers["telegram"].rate_limited == 4
        assert all(r.status == OutboxStatus.SENT for r in await outbox_rows(gw))


async def test_a_failing_send_is_retried_and_later_ones_wait_for_it(database_url: str) -> None:
    config = make_config(database_url, max_attempts=5)
    tg = RecordingAdapter()
    tg.fail("chat-olga", lambda: TemporaryFailure("502 Bad Gateway"), times=3)
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("olga", "hi"))
        await settle(gw)
        assert tg.to_customer("chat-olga") == ["Hello!\n\nAnna will help you."]
        greeting = next(r for r in await outbox_rows(gw) if r.payload["text"].startswith("Hello!"))
        assert greeting.attempts == 4
        assert greeting.last_error == "502 Bad Gateway"


async def test_a_blocked_customer_is_shown_to_operators(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        await settle(gw)
        tg.fail("chat-olga", lambda: PermanentFailure("the customer blocked the bot"))
        await operator_writes(gw, tg, "anna", result.conversation_id, "Hello Olga")
        await settle(gw)
        system = [
            m.text
            for m in await messages(gw, result.conversation_id)
            if m.direction == Direction.SYSTEM
        ]
        assert "⚠ Not delivered: the customer blocked the bot" in system
        thread = [d.outbound.text for d in tg.in_thread(result.conversation_id)]
        assert "⚠ Not delivered: the customer blocked the bot" in thread
        failed = [r for r in await outbox_rows(gw) if r.status == OutboxStatus.FAILED]
        assert [r.payload["text"] for r in failed] == ["Hello Olga"]
        # the reply was never received, so it is no first response
        assert (await conversation(gw, result.conversation_id)).first_response_at is None


async def test_giving_up_after_max_attempts_marks_the_delivery_failed(database_url: str) -> None:
    config = make_config(database_url, max_attempts=3)
    tg = RecordingAdapter()
    tg.fail("chat-olga", lambda: TemporaryFailure("timeout"), times=100)
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        await settle(gw)
        failed = [r for r in await outbox_rows(gw) if r.status == OutboxStatus.FAILED]
        assert failed and all(r.attempts == 3 for r in failed)
        assert failed[0].last_error == "gave up after 3 attempts: timeout"
        assert tg.to_customer("chat-olga") == []
        system = [
            m.text
            for m in await messages(gw, result.conversation_id)
            if m.direction == Direction.SYSTEM
        ]
        assert any(t.startswith("⚠ Not delivered: gave up after 3 attempts") for t in system)


class StalledAdapter(RecordingAdapter):
    """A platform that accepts connections and never answers."""

    async def deliver(self, delivery: Delivery):  # type: ignore[override]
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_restart_keeps_queue_assignments_and_undelivered_rows(database_url: str) -> None:
    config = make_config(database_url, operators=("anna",), max_chats=1)
    config = config.__class__(
        core=config.core.model_copy(
            update={"gateway": config.gateway.model_copy(update={"shutdown_timeout_seconds": 0.1})}
        ),
        channels=config.channels,
    )
    stalled = StalledAdapter()
    async with running(config, stalled) as gw:
        first = await gw.core.ingest(stalled.customer_says("olga", "hi", event_id="u1"))
        second = await gw.core.ingest(stalled.customer_says("petr", "hi", event_id="u2"))
        pending_before = {r.dedupe_key for r in await outbox_rows(gw)}
    # the platform re-sends an update that was committed before the stop
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        again = await gw.core.ingest(tg.customer_says("olga", "hi", event_id="u1"))
        assert again.duplicate
        await settle(gw)
        assert (await conversation(gw, first.conversation_id)).assignee_id == "anna"
        assert (await conversation(gw, second.conversation_id)).status == "queued"
        rows = await outbox_rows(gw)
        assert {r.dedupe_key for r in rows} == pending_before
        assert all(r.status == OutboxStatus.SENT for r in rows)
        # every row delivered exactly once
        sent = Counter(d.key for d in tg.deliveries)
        unchanged = {r.dedupe_key for r in rows if (r.receipt or {}).get("unchanged")}
        assert set(sent) == pending_before - unchanged
        assert max(sent.values()) == 1
        assert all(":header:" in key for key in unchanged)
        assert tg.to_customer("chat-olga") == ["Hello!\n\nAnna will help you."]
        assert tg.to_customer("chat-petr") == ["Hello!\n\nYou are number 1 in line."]


async def test_edits_follow_the_message_both_ways(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "helo", message_id="c1"))
        await gw.core.ingest(tg.customer_says("olga", "hello", edit_of="c1"))
        await settle(gw)
        edits = [d for d in tg.in_thread(result.conversation_id) if d.outbound.kind == "edit"]
        assert [e.outbound.text for e in edits] == ["hello"]
        assert len(edits[0].edit_refs) == 1  # the copy in the thread

        anna = operator_tg(config, "anna")
        reply = await gw.core.ingest(
            tg.operator_says(anna, result.conversation_id, "Hi Olgaa", message_id="w1")
        )
        await settle(gw)
        await gw.core.ingest(
            tg.operator_says(anna, result.conversation_id, "Hi Olga", edit_of="w1")
        )
        await settle(gw)
        to_customer = [
            d
            for d in tg.deliveries
            if d.outbound.audience == "customer" and d.outbound.kind == "edit"
        ]
        assert [d.outbound.text for d in to_customer] == ["Hi Olga"]
        assert len(to_customer[0].edit_refs) == 1  # the copy the customer received
        stored = {m.id: m for m in await messages(gw, result.conversation_id)}
        assert stored[reply.message_id].text == "Hi Olga"
        assert stored[reply.message_id].edited_at is not None
        assert len([m for m in stored.values() if m.direction == Direction.OUT]) == 1


async def test_a_note_never_reaches_the_customer(database_url: str) -> None:
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        done = await operator_writes(gw, tg, "anna", result.conversation_id, "/note VIP, be nice")
        assert done.ignored is None
        await settle(gw)
        assert all("VIP" not in text for text in tg.to_customer("chat-olga"))
        notes = [
            m for m in await messages(gw, result.conversation_id) if m.direction == Direction.NOTE
        ]
        assert [(n.text, n.author_id) for n in notes] == [("VIP, be nice", "anna")]


async def test_a_stopping_gateway_refuses_new_events_so_they_are_not_acknowledged(
    sqlite_url: str,
) -> None:
    config = make_config(sqlite_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        host = tg.host
        assert host is not None
        await host.ingest(tg.customer_says("olga", "before"))
        stopping = asyncio.create_task(gw.stop())
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown):
            await host.ingest(tg.customer_says("petr", "during"))
        await stopping


@pytest.mark.parametrize("opens_with_messages", [False, True])
async def test_messages_behind_a_throttled_one_go_with_it_in_one_call(
    database_url: str, opens_with_messages: bool
) -> None:
    """A row that could not go now is not claimed to wait in the limiter: what the
    customer writes meanwhile joins it, and the backlog costs one call. An opening
    header that could carry the first messages does not while throttled: they wait
    with the rest."""
    config = make_config(database_url)
    tg = RecordingAdapter(
        max_batch=20,
        opens_with_messages=opens_with_messages,
        rate_limits=(
            RateLimit(
                "group", rate=1, per_seconds=1.0, burst=1,
                key=lambda d: "group" if d.outbound.audience == "workspace" else None,
            ),
        ),
    )  # fmt: skip
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("olga", "hi"))
        for n in range(5):
            await gw.core.ingest(tg.customer_says("olga", f"more {n}"))
        await settle(gw)
        copies = [
            d
            for d in tg.deliveries
            if d.outbound.audience == "workspace" and d.outbound.kind == "message"
        ]
        # the header took the one token; the six messages waited for the next together
        assert [[p.outbound.text for p in (d, *d.more)] for d in copies] == [
            ["hi", *(f"more {n}" for n in range(5))]
        ]


async def test_a_thread_opens_with_the_messages_queued_behind_its_header(
    database_url: str,
) -> None:
    """Where the destination takes them along (Telegram), the header that opens a
    conversation's thread carries the customer's first messages: one delivery, not
    one for the header and one once the thread is recorded. Each message keeps its
    own row and its copy's ref, so an edit later still reaches it."""
    config = make_config(database_url)
    tg = RecordingAdapter(max_batch=20, opens_with_messages=True)
    async with running(config, tg) as gw:
        texts = ("hi", "my parcel", "is late")
        results = await asyncio.gather(
            *(
                gw.core.ingest(tg.customer_says("olga", text, message_id=f"c{n}"))
                for n, text in enumerate(texts)
            )
        )
        await settle(gw)
        cid = results[0].conversation_id
        assert cid is not None
        opened = [d for d in tg.deliveries if d.outbound.audience == "workspace"]
        assert [(d.outbound.kind, [m.outbound.text for m in d.more]) for d in opened] == [
            ("header", list(texts))
        ]
        assert all(r.status == OutboxStatus.SENT for r in await outbox_rows(gw))

        await gw.core.ingest(tg.customer_says("olga", "is very late", edit_of="c2"))
        await settle(gw)
        edits = [d for d in tg.in_thread(cid) if d.outbound.kind == "edit"]
        assert [(e.outbound.text, len(e.edit_refs)) for e in edits] == [("is very late", 1)]
        # a header refresh carries nothing: only an opening one does
        await operator_writes(gw, tg, "anna", cid, "/transfer boris")
        await gw.core.ingest(tg.customer_says("olga", "thanks"))
        await settle(gw)
        later = [d for d in tg.deliveries if d.outbound.audience == "workspace"][len(opened) :]
        assert all(not d.more for d in later if d.outbound.kind == "header")


async def test_messages_an_opening_header_could_not_carry_go_on_their_own(
    database_url: str,
) -> None:
    """A carried message that could not be posted after the header went does not
    fail the header: its row goes back to the queue and is sent on its own."""
    config = make_config(database_url)
    tg = RecordingAdapter(max_batch=20, opens_with_messages=True)
    tg.fail("carried", lambda: TemporaryFailure("unused"))
    async with running(config, tg) as gw:
        results = await asyncio.gather(
            gw.core.ingest(tg.customer_says("olga", "hi")),
            gw.core.ingest(tg.customer_says("olga", "anyone?")),
        )
        await settle(gw)
        cid = results[0].conversation_id
        workspace = [d for d in tg.deliveries if d.outbound.audience == "workspace"]
        assert [(d.outbound.kind, d.thread_ref) for d in workspace] == [
            ("header", None),
            ("message", f"T{cid}"),  # on their own, into the thread the header opened
        ]
        assert [p.outbound.text for p in (workspace[1], *workspace[1].more)] == ["hi", "anyone?"]
        rows = {r.dedupe_key: r for r in await outbox_rows(gw)}
        assert all(r.status == OutboxStatus.SENT for r in rows.values())
        header = next(r for key, r in rows.items() if ":header:" in key)
        assert header.attempts == 1
        carried = [
            r for r in rows.values() if r.kind == "message" and r.payload["audience"] == "workspace"
        ]
        assert [r.attempts for r in carried] == [2, 2]  # the ride along counted


async def test_a_new_conversation_opens_with_one_card_that_names_its_operator(
    database_url: str,
) -> None:
    """Assigning a conversation in the transaction that opens it costs no note and no
    second card in the workspace: the card, rendered when sent, names the operator
    (Telegram allows a group 20 bot messages a minute). The history keeps the note."""
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        result = await gw.core.ingest(tg.customer_says("olga", "hi"))
        await settle(gw)
        cid = result.conversation_id
        assert cid is not None
        headers = [d for d in tg.in_thread(cid) if d.outbound.kind == "header"]
        assert len(headers) == 1
        assert headers[0].outbound.card is not None
        assert headers[0].outbound.card.assignee_name == "Anna"
        assert tg.notes(cid) == []
        stored = await messages(gw, cid)
        assert [m.text for m in stored if m.direction == Direction.SYSTEM] == ["Assigned to Anna."]
        # a later hand-over is news in the thread: it is posted
        await operator_writes(gw, tg, "anna", cid, "/transfer boris")
        await settle(gw)
        notes = [text for text, _ in tg.notes(cid)]
        assert len(notes) == 1 and "Boris" in notes[0]


def test_an_outbound_comes_back_from_its_stored_payload_as_it_was() -> None:
    """The payload is stored as JSON and read back when the row is sent."""
    outbound = Outbound(
        destination="telegram",
        audience="workspace",
        kind="header",
        conversation_id=7,
        text="hi",
        author_name="Olga",
        author_role="customer",
        attachments=(Attachment(kind="photo", file_ref="f1", name="a.jpg", size=3),),
        message_id=11,
        card=ConversationCard(
            conversation_id=7, customer_name="Olga", customer_username="olga",
            customer_external_id="42", channel="telegram", language="de", status="queued",
            assignee_name=None,
        ),
        choices=(("1", "Yes"), ("2", "No")),
        mentions=("anna",),
    )  # fmt: skip
    stored = json.loads(json.dumps(outbound.to_payload()))
    assert Outbound.from_payload(stored) == outbound
    plain = Outbound(destination="slack", audience="customer", kind="message", conversation_id=1)
    assert Outbound.from_payload(json.loads(json.dumps(plain.to_payload()))) == plain


async def test_a_database_error_while_preparing_rolls_the_claim_back_and_nothing_is_lost(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Deliveries are prepared in their claim's transaction; when the database fails
    there (a fault injected into one statement), the claim is undone with it, the
    next claim prepares apart, and every message still arrives once, in order."""
    config = make_config(database_url)
    tg = RecordingAdapter()
    async with running(config, tg) as gw:
        engine = gw.repository.db.engine.sync_engine
        faults = 0

        def fail_once(conn, cursor, statement, parameters, context, executemany) -> None:
            nonlocal faults
            if "FROM workspace_threads" in statement and faults == 0:
                faults += 1
                raise OperationalError(statement, parameters, RuntimeError("disk I/O error"))

        event.listen(engine, "before_cursor_execute", fail_once)
        try:
            olga = await gw.core.ingest(tg.customer_says("olga", "hi"))
            await settle(gw)
        finally:
            event.remove(engine, "before_cursor_execute", fail_once)
        assert faults == 1
        assert "claiming deliveries for telegram failed" in caplog.text
        assert tg.to_customer("chat-olga") == ["Hello!\n\nAnna will help you."]
        thread = [(d.outbound.kind, d.outbound.text) for d in tg.in_thread(olga.conversation_id)]
        assert thread == [("header", ""), ("message", "hi")]
        rows = await outbox_rows(gw)
        assert all(r.status == OutboxStatus.SENT for r in rows)
        assert all(r.attempts == 1 for r in rows)  # the undone claim left no trace


@dataclass
class CountingAdapter(RecordingAdapter):
    """Counts the deliveries it is making at once; each takes a moment, so that
    sends allowed to overlap do."""

    max_in_flight: int | None = None
    now: int = 0
    most: int = 0

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.005)
            return await super().deliver(delivery)
        finally:
            self.now -= 1


@pytest.mark.parametrize(("ceiling", "concurrency", "expected"), [(2, 64, 2), (8, 3, 3)])
async def test_a_platform_never_has_more_sends_at_once_than_it_or_the_config_allows(
    database_url: str, ceiling: int, concurrency: int, expected: int
) -> None:
    """A mail relay counts connections per client: the email adapter's ceiling
    holds whatever ``[outbox] concurrency`` says, and a lower setting holds too."""
    text = config_text(database_url, max_chats=10)
    config = parse_config(text.replace("[outbox]\n", f"[outbox]\nconcurrency = {concurrency}\n"))
    tg = CountingAdapter(max_in_flight=ceiling)
    async with running(config, tg) as gw:
        for n in range(8):
            await gw.core.ingest(tg.customer_says(f"customer{n}", "hello"))
        await settle(gw)
        assert gw.workers["telegram"].concurrency == expected
        assert tg.most == expected  # as many as allowed went at once, never more
        for n in range(8):
            assert tg.to_customer(f"chat-customer{n}")  # and everyone was answered


async def test_a_send_in_flight_keeps_renewing_its_short_lease(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases are short, so that on PostgreSQL another process takes a dead one's
    rows over within seconds (they waited out 120 s); a live send that takes longer
    than a lease keeps its row, its lease renewed while it runs."""
    from gateway import outbox

    monkeypatch.setattr(outbox, "LEASE", timedelta(seconds=1))
    monkeypatch.setattr(outbox, "HEARTBEAT_SECONDS", 0.2)
    config = make_config(database_url)
    gate = asyncio.Event()
    tg = RecordingAdapter(gate=gate)  # the workspace's sends hang until the gate opens
    async with running(config, tg) as gw:
        await gw.core.ingest(tg.customer_says("olga", "hi"))

        async def header_lease() -> datetime | None:
            rows = await outbox_rows(gw)
            header = next(r for r in rows if r.kind == "header")
            return header.lease_until if header.status == OutboxStatus.SENDING else None

        first = await eventually(header_lease)  # the send hangs, holding its row

        async def renewed() -> bool:
            lease = await header_lease()
            return lease is not None and lease > first + timedelta(seconds=1)

        await eventually(renewed)  # still its own, past its first lease's end
        gate.set()
        await settle(gw)
        assert all(r.status == OutboxStatus.SENT for r in await outbox_rows(gw))
        assert sum(1 for d in tg.deliveries if d.outbound.kind == "header") == 1


def test_every_channel_adapter_declares_the_whole_adapter_contract() -> None:
    """The outbox and the health check read each part of ``Adapter`` as an attribute:
    an adapter states what it has, and inherits the rest with its meaning."""
    from adapters.email.adapter import EmailAdapter
    from adapters.slack.adapter import SlackAdapter
    from adapters.telegram.adapter import TelegramAdapter
    from gateway.adapter import Adapter, AdapterBase

    parts = [name for name in Adapter.__annotations__] + ["readiness", "recorded"]
    for adapter_class in (TelegramAdapter, SlackAdapter, EmailAdapter, RecordingAdapter):
        assert issubclass(adapter_class, AdapterBase), adapter_class
        missing = [p for p in parts if p != "name" and not hasattr(adapter_class, p)]
        assert not missing, (adapter_class, missing)
