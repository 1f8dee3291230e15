"""Memory with many open conversations: the RSS the gateway adds for each one.

A gateway on SQLite (in this process) takes the first message of N customers, so N
conversations are open, routed and relayed; then its RSS is compared with the RSS it
had once started. What should not grow with the number of conversations (caches,
rate-limit buckets, per-chat state) shows here. Run: ``python -m bench.memory [--conversations N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import tempfile
import time
from pathlib import Path

from bench.ingest import CONFIG, NullChannel
from gateway.app import Gateway
from gateway.config import parse_config
from gateway.events import Inbound, Sender
from storage import FINISHED_STATUSES, Database
from storage.migrate import upgrade


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(url: str, conversations: int, concurrency: int = 100) -> dict[str, float]:
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    channel = NullChannel()
    config = parse_config(CONFIG.format(url=url).replace("default_max_chats = 50", ""))
    gateway = Gateway(config, plugins={}, adapters=[channel], serve_http=False)
    await gateway.start()
    gc.collect()
    before = rss_mb()
    semaphore = asyncio.Semaphore(concurrency)

    async def customer(n: int) -> None:
        async with semaphore:
            await gateway.core.ingest(
                Inbound(
                    channel="telegram",
                    event_id=f"m{n}",
                    chat_id=str(n),
                    sender=Sender(external_id=str(n), display_name=f"Customer {n}"),
                    text="hello, my order has not arrived",
                    message_id="1",
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(customer(n) for n in range(conversations)))
    # and until every delivery they caused is made: the workers' state counts too
    while await _backlog(gateway):  # noqa: ASYNC110 (the backlog is in the database)
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_mb()
    async with gateway.core.repository.transaction() as tx:
        statuses = await tx.count_by_status()
    await gateway.stop()
    return {
        "conversations": conversations,
        "open": sum(n for status, n in statuses.items() if status not in FINISHED_STATUSES),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "added_mb": after - before,
        "kb_per_conversation": 1024 * (after - before) / conversations,
        "seconds": seconds,
    }


async def _backlog(gateway: Gateway) -> int:
    async with gateway.core.repository.transaction() as tx:
        counts = await tx.outbox_counts()
    return sum(n for (_dest, status), n in counts.items() if status in ("pending", "sending"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    args = parser.parse_args()
    print(f"memory: {args.conversations} open conversations; Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.conversations))
    print(
        f"RSS {r['rss_before_mb']:.0f} MB started, {r['rss_after_mb']:.0f} MB with "
        f"{r['conversations']} open conversations: +{r['added_mb']:.0f} MB "
        f"({r['kb_per_conversation']:.1f} KB each; {r['seconds']:.0f} s to open them)"
    )


if __name__ == "__main__":
    main()
