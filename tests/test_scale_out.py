"""Several gateway processes on one PostgreSQL database, as README's Production
section runs them: each event taken and delivered once whichever process gets it;
the process holding the polling role killed, and another taking over; a SIGTERM in
the middle of a burst losing nothing. And on SQLite, the one process it serves.

Each gateway is `gateway run` in a child process, against the Telegram and Slack
sandboxes; a round-robin balancer sits in front of them in webhook mode.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from adapters.email.adapter import EmailAdapter
from bench.processes import GatewayProcess, RoundRobin, held_by, role_holders
from gateway.app import Gateway
from sandbox.slack import Limits as SlackLimits
from sandbox.slack import SlackSandbox
from sandbox.telegram import Limits, TelegramSandbox
from storage import Database, Direction, Message, Repository
from tests.slack_support import free_port, slack_desk
from tests.support import gateway_cli, make_config, migrate
from tests.telegram_support import eventually
from tests.test_email import email_desk, mail

#: the promise: a dead holder's polling is taken over, and the messages written
#: meanwhile delivered, within this long
TAKEOVER_LIMIT_SECONDS = 10.0
WEBHOOK_SECRET = "scale-out-secret-1"

CONFIG = """
[gateway]
database_url = "{url}"
http_port = {port}
shutdown_timeout_seconds = 15

[routing]
default_max_chats = 100

[outbox]
base_delay_seconds = 0.05
max_delay_seconds = 0.5

[texts]
greeting = "Hello!"
queued = "You are number {{position}} in line."
assigned = "{{operator}} will help you."

[telegram]
token = "{token}"
api_base = "{api_base}"
workspace_chat_id = {forum}
poll_timeout_seconds = 1
# the sandbox's limits are off: the gateway's own pacing need not wait for them
group_messages_per_minute = 100000
chat_messages_per_second = 1000
messages_per_second = 10000
{telegram_mode}
{slack}
[[operators]]
id = "anna"
name = "Anna"
telegram_id = {anna}
"""


class Desk:
    """Two (or more) gateway processes sharing one database and the sandboxes."""

    def __init__(
        self,
        tmp_path: Path,
        url: str,
        telegram: TelegramSandbox,
        *,
        processes: int = 2,
        webhook: bool = False,
        slack: SlackSandbox | None = None,
    ) -> None:
        self.url, self.telegram, self.slack = url, telegram, slack
        self.forum = telegram.add_forum("Support desk")
        self.anna = telegram.add_user("Anna")
        ports = [free_port() for _ in range(processes)]
        self.balancer = RoundRobin(ports) if webhook else None
        self.processes: list[GatewayProcess] = []
        self._tmp, self._ports, self._webhook = tmp_path, ports, webhook

    async def start(self) -> None:
        if self.balancer is not None:
            await self.balancer.start()
        for number, port in enumerate(self._ports):
            config = self._tmp / f"gateway-{number}.toml"
            config.write_text(self._config(port))
            if number == 0:  # the admin's step, once for the database
                migrated = gateway_cli("migrate", "--config", str(config))
                assert migrated.returncode == 0, migrated.stderr
            process = GatewayProcess(config, self._tmp / f"gateway-{number}.log", port)
            self.processes.append(process)
            await process.start()
        for process in self.processes:
            await eventually(process.healthy)
        if self.slack is not None and self.balancer is not None:
            self.slack.events_to(f"{self.balancer.url}/slack/events")

    def _config(self, port: int) -> str:
        telegram_mode = ""
        if self._webhook:
            assert self.balancer is not None
            telegram_mode = (
                f'mode = "webhook"\nwebhook_url = "{self.balancer.url}/telegram"\n'
                f'webhook_secret = "{WEBHOOK_SECRET}"'
            )
        slack = ""
        if self.slack is not None:
            slack = (
                f'[slack]\nbot_token = "{self.slack.bot_token}"\n'
                f'api_base = "{self.slack.api_base}"\nmode = "http"\n'
                f'signing_secret = "{self.slack.signing_secret}"\n'
            )
        return CONFIG.format(
            url=self.url,
            port=port,
            token=self.telegram.token,
            api_base=self.telegram.api_base,
            forum=self.forum["id"],
            anna=self.anna["id"],
            telegram_mode=telegram_mode,
            slack=slack,
        )

    async def stop(self) -> None:
        for process in self.processes:
            await process.kill()
        if self.balancer is not None:
            await self.balancer.stop()

    def forum_texts(self) -> list[str]:
        return [m.get("text") or "" for m in self.telegram.received(self.forum["id"])]

    def shown(self, text: str) -> int:
        """How many times ``text`` reached the operators' forum (as itself, copied
        from Telegram, or as a post that names its writer, from another channel)."""
        return sum(t == text or t.endswith(f"\n{text}") for t in self.forum_texts())

    async def poller(self) -> GatewayProcess:
        """The process holding Telegram's polling role."""

        async def found() -> GatewayProcess | None:
            holder = (await role_holders(self.url)).get("telegram:polling")
            return next((p for p in self.processes if holder and held_by(holder, p)), None)

        return await eventually(found)


@pytest.mark.long
async def test_a_dead_pollers_role_is_taken_over_and_nothing_is_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two processes poll one bot: one holds the polling role, the other stands by
    (Telegram would end one of two pollers with 409). Killed, the holder's role
    passes to the standby, which takes in and delivers what customers write
    meanwhile within TAKEOVER_LIMIT_SECONDS."""
    async with TelegramSandbox(limits=Limits(enabled=False)) as telegram:
        desk = Desk(tmp_path, postgres_url, telegram)
        try:
            await desk.start()
            customers = [telegram.add_user(f"Cust{n}") for n in range(6)]
            before = [f"Cust{n} before" for n in range(6)]
            for customer, text in zip(customers, before, strict=True):
                telegram.send(customer, text)
            await eventually(lambda: all(desk.shown(text) for text in before))
            holder = await desk.poller()
            standby = next(p for p in desk.processes if p is not holder)
            assert telegram.world.stats.poll_conflicts == 0  # one poller at a time
            # who holds what: on each process's /metrics, and in `gateway status`
            assert 'gateway_role_held{role="telegram:polling"} 1.0' in await holder.metrics()
            assert 'gateway_role_held{role="telegram:polling"} 0.0' in await standby.metrics()
            status = gateway_cli("status", "--config", str(holder.config))
            assert status.returncode == 0, status.stderr
            assert "telegram:polling" in status.stdout and f":{holder.pid}:" in status.stdout

            await holder.kill()
            after = [f"Cust{n} after" for n in range(6)]
            for customer, text in zip(customers, after, strict=True):
                telegram.send(customer, text)
            await eventually(
                lambda: all(desk.shown(text) for text in after), limit=TAKEOVER_LIMIT_SECONDS
            )
            assert held_by((await role_holders(postgres_url))["telegram:polling"], standby)
            assert all(desk.shown(text) == 1 for text in before + after)
            topics = Counter(t["name"] for t in telegram.topics(desk.forum["id"]))
            assert len(topics) == 6 and set(topics.values()) == {1}, topics
        finally:
            await desk.stop()


@pytest.mark.long
async def test_two_processes_behind_a_balancer_take_each_event_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """Telegram in webhook mode and Slack in HTTP mode, every request to the next
    process in turn: each message is stored and shown once, each customer has one
    topic, each reply reaches its customer once, whichever process took what."""
    async with (
        TelegramSandbox(limits=Limits(enabled=False), webhook_retry_delay=0.05) as telegram,
        SlackSandbox(limits=SlackLimits(enabled=False), retry_delays=(0.05, 0.2, 0.5)) as slack,
    ):
        desk = Desk(tmp_path, postgres_url, telegram, webhook=True, slack=slack)
        try:
            await desk.start()
            assert desk.balancer is not None
            on_telegram = [telegram.add_user(f"Tg{n:02d}") for n in range(12)]
            on_slack = [slack.add_user(f"Sl{n:02d} Person", name=f"sl{n:02d}") for n in range(6)]
            written: list[str] = []
            for round_ in range(3):
                for n, customer in enumerate(on_telegram):
                    written.append(f"Tg{n:02d} says {round_}")
                    telegram.send(customer, written[-1])
                for n, person in enumerate(on_slack):
                    written.append(f"Sl{n:02d} says {round_}")
                    slack.post(person, written[-1])
            await eventually(lambda: all(desk.shown(text) for text in written))

            topics = {t["name"]: t["message_thread_id"] for t in telegram.topics(desk.forum["id"])}
            for topic in topics.values():
                telegram.send(
                    desk.anna, f"answer in {topic}", chat_id=desk.forum["id"], thread_id=topic
                )

            def answered(chat: list[Any], topic: int) -> int:
                return sum(f"answer in {topic}" in (m.get("text") or "") for m in chat)

            def replies_in() -> dict[int, int]:
                counts: dict[int, int] = {}
                for name, topic in topics.items():
                    tg = next((c for c in on_telegram if c["first_name"] in name), None)
                    if tg is not None:
                        counts[topic] = answered(telegram.received(tg["id"]), topic)
                        continue
                    person = next(p for p in on_slack if p["real_name"].split()[0] in name)
                    counts[topic] = answered(slack.top_level(slack.dm(person)), topic)
                return counts

            await eventually(lambda: all(replies_in().values()))
            await slack.quiet()
            assert all(desk.shown(text) == 1 for text in written)
            assert len(topics) == len(on_telegram) + len(on_slack)
            assert set(replies_in().values()) == {1}
            # both processes took requests
            assert all(count > 0 for count in desk.balancer.forwarded.values())
        finally:
            await desk.stop()


@pytest.mark.long
async def test_a_sigterm_in_a_burst_hands_over_and_loses_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    """A rolling restart: the polling process gets SIGTERM while customers write. It
    finishes what is in flight, exits cleanly, and gives the role back at once; the
    other process takes the rest in. Every message is shown once."""
    async with TelegramSandbox(limits=Limits(enabled=False)) as telegram:
        desk = Desk(tmp_path, postgres_url, telegram)
        try:
            await desk.start()
            customers = [telegram.add_user(f"Burst{n:02d}") for n in range(10)]
            holder = await desk.poller()
            written = [f"Burst{n:02d} message {r}" for r in range(6) for n in range(10)]

            async def burst() -> None:
                for r in range(6):
                    for n, customer in enumerate(customers):
                        telegram.send(customer, f"Burst{n:02d} message {r}")
                    await asyncio.sleep(0.05)

            writing = asyncio.create_task(burst())
            await eventually(lambda: sum(desk.shown(t) > 0 for t in written) >= 10)
            code = await holder.terminate()
            await writing
            assert code == 0, holder.log.read_text()[-3000:]
            await eventually(lambda: all(desk.shown(text) for text in written))
            assert all(desk.shown(text) == 1 for text in written)
        finally:
            await desk.stop()


@pytest.mark.long
async def test_a_second_process_on_one_sqlite_file_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SQLite serves one process: a second `gateway run` on the same file says so and
    exits, instead of sending what the first is sending."""
    async with TelegramSandbox(limits=Limits(enabled=False)) as telegram:
        desk = Desk(tmp_path, sqlite_url, telegram, processes=1)
        try:
            await desk.start()
            second = GatewayProcess(desk.processes[0].config, tmp_path / "second.log", free_port())
            await second.start()
            assert second.child is not None
            code = await second.child.wait()
            assert code != 0
            assert "another gateway process" in second.log.read_text()
            assert await desk.processes[0].healthy()
        finally:
            await desk.stop()


async def test_processes_starting_at_once_on_postgresql_all_start(postgres_url: str) -> None:
    """compose starts its gateways together: each registers the operators it finds
    in the config, and one that meets another's rows goes on rather than dies."""
    await migrate(postgres_url)
    for round_ in range(4):
        operators = [f"op{round_}x{n}" for n in range(3)]
        gateways = [
            Gateway(make_config(postgres_url, operators), plugins={}, serve_http=False)
            for _ in range(3)
        ]
        try:
            await asyncio.gather(*(gateway.start() for gateway in gateways))
        finally:
            await asyncio.gather(*(gateway.stop() for gateway in gateways))


async def incoming(url: str) -> list[str]:
    """The texts of every customer message stored so far."""
    db = Database(url)
    try:
        async with Repository(db).transaction() as tx:
            found = await tx.session.exec(
                select(Message.text).where(col(Message.direction) == Direction.IN)
            )
            return [text or "" for text in found.all()]
    finally:
        await db.dispose()


async def test_one_process_reads_the_mailbox_and_another_takes_over(postgres_url: str) -> None:
    """Two processes with one IMAP mailbox: one reads it (the role), and when it
    stops the other reads on; every mail becomes one message, once."""
    wanted = [f"first mail {n}" for n in range(3)] + [f"later mail {n}" for n in range(2)]

    async def stored(texts: list[str]) -> bool:
        found = await incoming(postgres_url)
        return all(sum(text in f for f in found) == 1 for text in texts)

    async with email_desk(postgres_url) as (desk, dovecot, _smtp):
        second = Gateway(desk.gateway.config, serve_http=False)
        await second.start()
        try:
            gateways = (desk.gateway, second)
            readers = [
                next(a for a in gateway.adapters if isinstance(a, EmailAdapter))
                for gateway in gateways
            ]
            await eventually(lambda: sum(r.reading for r in readers) == 1)
            for n in range(3):
                sender = f"P{n} <p{n}@example.org>"
                dovecot.append(mail(f"first mail {n}", sender=sender).as_bytes())
            await eventually(lambda: stored(wanted[:3]))
            holder = next(g for g, r in zip(gateways, readers, strict=True) if r.reading)
            other = readers[1] if holder is desk.gateway else readers[0]
            await holder.stop()  # a rolling restart: the role goes over at once
            await eventually(lambda: other.reading)
            for n in range(2):
                sender = f"Q{n} <q{n}@example.org>"
                dovecot.append(mail(f"later mail {n}", sender=sender).as_bytes())
            await eventually(lambda: stored(wanted))
            assert len(await incoming(postgres_url)) == len(wanted)
        finally:
            await second.stop()


async def test_socket_mode_in_two_processes_takes_each_event_once(postgres_url: str) -> None:
    """Each process keeps its own Socket Mode connection and Slack spreads the events
    over them: every message is taken once, and when one process stops the other
    takes the rest."""
    async with slack_desk(postgres_url) as desk:
        second = Gateway(desk.gateway.config, serve_http=False)
        await second.start()
        try:
            await eventually(lambda: desk.sandbox.connected == 2)
            people = [desk.sandbox.add_user(f"Sock{n} Person", name=f"sock{n}") for n in range(4)]
            first = [f"sock {n} hello" for n in range(4)]
            for person, text in zip(people, first, strict=True):
                desk.sandbox.post(person, text)
            await eventually(
                lambda: all(text in desk.texts(f"Sock{n}") for n, text in enumerate(first))
            )
            await desk.gateway.stop()
            later = [f"sock {n} again" for n in range(4)]
            for person, text in zip(people, later, strict=True):
                desk.sandbox.post(person, text)
            await eventually(
                lambda: all(text in desk.texts(f"Sock{n}") for n, text in enumerate(later))
            )
            await desk.sandbox.quiet()
            for n in range(4):
                assert [t for t in desk.texts(f"Sock{n}") if t.startswith("sock")] == [
                    f"sock {n} hello",
                    f"sock {n} again",
                ]
        finally:
            await second.stop()
