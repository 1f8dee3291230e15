"""A Slack desk for tests: the sandbox as Slack, the real gateway and slack-bolt.

With ``telegram`` given, the same gateway also runs Telegram over its sandbox, with a
forum as a second workspace: every conversation then lives in both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bench.processes import free_port
from gateway.app import Gateway
from gateway.config import parse_config
from gateway.plugins import channel_models
from sandbox.slack import Limits, SlackSandbox
from sandbox.telegram import TelegramSandbox
from storage import Database
from storage.migrate import upgrade

JSON = dict[str, Any]

CONFIG = """
[gateway]
database_url = "{database_url}"
http_port = {http_port}

[routing]
default_max_chats = 3

[outbox]
base_delay_seconds = 0.05
max_delay_seconds = 0.5

[texts]
greeting = "Hello!"
queued = "You are number {{position}} in line."
assigned = "{{operator}} will help you."

[slack]
bot_token = "{bot_token}"
api_base = "{api_base}"
workspace_channel = "{channel}"
ping_interval_seconds = 0.3
{mode}
{telegram}
[[operators]]
id = "anna"
name = "Anna"
slack_id = "{anna}"
{anna_tg}

[[operators]]
id = "boris"
name = "Boris"
slack_id = "{boris}"
{boris_tg}
"""


@dataclass
class SlackDesk:
    sandbox: SlackSandbox
    gateway: Gateway
    channel: JSON  # the operators' channel
    anna: JSON
    boris: JSON
    port: int
    telegram: TelegramSandbox | None = None
    forum: JSON | None = None
    anna_tg: JSON | None = None

    def cards(self) -> list[JSON]:
        return [
            m
            for m in self.sandbox.top_level(self.channel)
            if m.get("bot_id") and m.get("subtype") != "thread_broadcast"
        ]

    def broadcasts(self) -> list[JSON]:
        """Thread replies also sent to the channel."""
        return [
            m
            for m in self.sandbox.top_level(self.channel)
            if m.get("subtype") == "thread_broadcast"
        ]

    def card_of(self, customer_name: str) -> JSON:
        for card in self.cards():
            if customer_name in card["text"]:
                return card
        raise AssertionError(f"no card for {customer_name}: {[c['text'] for c in self.cards()]}")

    def thread_of(self, customer_name: str) -> str:
        return self.card_of(customer_name)["ts"]

    def replies(self, customer_name: str) -> list[JSON]:
        return self.sandbox.thread(self.channel, self.thread_of(customer_name))

    def texts(self, customer_name: str) -> list[str]:
        return [m["text"] for m in self.replies(customer_name)]

    def to_customer(self, user: JSON) -> list[JSON]:
        """What the app posted in the customer's DM."""
        dm = self.sandbox.dm(user)
        return [m for m in self.sandbox.top_level(dm) if m.get("bot_id")]


@asynccontextmanager
async def slack_desk(
    database_url: str,
    *,
    mode: str = "socket",
    limits: Limits | None = None,
    sandbox: SlackSandbox | None = None,
    telegram: TelegramSandbox | None = None,
    customer_channels: list[str] = (),  # type: ignore[assignment]
    extra: str = "",
) -> AsyncIterator[SlackDesk]:
    own = sandbox is None
    sandbox = sandbox or SlackSandbox(
        limits=limits or Limits(enabled=False), retry_delays=(0.05, 0.2, 0.5)
    )
    if own:
        await sandbox.start()
    anna = sandbox.add_user("Anna Lind", name="anna")
    boris = sandbox.add_user("Boris Petrov", name="boris")
    channel = sandbox.add_channel("support-desk", members=[anna, boris])
    port = free_port()
    if mode == "http":
        mode_lines = f'mode = "http"\nsigning_secret = "{sandbox.signing_secret}"'
        sandbox.events_to(f"http://127.0.0.1:{port}/slack/events")
    else:
        mode_lines = f'mode = "socket"\napp_token = "{sandbox.app_token}"'
    forum = anna_tg = None
    telegram_section = ""
    tg_ids = {"anna_tg": "", "boris_tg": ""}
    if telegram is not None:
        forum = telegram.add_forum("Support desk")
        anna_tg = telegram.add_user("Anna", username="anna_ops")
        boris_tg = telegram.add_user("Boris", username="boris_ops")
        telegram_section = (
            f'[telegram]\ntoken = "{telegram.token}"\napi_base = "{telegram.api_base}"\n'
            f"workspace_chat_id = {forum['id']}\npoll_timeout_seconds = 1\n"
        )
        tg_ids = {
            "anna_tg": f"telegram_id = {anna_tg['id']}",
            "boris_tg": f"telegram_id = {boris_tg['id']}",
        }
    config = parse_config(
        CONFIG.format(
            database_url=database_url,
            http_port=port,
            bot_token=sandbox.bot_token,
            api_base=sandbox.api_base,
            channel=channel["id"],
            mode=mode_lines
            + f"\ncustomer_channels = {list(customer_channels)!r}".replace("'", '"'),
            telegram=telegram_section + extra,
            anna=anna["id"],
            boris=boris["id"],
            **tg_ids,
        ),
        channel_models(),
    )
    db = Database(database_url)
    await upgrade(db)
    await db.dispose()
    gateway = Gateway(config)
    await gateway.start()
    try:
        yield SlackDesk(sandbox, gateway, channel, anna, boris, port, telegram, forum, anna_tg)
    finally:
        await gateway.stop()
        if own:
            await sandbox.stop()
