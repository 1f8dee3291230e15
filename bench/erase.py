"""Erasing one customer (GDPR article 17) among many: a customer with 10,000 messages
(1,000 conversations) in a database of 100,000, indexed for search, erased with
``gateway erase``'s transaction. Target: under a second on SQLite.
Run: ``python -m bench.erase [--messages N] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from sqlalchemy import text

from bench.processes import fresh_database
from bench.search import fill, sqlite_url
from gateway.privacy import erase_customer
from storage import Database, Repository
from storage.migrate import upgrade


async def run(url: str, messages: int, theirs: int) -> dict[str, float]:
    db = Database(url)
    try:
        await upgrade(db)
        await fill(db, messages, random.Random(3))
        # one customer's share: every conversation of customer 1 gets their messages
        async with db.engine.begin() as conn:
            conversations = theirs // 10
            await conn.execute(
                text("UPDATE conversations SET customer_id = 1 WHERE id <= :n"),
                {"n": conversations},
            )
            await conn.execute(
                text(
                    "INSERT INTO customer_identities (customer_id, channel, external_id) "
                    "VALUES (1, 'telegram', 'bench-customer')"
                )
            )
        repository = Repository(db)
        while await repository.run(lambda tx: tx.index_messages(20_000)):
            pass
        began = time.perf_counter()
        done = await erase_customer(repository, "bench-customer", yes=True)
        seconds = time.perf_counter() - began
        assert done is not None and done.done
        return {"seconds": seconds, "messages": float(done.counts["messages"])}
    finally:
        await db.dispose()


async def both(
    messages: int, theirs: int, postgres: str | None
) -> list[tuple[str, dict[str, float]]]:
    results = []
    async with sqlite_url() as url:
        results.append(("SQLite", await run(url, messages, theirs)))
    if postgres:
        async with fresh_database(postgres, "gw_erase") as url:
            results.append(("PostgreSQL", await run(url, messages, theirs)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--theirs", type=int, default=10_000, help="the erased customer's")
    parser.add_argument("--postgres", help="a PostgreSQL server's URL, to measure it too")
    args = parser.parse_args()
    for name, r in asyncio.run(both(args.messages, args.theirs, args.postgres)):
        print(
            f"{name}: erased a customer with {r['messages']:,.0f} messages among "
            f"{args.messages:,} in {r['seconds'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
