"""Units of work that arrive while a transaction runs, sharing the next one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar

from storage import Transaction

log = logging.getLogger(__name__)
T = TypeVar("T")


class GroupCommit:
    """Units of work that arrive while a transaction runs share the next one.

    A platform hands over updates in bursts (Telegram up to 100 per poll), and a
    transaction's begin, commit and deadline planning cost more than most of the
    work in it; running the burst as one transaction pays them once. Each caller
    still returns only after its own work has committed. When the shared
    transaction fails, each unit runs again alone, so one bad event never holds
    back the others (every unit is safe to repeat: nothing of the failed
    transaction was kept).
    """

    def __init__(
        self,
        run: Callable[[Callable[[Transaction], Awaitable[object]]], Awaitable[object]],
        limit: int = 100,
        prepare: Callable[[Transaction, list[object]], Awaitable[None]] | None = None,
    ) -> None:
        self._transact = run
        self._limit = limit
        #: reads ahead, once per shared transaction, what its units will ask for
        #: (given each unit's hint); alone, a unit reads for itself
        self._prepare = prepare
        self._waiting: list[_Unit] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[Transaction], Awaitable[T]], hint: object = None) -> T:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.append(_Unit(work, future, hint))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[_Unit] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                if len(batch) > 1:
                    try:
                        results = await self._transact(self._all(batch))
                    except Exception as exc:
                        log.info("a shared transaction failed (%s); its units run alone", exc)
                    else:
                        for unit, result in zip(batch, results, strict=True):  # type: ignore[call-overload]
                            if not unit.future.done():
                                unit.future.set_result(result)
                        continue
                for unit in batch:
                    try:
                        result = await self._transact(unit.work)
                    except Exception as exc:
                        if not unit.future.done():
                            unit.future.set_exception(exc)
                    else:
                        if not unit.future.done():
                            unit.future.set_result(result)
        except BaseException:
            # cancelled (shutdown): nobody may wait for an answer that never comes
            for unit in [*batch, *self._waiting]:
                unit.future.cancel()
            self._waiting.clear()
            raise
        finally:
            self._task = None

    def _all(self, batch: list[_Unit]) -> Callable[[Transaction], Awaitable[list[object]]]:
        async def each(tx: Transaction) -> list[object]:
            if self._prepare is not None:
                await self._prepare(tx, [unit.hint for unit in batch])
            return [await unit.work(tx) for unit in batch]

        return each


class _Unit(NamedTuple):
    work: Callable[[Transaction], Awaitable[object]]
    future: asyncio.Future
    hint: object
