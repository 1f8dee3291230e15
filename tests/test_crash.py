"""The gateway killed (SIGKILL) while it delivers, then started again: nothing is
lost, and what was not in flight at the kill is not sent twice.

The gateway runs as `gateway run` in a process of its own, against the Telegram
sandbox with Telegram's limits on, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox.telegram import TelegramSandbox
from sandbox.telegram.world import Limits
from tests.support import ROOT, gateway_cli
from tests.telegram_support import CONFIG, eventually


class Process:
    """`gateway run` in a child process, its output in a file (read after a failure)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.child: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, sandbox: TelegramSandbox) -> None:
        polled = sandbox.world.stats.calls["getupdates"]
        with self.log.open("ab") as out:
            self.child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "run", "--config", str(self.config),
                cwd=ROOT, stdout=out, stderr=out,
            )  # fmt: skip
        self.starts += 1
        # up once it polls (its deliveries start with it)
        await eventually(lambda: self._alive() and sandbox.world.stats.calls["getupdates"] > polled)

    def _alive(self) -> bool:
        assert self.child is not None
        if self.child.returncode is not None:
            raise RuntimeError(f"the gateway exited:\n{self.log.read_text()[-3000:]}")
        return True

    async def kill(self) -> None:
        if self.child is not None and self.child.returncode is None:
            self.child.kill()
            await self.child.wait()


def write_config(
    tmp_path: Path, sandbox: TelegramSandbox, people: dict[str, Any], url: str, extra: str = ""
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        CONFIG.format(
            database_url=url,
            http_port=0,
            token=sandbox.token,
            api_base=sandbox.api_base,
            workspace=people["forum"]["id"],
            anna=people["anna"]["id"],
            boris=people["boris"]["id"],
            extra=extra,
            concurrency=8,
        )
    )
    migrated = gateway_cli("migrate", "--config", str(path))  # PostgreSQL: the admin's step
    assert migrated.returncode == 0, migrated.stderr
    return path


def people_in(sandbox: TelegramSandbox) -> dict[str, Any]:
    return {
        "forum": sandbox.add_forum("Support desk"),
        "anna": sandbox.add_user("Anna"),
        "boris": sandbox.add_user("Boris"),
    }


def texts_in(sandbox: TelegramSandbox, chat: int, thread: int | None = None) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in sandbox.received(chat, thread)]


def topics_named(sandbox: TelegramSandbox, forum: int, name: str) -> list[int]:
    return [t["message_thread_id"] for t in sandbox.topics(forum) if name in t["name"]]


async def test_a_kill_while_a_topic_opens_never_opens_it_twice(
    database_url: str, tmp_path: Path
) -> None:
    """The topic exists and its header is on its way when the process dies: after
    the restart, the header and the messages go into that topic, not a new one."""
    sandbox = TelegramSandbox()  # Telegram's limits on
    await sandbox.start()
    people = people_in(sandbox)
    forum = people["forum"]["id"]
    olga = sandbox.add_user("Olga")
    gateway = Process(write_config(tmp_path, sandbox, people, database_url), tmp_path / "gw.log")
    try:
        # the header's post into the new topic hangs: the process dies meanwhile
        sandbox.inject("slow", method="sendMessage", chat=forum, delay=3)
        await gateway.start(sandbox)
        sandbox.send(olga, "my parcel is late")
        await eventually(lambda: not sandbox.faults.pending)
        assert len(sandbox.topics(forum)) == 1
        await gateway.kill()

        await gateway.start(sandbox)
        sandbox.send(olga, "hello? anyone there?")
        thread = await eventually(
            lambda: (
                {"my parcel is late", "hello? anyone there?"}
                <= set(texts_in(sandbox, forum, topics_named(sandbox, forum, "Olga")[-1]))
                and topics_named(sandbox, forum, "Olga")[-1]
            )
        )
        sandbox.send(people["anna"], "On it, Olga", chat_id=forum, thread_id=thread)
        await eventually(lambda: any("On it, Olga" in t for t in texts_in(sandbox, olga["id"])))

        assert topics_named(sandbox, forum, "Olga") == [thread]
        shown = Counter(texts_in(sandbox, forum, thread))
        assert shown["my parcel is late"] == 1 and shown["hello? anyone there?"] == 1
        assert sum("On it, Olga" in t for t in texts_in(sandbox, olga["id"])) == 1
    finally:
        await gateway.kill()
        await sandbox.stop()


#: a send answered this long before a kill may not have had its outcome committed:
#: it was in flight (the outbox records outcomes within a claim's gather window and
#: one transaction; the rest is slack for a busy machine)
IN_FLIGHT_SECONDS = 3.0
CUSTOMERS = 6
ROUNDS = 3


async def test_kills_under_load_lose_nothing_and_resend_only_what_was_in_flight(
    database_url: str, tmp_path: Path
) -> None:
    """Customers write while operators answer in each topic as it opens; the process
    is killed twice mid-flow and started again. Every message arrives; one shown
    twice, or a second topic, was one whose call had just been answered when the
    process died."""
    # Telegram's limits on, a group's raised (on both sides) so that the test takes
    # seconds: 20 a minute would make it minutes
    sandbox = TelegramSandbox(limits=Limits(group_per_minute=600))
    await sandbox.start()
    people = people_in(sandbox)
    forum = people["forum"]["id"]
    names = [f"Cust{n:02d}" for n in range(CUSTOMERS)]
    customers = [sandbox.add_user(name) for name in names]
    operators = [people["anna"], people["boris"]]
    config = write_config(
        tmp_path, sandbox, people, database_url, extra="group_messages_per_minute = 600"
    )
    # operators answer in turn, not as the assignee: the collision guard would hold
    # half the answers for a tap that never comes
    config.write_text(
        config.read_text().replace("[routing]\n", "[routing]\ncollision_minutes = 0\n", 1)
    )
    gateway = Process(config, tmp_path / "gw.log")
    kills: list[float] = []
    answered: set[int] = set()
    rng = random.Random(32)

    def copied(text: str) -> int:
        return sum(text == t for t in texts_in(sandbox, forum))

    async def answer_each_topic() -> None:
        while True:
            for topic in sandbox.topics(forum):
                thread = topic["message_thread_id"]
                name = next((name for name in names if name in topic["name"]), None)
                if thread in answered or name is None:
                    continue
                answered.add(thread)
                sandbox.send(
                    operators[thread % 2], f"answer for {name}", chat_id=forum, thread_id=thread
                )
            await asyncio.sleep(0.05)

    everything = [f"{name} message {r}" for r in range(ROUNDS) for name in names]
    operators_at_work = asyncio.create_task(answer_each_topic())
    try:
        await gateway.start(sandbox)
        for round_ in range(ROUNDS):
            for name, customer in zip(names, customers, strict=True):
                sandbox.send(customer, f"{name} message {round_}")
            if round_ == ROUNDS - 1:
                break
            await eventually(
                lambda r=round_: (
                    sum(copied(f"{name} message {r}") > 0 for name in names) >= CUSTOMERS // 2
                )
            )
            await asyncio.sleep(rng.uniform(0, 0.3))
            kills.append(sandbox.world.clock())
            await gateway.kill()
            await gateway.start(sandbox)

        try:
            await eventually(lambda: all(copied(text) for text in everything))
            await eventually(
                lambda: all(
                    any(f"answer for {name}" in t for t in texts_in(sandbox, c["id"]))
                    for name, c in zip(names, customers, strict=True)
                )
            )
        except AssertionError as failure:
            missing = [text for text in everything if not copied(text)]
            topics = sandbox.topics(forum)
            raise AssertionError(f"not shown: {missing}; topics: {topics}") from failure
    finally:
        operators_at_work.cancel()
        await gateway.kill()
        await sandbox.stop()

    def in_flight_at_a_kill(first: float) -> bool:
        return any(0 <= kill - first <= IN_FLIGHT_SECONDS for kill in kills)

    messages = list(sandbox.world.messages[forum].values())
    for text in everything:
        copies = [m for m in messages if m.get("text") == text]
        if len(copies) > 1:
            assert in_flight_at_a_kill(min(m["_created"] for m in copies)), text
    for name, customer in zip(names, customers, strict=True):
        topics = [
            m for m in messages if name in (m.get("forum_topic_created") or {}).get("name", "")
        ]
        assert topics, f"{name} has no topic"
        if len(topics) > 1:
            assert in_flight_at_a_kill(min(m["_created"] for m in topics)), name
        replies = [
            m for m in sandbox.world.messages[customer["id"]].values()
            if f"answer for {name}" in (m.get("text") or "")
        ]  # fmt: skip
        if len(replies) > 1:
            assert in_flight_at_a_kill(min(m["_created"] for m in replies)), name


async def test_an_operators_command_answer_survives_a_failing_group_and_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    """The answer to a command is a delivery like any: while the group refuses
    messages it waits, and a restart meanwhile neither loses it nor runs the command
    again."""
    sandbox = TelegramSandbox()
    await sandbox.start()
    people = people_in(sandbox)
    forum = people["forum"]["id"]
    gateway = Process(write_config(tmp_path, sandbox, people, database_url), tmp_path / "gw.log")

    def answers() -> list[str]:
        return [
            t
            for m in sandbox.received(forum)
            if m.get("message_thread_id") is None and (t := m.get("text") or "").startswith("✅")
        ]

    try:
        refusals = 10_000
        sandbox.inject("error", method="sendMessage", chat=forum, times=refusals)
        await gateway.start(sandbox)
        sandbox.send(people["anna"], "/online", chat_id=forum)
        # the answer is tried, and refused, a few times
        await eventually(lambda: sandbox.faults.pending[0].times <= refusals - 3)
        await gateway.kill()
        sandbox.faults.pending.clear()

        await gateway.start(sandbox)
        await eventually(answers)
        sandbox.send(people["anna"], "/status", chat_id=forum)  # what comes after it
        await eventually(lambda: len(answers()) == 2)
        assert "online" in answers()[0].lower()
    finally:
        await gateway.kill()
        await sandbox.stop()
