"""Shared transactions (group commit) and one-call-at-a-time rate-limit keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from gateway.adapter import RateLimit
from gateway.app import compose_core
from gateway.events import Delivery, Outbound, Receipt
from gateway.groupcommit import GroupCommit
from gateway.ratelimit import SERIAL_WINDOW, Limiter
from storage import Database, Repository, Transaction
from storage.migrate import upgrade
from storage.models import InboundEvent, OutboxRow, OutboxStatus
from tests.support import make_config


@pytest.fixture
async def repository(database_url: str):
    db = Database(database_url)
    await upgrade(db)
    yield Repository(db)
    await db.dispose()


async def _keys(repository: Repository) -> set[str]:
    async with repository.transaction() as tx:
        rows = (await tx.session.exec(select(InboundEvent))).all()
    return {row.event_id for row in rows}


async def test_units_arriving_together_share_a_transaction_and_each_gets_its_answer(
    repository: Repository,
) -> None:
    transactions = 0

    async def transact(work):
        nonlocal transactions
        transactions += 1
        return await repository.run(work)

    batch = GroupCommit(transact)

    def unit(n: int):
        async def work(tx: Transaction) -> int:
            tx.record_event("test", f"e{n}")
            await tx.flush()
            return n * 10

        return work

    results = await asyncio.gather(*(batch.run(unit(n)) for n in range(30)))
    assert results == [n * 10 for n in range(30)]
    assert await _keys(repository) == {f"e{n}" for n in range(30)}
    # all 30 were waiting before the first transaction began: one for all
    assert transactions == 1


async def test_one_failing_unit_does_not_hold_back_the_others(repository: Repository) -> None:
    batch = GroupCommit(repository.run)

    def unit(n: int):
        async def work(tx: Transaction) -> str:
            tx.record_event("test", f"e{n}")
            await tx.flush()
            if n == 3:
                raise ValueError("a bug in one event")
            return f"done {n}"

        return work

    results = await asyncio.gather(*(batch.run(unit(n)) for n in range(8)), return_exceptions=True)
    assert isinstance(results[3], ValueError)
    assert [r for n, r in enumerate(results) if n != 3] == [f"done {n}" for n in range(8) if n != 3]
    # the shared transaction was rolled back and each unit ran again alone: the
    # failing one left nothing, the others are committed once
    assert await _keys(repository) == {f"e{n}" for n in range(8) if n != 3}


async def test_a_serial_key_carries_one_call_at_a_time_and_other_keys_go_alongside() -> None:
    limiter = Limiter(
        [
            RateLimit(
                "chat", rate=5, per_seconds=1.0, burst=100, key=lambda d: d.outbound.chat_id,
                serial=True,
            )
        ]
    )  # fmt: skip
    inside: dict[str, int] = {}
    most: dict[str, int] = {}
    together = 0

    async def send(chat: str) -> None:
        delivery = Delivery(
            outbound=Outbound(
                destination="t", audience="customer", kind="message", conversation_id=1,
                chat_id=chat,
            ),
            attempt=1,
            key="k",
        )  # fmt: skip
        nonlocal together
        async with limiter.slot(delivery):
            inside[chat] = inside.get(chat, 0) + 1
            most[chat] = max(most.get(chat, 0), inside[chat])
            together = max(together, sum(inside.values()))
            await asyncio.sleep(0.01)
            inside[chat] -= 1

    await asyncio.gather(*(send(chat) for chat in ("a", "b") * 5))
    assert most == {"a": 1, "b": 1}
    assert together == 2  # a's and b's calls went side by side
    assert limiter._serial == {}  # nothing is kept per chat once it is idle


async def test_a_serial_key_whose_rate_outruns_a_call_carries_what_the_rate_lets_go() -> None:
    """At a rate raised far above Telegram's (a local Bot API server, or the
    benchmark's limits off), one call at a time would hold a workspace group to one
    call per round trip: the key carries as many calls as its rate lets go in
    SERIAL_WINDOW, and no more."""
    rate = 40 / SERIAL_WINDOW  # 40 calls in a window
    limiter = Limiter(
        [RateLimit("chat", rate=rate, per_seconds=1.0, burst=1000, key=lambda _: "g", serial=True)]
    )
    inside = most = 0

    async def send() -> None:
        nonlocal inside, most
        delivery = Delivery(
            outbound=Outbound(
                destination="t", audience="workspace", kind="message", conversation_id=1
            ),
            attempt=1,
            key="k",
        )
        async with limiter.slot(delivery):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(send() for _ in range(100)))
    assert most == 40
    assert limiter._serial == {}


async def test_deliveries_recorded_together_cost_two_statements_whatever_their_number(
    repository: Repository, database_url: str
) -> None:
    """Outcomes of sends that end together share a transaction; their rows are read
    in one statement (Transaction.preload_sending) and marked sent in one more, and
    each keeps its own receipt. A row recorded already is left as it is."""
    core = compose_core(repository, lambda: make_config(database_url))
    async with repository.transaction() as tx:
        for n in range(12):
            outbound = Outbound(
                destination="telegram",
                audience="customer",
                kind="message",
                conversation_id=n,
                chat_id=f"chat{n}",
                text=f"text {n}",
            )
            await tx.enqueue(
                destination="telegram",
                chat_key=f"chat{n}",
                conversation_id=None,
                message_id=None,
                kind="message",
                payload=outbound.to_payload(),
                dedupe_key=f"k{n}",
                fresh=True,
            )
    async with repository.transaction() as tx:
        claimed = await tx.claim_outbox("telegram", limit=12, lease=timedelta(minutes=1))
    ids = [row.id for row in claimed]
    assert len(ids) == 12
    await core.delivering.delivered(ids[0], Receipt(external_ids=("first",)), None)

    outbox_statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "outbox" in statement and not statement.lstrip().upper().startswith("BEGIN"):
            outbox_statements.append(statement.split()[0].upper())

    engine = repository.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(
            *(
                core.delivering.delivered(row_id, Receipt(external_ids=(f"x{row_id}",)), None)
                for row_id in ids
            )
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert sorted(outbox_statements) == ["SELECT", "UPDATE"]
    async with repository.transaction() as tx:
        rows = {row.id: row for row in (await tx.session.exec(select(OutboxRow))).all()}
    assert all(row.status == OutboxStatus.SENT for row in rows.values())
    assert rows[ids[0]].receipt["external_ids"] == ["first"]  # recorded before: kept
    assert [rows[i].receipt["external_ids"] for i in ids[1:]] == [[f"x{i}"] for i in ids[1:]]
