"""What operators and admins watch: /metrics (checked with prometheus-client's own
parser, against figures counted by hand), /healthz and /readyz, JSON log lines, and
no token or message text in what is logged at info."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import Gateway
from gateway.errors import PermanentFailure, RateLimited
from sandbox.telegram import Limits, TelegramSandbox
from tests.support import (
    SAFETY_SECONDS,
    RecordingAdapter,
    make_config,
    migrate,
    operator_tg,
    settle,
)
from tests.telegram_support import eventually, telegram_desk

ROOT = Path(__file__).resolve().parents[1]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}{path}") as reply:
            return reply.status, await reply.text()


async def test_metrics_count_what_happened_and_show_the_desk(sqlite_url: str) -> None:
    config = make_config(sqlite_url, ("anna",), max_chats=1, max_attempts=1)
    await migrate(sqlite_url)
    tg = RecordingAdapter()
    gateway = Gateway(config, plugins={}, adapters=[tg], serve_http=True)
    await gateway.start()
    try:
        assert tg.host is not None
        # one 429 on Olga's chat, and Petro's chat refuses everything
        tg.fail("chat-olga", lambda: RateLimited(0.01))
        tg.fail("chat-petro", lambda: PermanentFailure("bot was blocked by the user"), times=9)
        await tg.host.ingest(tg.customer_says("olga", "hi"))
        await tg.host.ingest(tg.customer_says("olga", "order 7 is late"))
        await tg.host.ingest(tg.customer_says("olga", "order 7 is late", event_id="ev2"))  # again
        await tg.host.ingest(tg.customer_says("petro", "hello"))  # anna is full: queued
        await settle(gateway)
        await tg.host.ingest(tg.operator_says(operator_tg(config, "anna"), 1, "Looking into it"))
        await settle(gateway)
        status, text = await get(gateway.http.port, "/metrics")
        assert status == 200
        got = samples(text)

        def value(name: str, **labels: str) -> float:
            return got[(name, tuple(sorted(labels.items())))]

        # counted by hand: three customer messages (the resend is a duplicate), one reply
        assert value("gateway_messages_in_total", channel="telegram", side="customer") == 3
        assert value("gateway_messages_in_total", channel="telegram", side="workspace") == 1
        assert value("gateway_ingest_seconds_count", channel="telegram") == 5
        # what the platform received, each coalesced part counted
        made = sum(1 + len(d.more) for d in tg.deliveries)
        assert value("gateway_messages_out_total", destination="telegram") == made
        # Petro's greeting and queue text (one message) could not be delivered; one 429
        # for Olga
        assert value("gateway_delivery_failures_total", destination="telegram") == 1
        assert value("gateway_rate_limited_total", destination="telegram") == 1
        assert value("gateway_outbox_backlog", destination="telegram", state="failed") == 1
        assert value("gateway_queue_length") == 1
        assert 0 <= value("gateway_queue_oldest_seconds") < 60
        assert value("gateway_open_conversations", status="queued") == 1
        assert value("gateway_open_conversations", status="waiting_customer") == 1
        assert value("gateway_operators_online") == 1
        assert value("gateway_operator_load", operator="anna") == 1
        assert value("gateway_operator_capacity", operator="anna") == 1

        status, body = await get(gateway.http.port, "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        status, body = await get(gateway.http.port, "/readyz")
        assert status == 200
        assert json.loads(body) == {
            "status": "ready",
            "database": "ok",
            "channels": {"telegram": "ok"},
        }
    finally:
        await gateway.stop()


async def test_readyz_says_which_channel_is_not_connected(sqlite_url: str) -> None:
    sandbox = TelegramSandbox(limits=Limits(enabled=False))
    await sandbox.start()
    port = sandbox.port
    async with telegram_desk(sqlite_url, sandbox=sandbox, http_port=0) as desk:
        http = desk.gateway.http.port
        status, body = await get(http, "/readyz")
        assert (status, json.loads(body)["channels"]) == (200, {"telegram": "ok"})
        await sandbox.stop()  # Telegram goes away
        await eventually(lambda: desk.gateway.adapters[0]._poll_problem)  # type: ignore[attr-defined]
        status, body = await get(http, "/readyz")
        answer = json.loads(body)
        assert status == 503 and answer["status"] == "not ready"
        assert answer["database"] == "ok"
        assert answer["channels"]["telegram"].startswith("getUpdates failed")
        # it comes back: so does readiness
        sandbox.port = port
        await sandbox.start()

        async def ready() -> bool:
            return (await get(http, "/readyz"))[0] == 200

        await eventually(ready)
    await sandbox.stop()


def test_json_logs_carry_context_and_never_a_token_or_a_message(tmp_path: Path) -> None:
    asyncio.run(_json_logs(tmp_path))


async def _json_logs(tmp_path: Path) -> None:
    sandbox = TelegramSandbox(limits=Limits(enabled=False))
    await sandbox.start()
    try:
        forum = sandbox.add_forum("Support desk")
        anna = sandbox.add_user("Anna")
        olga = sandbox.add_user("Olga")
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[gateway]
database_url = "sqlite+aiosqlite:///{tmp_path / "gw.db"}"
http_port = 0
log_format = "json"

[telegram]
token = "${{TELEGRAM_TOKEN}}"
api_base = "{sandbox.api_base}"
workspace_chat_id = {forum["id"]}
poll_timeout_seconds = 1

[[operators]]
id = "anna"
name = "Anna"
telegram_id = {anna["id"]}
"""
        )
        env = {**os.environ, "TELEGRAM_TOKEN": sandbox.token}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "run", "--config", str(config),
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            body = "my card number is 4111 1111 1111 1111"
            # the gateway is up once it polls (getMe, setMyCommands, deleteWebhook first)
            await eventually(lambda: sandbox.world.stats.requests >= 4)
            sandbox.send(olga, body)
            topic = await eventually(lambda: sandbox.topics(forum["id"]))
            thread = topic[0]["message_thread_id"]
            await eventually(lambda: len(sandbox.received(forum["id"], thread)) >= 2)
            sandbox.send(
                anna, "Please never send card numbers", chat_id=forum["id"], thread_id=thread
            )
            await eventually(lambda: len(sandbox.received(olga["id"])) >= 2)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), SAFETY_SECONDS)
        lines = err.decode().splitlines()
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= set(entries[0])
        opened = next(e for e in entries if e["message"] == "conversation opened")
        assert (opened["conversation_id"], opened["channel"]) == (1, "telegram")
        for line in lines:
            assert sandbox.token not in line
            assert sandbox.token.split(":")[1] not in line
            assert "4111" not in line and "never send card" not in line
    finally:
        await sandbox.stop()
