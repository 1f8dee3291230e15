"""The CLI as an admin uses it: a real `gateway` process, real signals, real HTTP."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gateway.app import GC_FIRST_THRESHOLD, settle_gc
from gateway.logs import SecretScrubber
from storage.migrate import head_revision
from tests.support import (
    CHANNEL_SECRETS,
    EMAIL,
    ROOT,
    SAFETY_SECONDS,
    SLACK_CHANNEL,
    TELEGRAM_GROUP,
)
from tests.support import gateway_cli as gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp_path: Path, database_url: str, port: int) -> Path:
    text = (ROOT / "config.example.toml").read_text()
    text = text.replace(
        'database_url = "sqlite+aiosqlite:///gateway.db"', f'database_url = "{database_url}"'
    )
    text = text.replace("http_port = 8080", f"http_port = {port}")
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def wait_healthy(port: int, process: subprocess.Popen[str]) -> dict:
    """Poll until the server answers; the limit only keeps a broken run from hanging."""
    deadline = time.monotonic() + SAFETY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited early: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                return json.loads(reply.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gateway never answered /healthz")


def run_until_sigterm(config: Path, port: int, env: dict[str, str] | None = None):
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        health = wait_healthy(port, process)
        status = gateway("status", "--config", str(config), env=env)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=SAFETY_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, health, status, out + err


def test_run_with_no_channel_serves_health_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", port)
    code, health, status, output = run_until_sigterm(config, port)
    assert code == 0, output
    assert health == {"status": "ok", "channels": [], "workspaces": []}
    assert "no channel is configured" in output
    assert output.rstrip().endswith("stopped")
    assert status.returncode == 0, status.stderr
    # the example's shifts and hours follow the real clock: on or off, open or closed
    assert re.search(r"anna\s+Anna\s+online\s+(on|off)\s+0/5", status.stdout), status.stdout
    assert re.search(r"^Desk: (open|closed, opens \w)", status.stdout, re.M), status.stdout
    assert "Queue: 0 waiting" in status.stdout
    assert "Deadlines: 0 pending" in status.stdout


def test_a_started_gateway_takes_start_up_objects_out_of_the_collectors_walk() -> None:
    """``settle_gc`` (what ``Gateway.run`` does once started): every object alive
    then is frozen, and young objects are collected less often; the older
    generations keep Python's thresholds."""
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        made_at_start = [[n] for n in range(1000)]
        settle_gc()
        assert gc.get_freeze_count() > len(made_at_start)
        assert gc.get_threshold() == (GC_FIRST_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_run_refuses_an_invalid_config_with_its_problems(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[routing]\nstrategy = "fastest"\n')
    result = gateway("run", "--config", str(config))
    assert result.returncode == 2
    assert "routing.strategy" in result.stderr and "(line 2)" in result.stderr


def test_status_on_a_database_never_migrated_says_what_to_do(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", free_port())
    result = gateway("status", "--config", str(config))
    assert result.returncode == 1
    assert f"gateway migrate --config {config}" in result.stderr


def test_postgresql_needs_migrate_and_never_shows_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    port = free_port()
    # trust auth accepts any password: enough to prove it never reaches the output
    secret = "s3cret-Passw0rd"
    url = postgres_url.replace("postgres@", "postgres:${DB_PASSWORD}@", 1)
    config = write_config(tmp_path, url, port)
    env = {**os.environ, "DB_PASSWORD": secret}

    refused = gateway("run", "--config", str(config), env=env)
    assert refused.returncode == 1
    assert f"run `gateway migrate --config {config}` first" in refused.stderr

    migrated = gateway("migrate", "--config", str(config), env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema migrated from empty to {head_revision()}" in migrated.stdout
    again = gateway("migrate", "--config", str(config), env=env)
    assert f"already at {head_revision()}" in again.stdout

    code, health, status, output = run_until_sigterm(config, port, env)
    assert code == 0, output
    assert health["status"] == "ok"
    assert status.returncode == 0
    checked = gateway("check-config", str(config), env=env)
    for text in (refused.stderr, migrated.stdout, output, status.stdout, checked.stdout):
        assert secret not in text
    assert "postgres:***@" in checked.stdout


def test_the_log_scrubber_removes_secrets_from_messages_and_tracebacks() -> None:
    scrubber = SecretScrubber(["123456:ABC-token"])
    record = logging.LogRecord(
        "aiohttp",
        logging.ERROR,
        __file__,
        1,
        "GET https://api.telegram.org/bot%s/getMe failed",
        ("123456:ABC-token",),
        None,
    )
    try:
        raise RuntimeError("bad URL /bot123456:ABC-token/getUpdates")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert scrubber.filter(record)
    assert record.getMessage() == "GET https://api.telegram.org/bot***/getMe failed"
    assert "123456:ABC-token" not in (record.exc_text or "")
    assert "bot***/getUpdates" in (record.exc_text or "")


#: what a command that talks to no platform must not load: a channel's SDK is imported
#: when the gateway starts that channel (aiogram alone takes seconds)
PLATFORM_SDKS = ("aiogram", "slack_sdk", "slack_bolt", "aioimaplib", "aiosmtplib")

LOADED_AFTER = (
    "import sys; from gateway.cli import main; code = main(sys.argv[1:]); "
    f"print(sorted(m for m in {PLATFORM_SDKS!r} if m in sys.modules)); raise SystemExit(code)"
)


def test_read_only_commands_need_no_platform_secret_and_load_no_platform_sdk(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", free_port())
    config.write_text("\n".join((config.read_text(), TELEGRAM_GROUP, SLACK_CHANNEL, EMAIL)))
    secrets = CHANNEL_SECRETS
    without = {k: v for k, v in os.environ.items() if k not in secrets}

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", LOADED_AFTER, *args],
            capture_output=True,
            text=True,
            timeout=SAFETY_SECONDS,
            env=env,
            cwd=ROOT,
        )

    # running needs the tokens, and says which is missing
    refused = gateway("check-config", str(config), env=without)
    assert refused.returncode == 2 and "TELEGRAM_TOKEN is not set" in refused.stderr
    # reading the database does not; and none of them loads a platform's SDK
    for args, env in (
        (["check-config", str(config)], {**without, **secrets}),
        (["migrate", "--config", str(config)], without),
        (["status", "--config", str(config)], without),
        (["report", "--config", str(config)], without),
        (["faq", "ask", "--config", str(config), "delivery?"], without),
    ):
        done = run(*args, env=env)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stdout.rstrip().endswith("[]"), (args, done.stdout[-300:])
        if args[0] == "report":
            assert done.stdout.startswith("Support report"), done.stdout
