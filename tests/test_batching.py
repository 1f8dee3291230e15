"""Shared transactions (group commit) and one-call-at-a-time rate-limit keys."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from gateway.adapter import RateLimit
from gateway.core import GroupCommit
from gateway.events import Delivery, Outbound
from gateway.ratelimit import Limiter
from storage import Database, Repository, Transaction
from storage.migrate import upgrade
from storage.models import InboundEvent


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
                "chat", rate=1000, per_seconds=1.0, burst=100, key=lambda d: d.outbound.chat_id,
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
