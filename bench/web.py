"""Web chat: visitors connected at once (1,000 by default) over WebSockets, each
sending 10 messages, and an operator answering every one of them.

The gateway runs in this process on SQLite (the web chat and a workspace that
takes every delivery at once, as ``bench.ingest``'s does, answering each visitor's
message as an operator); the visitors run in a second process (``--clients``),
speaking the widget's protocol (``sandbox.visitor``), so their sockets and
parsing do not count in the gateway's memory or CPU.

Figures: the memory one idle connection adds to the gateway (RSS after all have
connected, against before); a visitor's message acknowledged (sent to ack: stored
and committed); an operator's answer delivered (from the moment the operator's
message reaches the gateway to its arrival in the visitor's socket), p50 and p99;
lost and duplicated answers. Run: ``python -m bench.web [--visitors N] [--messages M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from adapters.web.adapter import WebAdapter
from bench.ingest import NullChannel
from bench.memory import rss_mb
from gateway.app import Gateway, settle_gc
from gateway.config import parse_config
from gateway.events import Delivery, Inbound, Receipt, Sender
from gateway.plugins import channel_models
from storage import Database
from storage.migrate import upgrade

SITE = "http://bench.example"
CONFIG = """
[gateway]
database_url = "{url}"
http_port = 0
[routing]
default_max_chats = 100
collision_minutes = 0
[web]
origins = ["{site}"]
files_dir = "{files}"
messages_per_minute = 600
requests_per_minute = 100000
visitors_per_hour = 100000
ask_contact = "never"
"""
#: enough operators for every visitor to be assigned at once (100 chats each)
OPERATORS = {f"op{n}": str(1000 + n) for n in range(20)}
#: their Telegram ids by name, as a card names them
OPERATOR_IDS = {f"Operator {n}": str(1000 + n) for n in range(20)}
CONFIG += "".join(
    f'[[operators]]\nid = "{op}"\nname = "Operator {n}"\ntelegram_id = {tg}\n'
    for n, (op, tg) in enumerate(OPERATORS.items())
)


class AnsweringWorkspace(NullChannel):
    """A workspace where the assignee answers each visitor's message as soon as its
    copy arrives, stamping the answer with the time it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.gateway: Gateway | None = None
        self._numbers = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.assignees: dict[int, str] = {}

    async def deliver(self, delivery: Delivery) -> Receipt:
        receipt = await super().deliver(delivery)
        out = delivery.outbound
        if out.card is not None and out.card.assignee_name:
            self.assignees[out.conversation_id] = out.card.assignee_name
        if out.audience == "workspace" and out.kind == "message" and out.author_role == "customer":
            task = asyncio.create_task(self._answer(out.conversation_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return receipt

    async def _answer(self, conversation_id: int) -> None:
        assert self.gateway is not None
        number = next(self._numbers)
        # the assignee, as the card in the workspace names them
        assignee = self.assignees.get(conversation_id, "Operator 0")
        await self.gateway.core.ingest(
            Inbound(
                channel="telegram",
                event_id=f"answer{number}",
                chat_id="group",
                sender=Sender(external_id=OPERATOR_IDS[assignee], display_name=assignee),
                text=f"answer at {time.time():.6f}",
                message_id=f"w{number}",
                workspace_thread=f"T{conversation_id}",
            )
        )


@dataclass
class Result:
    visitors: int
    messages: int
    rss_before_mb: float
    rss_connected_mb: float
    connect_seconds: float
    run_seconds: float
    acks: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    missing: int = 0
    duplicates: int = 0

    @property
    def kb_per_connection(self) -> float:
        return 1024 * (self.rss_connected_mb - self.rss_before_mb) / self.visitors

    def lines(self) -> list[str]:
        def ms(values: list[float], q: float) -> str:
            return f"{1000 * _quantile(values, q):.0f} ms"

        sent = self.visitors * self.messages
        return [
            f"{self.visitors:,} visitors connected in {self.connect_seconds:.1f} s: RSS "
            f"{self.rss_before_mb:.0f} -> {self.rss_connected_mb:.0f} MB, "
            f"**{self.kb_per_connection:.1f} KB per idle connection**",
            f"{sent:,} messages and {len(self.answers):,} answers in {self.run_seconds:.1f} s "
            f"({2 * sent / self.run_seconds:,.0f} messages/s both ways)",
            f"acknowledged (sent to ack): p50 {ms(self.acks, 0.5)}, p99 {ms(self.acks, 0.99)}",
            f"answers delivered (operator to visitor's socket): p50 {ms(self.answers, 0.5)}, "
            f"**p99 {ms(self.answers, 0.99)}**",
            f"answers missing {self.missing}, duplicated {self.duplicates}",
        ]


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(visitors: int, messages: int, think: float = 0.0, *, settle: bool = True) -> Result:
    """``settle``: freeze what start-up made, as a serving process does (not inside
    a test process, which goes on running other tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        await upgrade(db)
        await db.dispose()
        config = parse_config(
            CONFIG.format(url=url, site=SITE, files=Path(tmp) / "files"), channel_models()
        )
        workspace = AnsweringWorkspace()
        web = WebAdapter(config.channels["web"], config)  # type: ignore[arg-type]
        gateway = Gateway(config, plugins={}, adapters=[workspace, web], serve_http=True)
        workspace.gateway = gateway
        await gateway.start()
        if settle:
            settle_gc()  # as a serving process does
        try:
            return await _measure(gateway, web, visitors, messages, think)
        finally:
            await gateway.stop()


async def _measure(
    gateway: Gateway, web: WebAdapter, visitors: int, messages: int, think: float
) -> Result:
    gc.collect()
    before = rss_mb()
    clients = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.web", "--clients", f"http://127.0.0.1:{gateway.http.port}",
        "--visitors", str(visitors), "--messages", str(messages), "--think", str(think),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
    )  # fmt: skip
    assert clients.stdin is not None and clients.stdout is not None
    started = time.perf_counter()
    line = await clients.stdout.readline()
    assert line.strip() == b"connected", line
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)  # settled: the sessions' writes done, the sockets idle
    gc.collect()
    connected = rss_mb()
    assert web.hub.connections() == visitors, web.hub.connections()
    clients.stdin.write(b"go\n")
    await clients.stdin.drain()
    started = time.perf_counter()
    report = json.loads(await clients.stdout.readline())
    run_seconds = time.perf_counter() - started
    await clients.wait()
    return Result(
        visitors,
        messages,
        before,
        connected,
        connect_seconds,
        run_seconds,
        acks=report["acks"],
        answers=report["answers"],
        missing=report["missing"],
        duplicates=report["duplicates"],
    )


# -- the visitors' process ----------------------------------------------------------------


class Visitor:
    """A visitor as lean as the widget: futures for acks, a count of answers (the
    sandbox's ``WebVisitor`` polls its frames, which at a thousand visitors would
    cost this process more than the gateway)."""

    def __init__(self, base: str, http: aiohttp.ClientSession, messages: int, think: float) -> None:
        self.base, self.http, self.messages, self.think = base, http, messages, think
        self.acks: dict[str, asyncio.Future[None]] = {}
        self.answered: list[int] = []
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.welcome = asyncio.Event()
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def arrive(self) -> None:
        async with self.http.post(
            f"{self.base}/web/session", json={}, headers={"Origin": SITE}
        ) as reply:
            token = (await reply.json())["token"]
        self.socket = await self.http.ws_connect(
            f"{self.base}/web/socket", headers={"Origin": SITE}
        )
        await self.socket.send_json({"t": "hello", "token": token})
        self.reader = asyncio.create_task(self._read(self.socket))
        await self.welcome.wait()

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            frame = json.loads(message.data)
            kind = frame["t"]
            if kind == "ack":
                self.acks[frame["cid"]].set_result(None)
            elif kind == "msg" and frame["side"] == "operator":
                self.answered.append(frame["id"])
                self.latencies.append(time.time() - float(frame["text"].split()[-1]))
                if len(set(self.answered)) >= self.messages:
                    self.done.set()
            elif kind == "welcome":
                self.welcome.set()

    async def talk(self, acks: list[float]) -> None:
        assert self.socket is not None
        for n in range(self.messages):
            if self.think:
                # a person reading and typing: think's mean, half again either way
                await asyncio.sleep(self.think * random.uniform(0.5, 1.5))
            cid = f"q{n}"
            self.acks[cid] = asyncio.get_running_loop().create_future()
            began = time.perf_counter()
            await self.socket.send_json({"t": "send", "cid": cid, "text": f"question {n}"})
            await self.acks[cid]
            acks.append(time.perf_counter() - began)
        await self.done.wait()

    async def leave(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await self.reader


async def clients(base: str, visitors: int, messages: int, think: float) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        people = [Visitor(base, http, messages, think) for _ in range(visitors)]
        semaphore = asyncio.Semaphore(50)

        async def arrive(person: Visitor) -> None:
            async with semaphore:
                await person.arrive()

        await asyncio.gather(*(arrive(person) for person in people))
        print("connected", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        acks: list[float] = []
        await asyncio.gather(*(person.talk(acks) for person in people))
        report = {
            "acks": acks,
            "answers": [latency for person in people for latency in person.latencies],
            "missing": sum(max(0, messages - len(set(p.answered))) for p in people),
            "duplicates": sum(len(p.answered) - len(set(p.answered)) for p in people),
        }
        print(json.dumps(report), flush=True)
        for person in people:
            await person.leave()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds a visitor takes between messages, on average (0: at once)",
    )
    parser.add_argument("--clients", metavar="BASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        asyncio.run(clients(args.clients, args.visitors, args.messages, args.think))
        return
    result = asyncio.run(run(args.visitors, args.messages, args.think))
    pace = f", {args.think:g} s between messages" if args.think else ", every message at once"
    print(f"web chat: {args.visitors} visitors x {args.messages} messages{pace}, SQLite")
    for line in result.lines():
        print("  " + line.replace("**", ""))
    print(f"  (ack median {statistics.median(result.acks) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
