"""The core's unit of work: one retried transaction that keeps the deadlines and
the outbox in step with what it changed.

Before it commits, the deadlines of every conversation it changed are planned
again (``Timers.settle``), so a deadline never outlives the state it was for; after
it commits, the outbox workers it gave rows to wake at once instead of at their
next poll.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.timers import Timers
from storage import Repository, Transaction

T = TypeVar("T")


class Transactions:
    def __init__(
        self,
        repository: Repository,
        timers: Timers,
        on_enqueued: Callable[[set[str]], None] = lambda destinations: None,
    ) -> None:
        self.repository = repository
        self.timers = timers
        self.on_enqueued = on_enqueued

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        async def unit(tx: Transaction) -> T:
            result = await work(tx)
            await self.timers.settle(tx)
            return result

        def wake(tx: Transaction) -> None:
            self.timers.committed(tx)
            if tx.touched:
                self.on_enqueued(tx.touched)

        return await self.repository.run(unit, after_commit=wake)
