"""A burst at Telegram's real limits with operators answering: do customers wait
behind the operators' group?

80 customers write at once (the sandbox's limits on: 1 message a second per chat,
20 in any minute in a group, 30 in any second per bot). Opening their topics takes
the group minutes at 20 a minute; two operators answer each conversation as soon as
its topic appears. What a customer sees should not wait for that backlog: the
greeting, and then the operator's answer, each within seconds of what caused it.

Figures, on the bench's own clock (it polls the in-process sandbox every 20 ms):
greeting latency (customer's message to the first answer in their chat), reply
latency (operator's message in the topic to its copy in the customer's chat), the
time until the last topic opened, 429s and requests before retry_after, and
duplicates (a reply shown twice, a topic opened twice for one customer).

Run: python -m bench.burst [--customers 80] [--timeout 900]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.telegram import CONFIG, OPERATOR, ROOT
from sandbox.telegram import Limits, TelegramSandbox

POLL_SECONDS = 0.02


@dataclass
class Burst:
    customers: int
    greeting_latencies: list[float] = field(default_factory=list)
    reply_latencies: list[float] = field(default_factory=list)
    replies_delivered: int = 0
    replies_sent: int = 0
    duplicates: int = 0
    topics: int = 0
    last_topic_seconds: float = float("nan")
    seconds: float = 0.0
    rate_limited: int = 0
    early_retries: int = 0
    rate_limited_by_scope: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def quantile(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(customers: int = 80, operators: int = 2, patience: float = 900.0) -> Burst:
    sandbox = TelegramSandbox(limits=Limits())
    await sandbox.start()
    forum = sandbox.add_forum("Support desk")
    team = [sandbox.add_user(f"Operator {n}") for n in range(operators)]
    users = [sandbox.add_user(f"Customer {n:03d}") for n in range(customers)]
    result = Burst(customers=customers)
    process: asyncio.subprocess.Process | None = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            config = Path(tmp) / "config.toml"
            config.write_text(
                CONFIG.format(
                    database=Path(tmp) / "bench.db",
                    api_base=sandbox.api_base,
                    workspace=forum["id"],
                    shards="",
                    limits="",  # Telegram's, the gateway's defaults
                    operators="".join(
                        OPERATOR.format(n=n, telegram_id=op["id"]) for n, op in enumerate(team)
                    ),
                )
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--config", str(config),
                cwd=ROOT,
                env={**os.environ, "BENCH_TELEGRAM_TOKEN": sandbox.token},
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            world = sandbox.world
            while world.stats.requests < 3:
                if process.returncode is not None:
                    raise RuntimeError(f"the gateway exited at start ({process.returncode})")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            limited0, early0 = world.stats.rate_limited, world.stats.early_retries
            scopes0 = dict(world.stats.rate_limited_by_scope)
            started = time.perf_counter()
            for user in users:
                sandbox.send(user, f"Hello, I am {user['first_name']} and I need help")
            written = {user["id"]: started for user in users}
            greeted: set[int] = set()
            answered: dict[int, float] = {}  # thread -> when its operator wrote
            reply_of: dict[int, tuple[int, str]] = {}  # thread -> (customer, reply text)
            delivered: set[int] = set()
            by_name = {user["first_name"]: user for user in users}
            deadline = started + patience
            while len(delivered) < customers and time.perf_counter() < deadline:
                now = time.perf_counter()
                for user in users:
                    if user["id"] in greeted:
                        continue
                    if sandbox.received(user["id"]):
                        greeted.add(user["id"])
                        result.greeting_latencies.append(now - written[user["id"]])
                opened = sandbox.topics(forum["id"])
                if len(opened) > result.topics:
                    result.topics, result.last_topic_seconds = len(opened), now - started
                for topic in opened:
                    thread = topic["message_thread_id"]
                    if thread in answered:
                        continue
                    name = next((n for n in by_name if n in topic["name"]), None)
                    if name is None:
                        continue
                    text = f"Answer for {name}"
                    operator = team[len(answered) % len(team)]
                    sandbox.send(operator, text, chat_id=forum["id"], thread_id=thread)
                    answered[thread] = time.perf_counter()
                    reply_of[thread] = (by_name[name]["id"], text)
                    result.replies_sent += 1
                for thread, (customer, text) in reply_of.items():
                    if thread in delivered:
                        continue
                    shown = [m for m in sandbox.received(customer) if text in m.get("text", "")]
                    if shown:
                        delivered.add(thread)
                        result.reply_latencies.append(now - answered[thread])
                await asyncio.sleep(POLL_SECONDS)
            result.seconds = time.perf_counter() - started
            await asyncio.sleep(2.0)  # a late duplicate would show by now
            names = [n for t in sandbox.topics(forum["id"]) for n in by_name if n in t["name"]]
            result.duplicates += len(names) - len(set(names))  # a topic opened twice
            for customer, text in reply_of.values():
                copies = sum(1 for m in sandbox.received(customer) if text in m.get("text", ""))
                result.duplicates += max(0, copies - 1)
            result.replies_delivered = len(delivered)
            result.rate_limited = world.stats.rate_limited - limited0
            result.early_retries = world.stats.early_retries - early0
            result.rate_limited_by_scope = {
                scope: count - scopes0.get(scope, 0)
                for scope, count in world.stats.rate_limited_by_scope.items()
                if count > scopes0.get(scope, 0)
            }
        finally:
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()
            await sandbox.stop()
    return result


def report(burst: Burst) -> str:
    q = Burst.quantile
    g, r = burst.greeting_latencies, burst.reply_latencies
    return "\n".join(
        [
            f"burst: {burst.customers} customers, Telegram's limits on, {burst.seconds:.0f} s",
            f"  greetings {len(g)}/{burst.customers}: p50 {q(g, 0.5):.2f} s, "
            f"p99 {q(g, 0.99):.2f} s, max {max(g, default=0):.2f} s",
            f"  operator replies {burst.replies_delivered}/{burst.replies_sent}: "
            f"p50 {q(r, 0.5):.2f} s, p99 {q(r, 0.99):.2f} s, max {max(r, default=0):.2f} s",
            f"  topics opened {burst.topics}, the last after {burst.last_topic_seconds:.0f} s",
            f"  429s {burst.rate_limited} {burst.rate_limited_by_scope or ''}, requests "
            f"before retry_after {burst.early_retries}, duplicates {burst.duplicates}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    print(report(asyncio.run(run(args.customers, patience=args.timeout))))


if __name__ == "__main__":
    main()
