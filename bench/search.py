"""Search and history over a big database: 100,000 messages (2,000 customers, 10,000
conversations), then ``gateway search``'s query and ``/history``'s, timed.

Figures: how long SQLite's index takes to catch up with all of them at once (the
worst case: the gateway's tick does it 5,000 at a time), then the median, p95 and
worst of many searches for words of varied frequency, and of the card's history
query. Target: a search answers in under 100 ms.
Run: ``python -m bench.search [--messages N] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench.processes import fresh_database
from storage import Database, Repository
from storage.migrate import upgrade

#: words the generated messages are made of: a few very common, most rare
COMMON = ["hello", "order", "parcel", "please", "thanks", "delivery", "refund", "help"]
RARE = [f"sku{n:05d}" for n in range(5000)]
CYRILLIC = ["посылка", "заказ", "возврат", "доставка", "спасибо"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Result:
    messages: int
    backend: str
    index_seconds: float
    search_ms: list[float]
    history_ms: list[float]

    def lines(self) -> list[str]:
        def figures(values: list[float]) -> str:
            ordered = sorted(values)
            p95 = ordered[int(len(ordered) * 0.95) - 1]
            return (
                f"median {statistics.median(values):.1f} ms, p95 {p95:.1f} ms, "
                f"worst {max(values):.1f} ms"
            )

        return [
            f"{self.backend}, {self.messages:,} messages: index caught up in "
            f"{self.index_seconds:.2f} s",
            f"  search ({len(self.search_ms)} queries): {figures(self.search_ms)}",
            f"  history of a card ({len(self.history_ms)}): {figures(self.history_ms)}",
        ]


def sentence(rng: random.Random) -> str:
    words = rng.choices(COMMON, k=rng.randint(3, 8)) + rng.choices(RARE, k=rng.randint(1, 3))
    if rng.random() < 0.2:
        words += rng.choices(CYRILLIC, k=2)
    rng.shuffle(words)
    return " ".join(words)


async def fill(db: Database, messages: int, rng: random.Random) -> list[int]:
    """Customers, conversations and messages written straight to the tables."""
    customers = max(1, messages // 50)
    conversations = max(1, messages // 10)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sqlite = db.is_sqlite

    def stamp(at: datetime) -> object:
        return at.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else at

    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO customers (id, display_name, blocked, created_at) "
                "VALUES (:id, :name, false, :at)"
            ),
            [
                {"id": i, "name": f"Customer {i}", "at": stamp(start)}
                for i in range(1, customers + 1)
            ],
        )
        await conn.execute(
            text(
                "INSERT INTO conversations (id, customer_id, channel, chat_id, status, tags, "
                "language_sure, priority, created_at, updated_at) VALUES (:id, :customer, "
                "'telegram', :chat, 'resolved', '[]', false, 0, :at, :at)"
            ),
            [
                {
                    "id": i,
                    "customer": (i - 1) % customers + 1,
                    "chat": f"chat-{(i - 1) % customers + 1}",
                    "at": stamp(start + timedelta(minutes=i)),
                }
                for i in range(1, conversations + 1)
            ],
        )
        rows = [
            {
                "id": i,
                "conversation": (i - 1) // 10 + 1,
                "direction": "in" if i % 2 else "out",
                "text": sentence(rng),
                "at": stamp(start + timedelta(minutes=i // 10, seconds=i % 10)),
            }
            for i in range(1, messages + 1)
        ]
        for begin in range(0, len(rows), 10_000):
            await conn.execute(
                text(
                    "INSERT INTO messages (id, conversation_id, direction, text, attachments, "
                    "created_at) VALUES (:id, :conversation, :direction, :text, '[]', :at)"
                ),
                rows[begin : begin + 10_000],
            )
    return list(range(1, conversations + 1))


async def run(url: str, messages: int, queries: int = 60) -> Result:
    rng = random.Random(7)
    db = Database(url)
    try:
        await upgrade(db)
        conversations = await fill(db, messages, rng)
        if not db.is_sqlite:
            async with db.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))  # what autovacuum does on a live server
        repository = Repository(db)
        began = time.perf_counter()
        while await repository.run(lambda tx: tx.index_messages(20_000)):
            pass
        index_seconds = time.perf_counter() - began
        words = COMMON[:3] + rng.sample(RARE, queries - 10) + CYRILLIC[:3] + ["parc", "sku0001"]
        words += ["refund " + RARE[1], "hello thanks"]
        search_ms = []
        for query in words:
            began = time.perf_counter()
            async with repository.transaction() as tx:
                await tx.search_messages(query, EPOCH, 50)
            search_ms.append((time.perf_counter() - began) * 1000)
        history_ms = []
        for conversation_id in rng.sample(conversations, 30):
            began = time.perf_counter()
            async with repository.transaction() as tx:
                await tx.earlier_conversations([conversation_id])
            history_ms.append((time.perf_counter() - began) * 1000)
        return Result(
            messages,
            "SQLite" if db.is_sqlite else "PostgreSQL",
            index_seconds,
            search_ms,
            history_ms,
        )
    finally:
        await db.dispose()


@asynccontextmanager
async def sqlite_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite+aiosqlite:///{Path(folder) / 'search.db'}"


async def both(messages: int, postgres: str | None) -> list[Result]:
    results = []
    async with sqlite_url() as url:
        results.append(await run(url, messages))
    if postgres:
        async with fresh_database(postgres, "gw_search") as url:
            results.append(await run(url, messages))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server's URL, to measure it too")
    args = parser.parse_args()
    for result in asyncio.run(both(args.messages, args.postgres)):
        print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
