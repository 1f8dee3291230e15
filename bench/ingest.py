"""Ingest throughput: inbound messages per second the core commits, and their latency.

Every message is durably committed (customer, conversation, message, dedupe key,
routing, outbox rows) before ``ingest`` returns, as in production. Deliveries go to a
channel that accepts everything at once, so what is measured is the core and its
database. Run: ``python -m bench.ingest [--postgres URL] [--customers N] [--messages M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

from gateway.adapter import AdapterBase
from gateway.app import Gateway
from gateway.config import parse_config
from gateway.events import Delivery, Inbound, Receipt, Sender
from storage import Database
from storage.migrate import upgrade


class NullChannel(AdapterBase):
    """Accepts every delivery at once: the benchmark measures the core, not a platform."""

    name = "telegram"
    serves_workspace = True
    #: as the Telegram adapter it stands for: replies are not threaded by earlier ids
    wants_history = False
    rate_limits = ()
    max_batch = 1

    def __init__(self) -> None:
        self.delivered = 0

    async def start(self, host) -> None:
        pass

    async def stop(self) -> None:
        pass

    def cost(self, delivery: Delivery) -> int:
        return 1

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.delivered += 1
        if delivery.outbound.kind == "header" and delivery.thread_ref is None:
            return Receipt(thread_ref=f"T{delivery.outbound.conversation_id}")
        return Receipt(external_ids=(str(self.delivered),))


CONFIG = """
[gateway]
database_url = "{url}"
[routing]
default_max_chats = 50
[[operators]]
id = "anna"
name = "Anna"
[[operators]]
id = "boris"
name = "Boris"
"""


async def run(url: str, customers: int, messages: int, concurrency: int) -> dict[str, float]:
    db = Database(url)
    await upgrade(db)
    await db.dispose()
    channel = NullChannel()
    gateway = Gateway(
        parse_config(CONFIG.format(url=url)), plugins={}, adapters=[channel], serve_http=False
    )
    await gateway.start()
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def customer(n: int) -> None:
        for m in range(messages):
            inbound = Inbound(
                channel="telegram",
                event_id=f"{n}:{m}",
                chat_id=str(n),
                sender=Sender(external_id=str(n), display_name=f"Customer {n}"),
                text=f"message {m}",
                message_id=str(m),
            )
            async with semaphore:
                started = time.perf_counter()
                await gateway.core.ingest(inbound)
                latencies.append(time.perf_counter() - started)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(customer(n) for n in range(customers)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await gateway.stop()
    latencies.sort()
    total = customers * messages
    return {
        "messages": total,
        "msgs_per_s": total / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "cpu_ms_per_msg": 1000 * cpu / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--postgres", help="postgresql+asyncpg://... (an empty database)")
    args = parser.parse_args()
    print(
        f"ingest benchmark: {args.customers} customers x {args.messages} messages, "
        f"{args.concurrency} at once; Python {platform.python_version()}"
    )
    targets = []
    with tempfile.TemporaryDirectory() as tmp:
        targets.append(("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"))
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        for name, url in targets:
            r = asyncio.run(run(url, args.customers, args.messages, args.concurrency))
            print(
                f"{name:<11} {r['messages']:>6} msgs  {r['msgs_per_s']:7.1f} msgs/s  "
                f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                f"CPU {r['cpu_ms_per_msg']:5.2f} ms/msg (ingest + delivery)"
            )


if __name__ == "__main__":
    main()
