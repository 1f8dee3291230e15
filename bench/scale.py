"""Scale-out benchmark: what more gateway processes on one PostgreSQL database buy.

For each count of processes: a fresh database, that many `gateway run` processes
behind a round-robin balancer, Telegram in webhook mode (the sandbox posts updates
as Telegram does: up to 40 at once, one at a time per chat), limits off on both
sides, customers writing at once. Throughput is messages copied into the operators'
group per second, from the first message to the last copy; latency is from a
message being written to its copy appearing (the sandbox's clock); CPU per message
is the gateway processes' own, summed.

The sandbox, the balancer and this driver run in one process beside the gateways:
on a machine with few cores they take a share of the CPU the gateways would use,
and that is where scaling out stops first.

Run: python -m bench.scale --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
     [--customers 200] [--messages 5] [--processes 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.processes import ROOT, GatewayProcess, RoundRobin, free_port, fresh_database
from bench.telegram import _cpu_seconds, _stats
from sandbox.telegram import Limits, TelegramSandbox

CONFIG = """
[gateway]
database_url = "{url}"
http_port = {port}
log_level = "warning"
reload_seconds = 0

[routing]
default_max_chats = 100

[sla]
first_response_minutes = 0
next_response_minutes = 0
customer_update_minutes = 0
auto_close_hours = 0

[telegram]
token = "${{BENCH_TELEGRAM_TOKEN}}"
api_base = "{api_base}"
workspace_chat_id = {forum}
mode = "webhook"
webhook_url = "{webhook}"
webhook_secret = "${{BENCH_WEBHOOK_SECRET}}"
chat_messages_per_second = 10000
group_messages_per_minute = 1000000
messages_per_second = 100000
{operators}"""

OPERATOR = """
[[operators]]
id = "op{n}"
name = "Operator {n}"
telegram_id = {telegram_id}
"""


@dataclass
class Result:
    processes: int
    sent: int
    delivered: int
    duplicates: int
    seconds: float
    latencies: list[float]
    cpu_ms_per_message: float
    #: updates each process took from the balancer
    share: list[int]

    @property
    def throughput(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(base: str, processes: int, customers: int, messages: int) -> Result:
    secret = uuid.uuid4().hex
    os.environ["BENCH_WEBHOOK_SECRET"] = secret
    async with (
        TelegramSandbox(limits=Limits(enabled=False)) as sandbox,
        fresh_database(base) as url,
    ):
        os.environ["BENCH_TELEGRAM_TOKEN"] = sandbox.token
        forum = sandbox.add_forum("Support desk")
        # enough capacity for every customer: this measures relaying, not queueing
        team = [sandbox.add_user(f"Operator {n}") for n in range(customers // 100 + 1)]
        users = [sandbox.add_user(f"Customer {n}") for n in range(customers)]
        ports = [free_port() for _ in range(processes)]
        balancer = RoundRobin(ports)
        await balancer.start()
        gateways: list[GatewayProcess] = []
        with tempfile.TemporaryDirectory() as tmp:
            try:
                for number, port in enumerate(ports):
                    config = Path(tmp) / f"gateway-{number}.toml"
                    config.write_text(
                        CONFIG.format(
                            url=url,
                            port=port,
                            api_base=sandbox.api_base,
                            forum=forum["id"],
                            webhook=f"{balancer.url}/telegram",
                            operators="".join(
                                OPERATOR.format(n=n, telegram_id=op["id"])
                                for n, op in enumerate(team)
                            ),
                        )
                    )
                    if number == 0:
                        await migrate(config)
                    gateway = GatewayProcess(config, Path(tmp) / f"gateway-{number}.log", port)
                    gateways.append(gateway)
                    await gateway.start()
                for gateway in gateways:
                    await gateway.until_healthy()
                await asyncio.sleep(1.0)  # every process has set the webhook
                async with aiohttp.ClientSession() as http:
                    cpu0 = [_cpu_seconds(g.pid) for g in gateways]
                    forwarded0 = dict(balancer.forwarded)
                    started = time.perf_counter()
                    for m in range(messages):
                        for user in users:
                            sandbox.send(user, f"{user['id']} message {m}")
                        await asyncio.sleep(0)
                    total = customers * messages
                    stats = await _stats(http, sandbox.api_base)
                    deadline = started + 600
                    while stats["copied"] < total and time.perf_counter() < deadline:
                        await asyncio.sleep(0.1)
                        stats = await _stats(http, sandbox.api_base)
                    seconds = time.perf_counter() - started
                    cpu = sum(_cpu_seconds(g.pid) - c for g, c in zip(gateways, cpu0, strict=True))
                    return Result(
                        processes=processes,
                        sent=total,
                        delivered=stats["copied"],
                        duplicates=stats["duplicates"],
                        seconds=seconds,
                        latencies=stats["copy_latencies"],
                        cpu_ms_per_message=1000 * cpu / max(1, stats["copied"]),
                        share=[balancer.forwarded[p] - forwarded0[p] for p in ports],
                    )
            finally:
                for gateway in gateways:
                    await gateway.terminate()
                await balancer.stop()


async def migrate(config: Path) -> None:
    """`gateway migrate`, the admin's step before the first start."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "migrate", "--config", str(config),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"gateway migrate failed:\n{output.decode()}")


def report(result: Result, alone: Result | None = None) -> str:
    gain = f" ({result.throughput / alone.throughput:.2f}x one)" if alone else ""
    return (
        f"{result.processes} process(es): {result.throughput:7.1f} msgs/s{gain}, "
        f"p50 {result.latency(0.5):.3f} s, p99 {result.latency(0.99):.3f} s, "
        f"CPU {result.cpu_ms_per_message:.2f} ms/msg; delivered {result.delivered}/"
        f"{result.sent}, duplicates {result.duplicates}; updates per process {result.share}"
    )


async def main_async(args: argparse.Namespace) -> list[Result]:
    counts = [int(n) for n in args.processes.split(",")]
    print(
        f"scale-out: {args.customers} customers x {args.messages} messages, webhook mode "
        f"behind a round-robin balancer, limits off, PostgreSQL; {os.cpu_count()} CPUs"
    )
    results: list[Result] = []
    for count in counts:
        result = await run(args.postgres, count, args.customers, args.messages)
        results.append(result)
        print(report(result, results[0] if count != counts[0] else None), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="a PostgreSQL URL to create databases on")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--processes", default="1,2,4")
    results = asyncio.run(main_async(parser.parse_args()))
    if statistics.fmean(r.delivered / r.sent for r in results) < 1:
        sys.exit("not every message was delivered")


if __name__ == "__main__":
    main()
