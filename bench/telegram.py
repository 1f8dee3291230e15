"""Telegram relay benchmark: the real gateway process against the Telegram sandbox,
next to the floor (a bare aiogram relay, `bench.floor`) in the same conditions.

Customers are created and driven through the sandbox's HTTP control API; the
gateway runs as `python -m gateway run` with a real config file. Latency is from a
customer's message being created to its copy appearing in the operators' group, both
on the sandbox's clock. CPU per message is the relay process's own CPU time (from
/proc) while the load runs, start-up excluded; peak RSS is its VmHWM.

Run: python -m bench.telegram [--customers 200] [--messages 5] [--limits] [--bots 1]

``--bots N`` gives the gateway N - 1 workspace bots (telegram.workspace_bots) beside
its main bot; the floor always has one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.telegram import Limits, TelegramSandbox

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")

CONFIG = """
[gateway]
database_url = "sqlite+aiosqlite:///{database}"
http_port = 0
log_level = "warning"
reload_seconds = 0

[routing]
# enough capacity for every customer: the benchmark measures relaying, not queueing
default_max_chats = 100

[sla]
first_response_minutes = 0
next_response_minutes = 0
customer_update_minutes = 0
auto_close_hours = 0

[telegram]
token = "${{BENCH_TELEGRAM_TOKEN}}"
api_base = "{api_base}"
workspace_chat_id = {workspace}
poll_timeout_seconds = 1
{shards}
{limits}

{operators}"""

OPERATOR = """
[[operators]]
id = "op{n}"
name = "Operator {n}"
telegram_id = {telegram_id}
"""


@dataclass
class Result:
    relay: str
    sent: int
    delivered: int
    duplicates: int
    seconds: float
    latencies: list[float]
    cpu_ms_per_message: float
    peak_rss_mb: float
    rate_limited: int
    early_retries: int
    #: Bot API calls by method during the load
    calls: dict[str, int]
    #: messages each bot put into chats during the load
    sent_per_bot: dict[str, int]

    @property
    def missing(self) -> int:
        return self.sent - self.delivered

    @property
    def throughput(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _stats(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/sandbox/stats") as reply:
        return await reply.json()


def shard_tokens(bots: int) -> list[str]:
    """Tokens of the workspace bots beside the main one."""
    return [f"{900_000_001 + n}:bench-workspace-bot-{n}" for n in range(bots - 1)]


async def run(
    relay: str,
    customers: int,
    messages: int,
    *,
    limits: bool,
    patience: float,
    bots: int = 1,
) -> Result:
    sandbox = TelegramSandbox(limits=Limits(enabled=limits))
    await sandbox.start()
    shards = shard_tokens(bots) if relay == "gateway" else []
    for token in shards:
        sandbox.add_bot(token)
    base = sandbox.api_base
    forum = sandbox.add_forum("Support desk")
    team = [sandbox.add_user(f"Operator {n}") for n in range(customers // 100 + 1)]
    process: asyncio.subprocess.Process | None = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            async with aiohttp.ClientSession() as http:
                users = []
                for n in range(customers):
                    async with http.post(
                        f"{base}/sandbox/users", json={"first_name": f"Customer {n}"}
                    ) as reply:
                        users.append(await reply.json())
                if relay == "gateway":
                    config = Path(tmp) / "config.toml"
                    config.write_text(
                        CONFIG.format(
                            database=Path(tmp) / "bench.db",
                            api_base=base,
                            workspace=forum["id"],
                            shards="workspace_bots = ["
                            + ", ".join(f'"${{BENCH_SHARD_{n}}}"' for n in range(len(shards)))
                            + "]"
                            if shards
                            else "",
                            # with the sandbox's limits off, the gateway's own are too
                            limits=""
                            if limits
                            else "chat_messages_per_second = 10000\n"
                            "group_messages_per_minute = 1000000\n"
                            "messages_per_second = 100000",
                            operators="".join(
                                OPERATOR.format(n=n, telegram_id=op["id"])
                                for n, op in enumerate(team)
                            ),
                        )
                    )
                    command = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
                    # the tokens come from the environment, as a real deployment's do
                    secrets = {f"BENCH_SHARD_{n}": token for n, token in enumerate(shards)}
                    environ = {**os.environ, "BENCH_TELEGRAM_TOKEN": sandbox.token, **secrets}
                else:
                    command = [sys.executable, "-m", "bench.floor", base, sandbox.token]
                    command.append(str(forum["id"]))
                    environ = dict(os.environ)
                process = await asyncio.create_subprocess_exec(
                    *command,
                    cwd=ROOT,
                    env=environ,
                    stdout=asyncio.subprocess.DEVNULL,
                    # the floor logs a traceback for every message Telegram throttles
                    stderr=asyncio.subprocess.DEVNULL if relay == "floor" else None,
                )
                # started once it polls, and a moment more to settle
                while (await _stats(http, base))["requests"] < 3:
                    if process.returncode is not None:
                        raise RuntimeError(f"{relay} exited at start ({process.returncode})")
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)
                before = await _stats(http, base)
                cpu0 = _cpu_seconds(process.pid)
                started = time.perf_counter()

                async def customer(user: dict[str, Any]) -> None:
                    for m in range(messages):
                        async with http.post(
                            f"{base}/sandbox/send",
                            # unique: a workspace bot relays texts, matched by text
                            json={"user_id": user["id"], "text": f"{user['id']} message {m}"},
                        ) as reply:
                            reply.raise_for_status()

                await asyncio.gather(*(customer(u) for u in users))
                total = customers * messages
                deadline = started + patience
                stats = await _stats(http, base)
                while stats["copied"] < total and time.perf_counter() < deadline:
                    await asyncio.sleep(0.2)
                    stats = await _stats(http, base)
                seconds = time.perf_counter() - started
                cpu = _cpu_seconds(process.pid) - cpu0
                return Result(
                    relay=relay,
                    sent=total,
                    delivered=stats["copied"],
                    duplicates=stats["duplicates"],
                    seconds=seconds,
                    latencies=stats["copy_latencies"],
                    cpu_ms_per_message=1000 * cpu / max(1, stats["copied"]),
                    peak_rss_mb=_peak_rss_mb(process.pid),
                    rate_limited=stats["rate_limited"] - before["rate_limited"],
                    early_retries=stats["early_retries"] - before["early_retries"],
                    calls={
                        name: count - before["calls"].get(name, 0)
                        for name, count in stats["calls"].items()
                        if count > before["calls"].get(name, 0)
                    },
                    sent_per_bot={
                        bot: count - before["sent_per_bot"].get(bot, 0)
                        for bot, count in stats["sent_per_bot"].items()
                    },
                )
        finally:
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()
            await sandbox.stop()


def report(result: Result, floor: Result | None = None) -> str:
    def ratio(value: float, base: float) -> str:
        return f" ({value / base:.2f}x floor)" if floor and base else ""

    lines = [
        f"{result.relay}: sent {result.sent}, delivered {result.delivered}, missing "
        f"{result.missing}, duplicates {result.duplicates}",
        f"  throughput {result.throughput:7.1f} msgs/s"
        + ratio(result.throughput, floor.throughput if floor else 0),
        f"  latency p50 {result.latency(0.5):.3f} s, p90 {result.latency(0.9):.3f} s, "
        f"p99 {result.latency(0.99):.3f} s, max {max(result.latencies, default=0):.3f} s",
        f"  CPU {result.cpu_ms_per_message:.2f} ms/msg"
        + ratio(result.cpu_ms_per_message, floor.cpu_ms_per_message if floor else 0)
        + f", peak RSS {result.peak_rss_mb:.0f} MB",
        f"  429s received {result.rate_limited}, requests before retry_after expired "
        f"{result.early_retries}",
        "  Bot API calls: "
        + ", ".join(f"{name} {count}" for name, count in sorted(result.calls.items())),
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    print(
        f"telegram relay: {args.customers} customers x {args.messages} messages, "
        f"limits {'on' if args.limits else 'off'}; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )
    floor = await run(
        "floor", args.customers, args.messages, limits=args.limits, patience=args.timeout
    )
    print(report(floor))
    gateway = await run(
        "gateway",
        args.customers,
        args.messages,
        limits=args.limits,
        patience=args.timeout,
        bots=args.bots,
    )
    print(report(gateway, floor))
    if gateway.latencies:
        print(f"  latency mean {statistics.fmean(gateway.latencies):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--limits", action="store_true", help="Telegram's real rate limits")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--bots", type=int, default=1, help="the gateway's bots in the group")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
