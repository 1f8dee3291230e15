"""A Telegram desk for tests: the sandbox as Telegram, the real gateway and aiogram."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway.app import Gateway
from gateway.config import Config, parse_config
from gateway.plugins import channel_models
from sandbox.telegram import Limits, TelegramSandbox
from storage import Database
from storage.migrate import upgrade
from tests.support import SAFETY_SECONDS

CONFIG = """
[gateway]
database_url = "{database_url}"
http_port = {http_port}

[routing]
default_max_chats = 3

[outbox]
base_delay_seconds = 0.05
max_delay_seconds = 0.5
concurrency = {concurrency}

[texts]
greeting = "Hello!"
queued = "You are number {{position}} in line."
assigned = "{{operator}} will help you."

[telegram]
token = "{token}"
api_base = "{api_base}"
workspace_chat_id = {workspace}
poll_timeout_seconds = 1
{extra}

[[operators]]
id = "anna"
name = "Anna"
telegram_id = {anna}

[[operators]]
id = "boris"
name = "Boris"
telegram_id = {boris}
"""


@dataclass
class Desk:
    sandbox: TelegramSandbox
    gateway: Gateway
    forum: dict[str, Any]
    anna: dict[str, Any]
    boris: dict[str, Any]

    @property
    def workspace(self) -> int:
        return self.forum["id"]

    def topics(self) -> list[dict[str, Any]]:
        return self.sandbox.topics(self.workspace)

    def topic_of(self, customer_name: str) -> int:
        for topic in self.topics():
            if customer_name in topic["name"]:
                return topic["message_thread_id"]
        raise AssertionError(f"no topic for {customer_name}: {self.topics()}")

    def in_topic(self, thread: int) -> list[dict[str, Any]]:
        return self.sandbox.received(self.workspace, thread)

    def to_customer(self, user: dict[str, Any]) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.sandbox.received(user["id"])]


async def eventually(check: Callable[[], Any], limit: float = SAFETY_SECONDS) -> Any:
    """Wait until ``check`` passes (returns truthy without AssertionError).

    The limit only keeps a broken test from hanging; no test here measures speed.
    """
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
        except (AssertionError, KeyError, IndexError, StopIteration):
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met before the test's safety limit")
        await asyncio.sleep(0.02)


def desk_config(
    sandbox: TelegramSandbox,
    forum: dict,
    anna: dict,
    boris: dict,
    database_url: str,
    *,
    http_port: int = 0,
    extra: str = "",
    concurrency: int = 16,
) -> Config:
    return parse_config(
        CONFIG.format(
            database_url=database_url,
            http_port=http_port,
            token=sandbox.token,
            api_base=sandbox.api_base,
            workspace=forum["id"],
            anna=anna["id"],
            boris=boris["id"],
            extra=extra,
            concurrency=concurrency,
        ),
        channel_models(),
    )


@asynccontextmanager
async def telegram_desk(
    database_url: str,
    *,
    limits: Limits | None = None,
    extra: str = "",
    http_port: int = 0,
    sandbox: TelegramSandbox | None = None,
    concurrency: int = 16,
) -> AsyncIterator[Desk]:
    own = sandbox is None
    sandbox = sandbox or TelegramSandbox(
        limits=limits or Limits(enabled=False), webhook_retry_delay=0.05
    )
    if own:
        await sandbox.start()
    forum = sandbox.add_forum("Support desk")
    anna = sandbox.add_user("Anna", username="anna_ops")
    boris = sandbox.add_user("Boris", username="boris_ops")
    config = desk_config(
        sandbox,
        forum,
        anna,
        boris,
        database_url,
        http_port=http_port,
        extra=extra,
        concurrency=concurrency,
    )
    db = Database(database_url)
    await upgrade(db)
    await db.dispose()
    gateway = Gateway(config)
    await gateway.start()
    try:
        yield Desk(sandbox, gateway, forum, anna, boris)
    finally:
        await gateway.stop()
        if own:
            await sandbox.stop()
