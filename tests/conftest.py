"""Fixtures: real databases (an SQLite file; PostgreSQL when the environment has one)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from bench.processes import fresh_database
from storage.types import set_clock
from tests.clock import ManualClock

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A database of its own for one test, dropped afterwards."""
    assert PG_URL is not None
    async with fresh_database(PG_URL, prefix="gw_test") as url:
        yield url


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` starts: three for each CPU this process may use,
    up to 8. Most of the suite's time is spent waiting on real servers, emulators and
    subprocesses, not computing, so one worker per CPU would leave them idle (the suite on
    2 CPUs: 8.5 min in one process, 2:50-3:30 with 4 workers, 2:40 with 6)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere, every CPU
    cpus = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    return max(2, min(8, 3 * cpus))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (whole processes, a real install) go first, so that each
    starts while the other workers still have short tests to take, and the run does
    not end with one worker alone on a minute-long test."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A fresh, empty database for one test, on each backend the environment offers."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    if not PG_URL:
        pytest.skip("set GATEWAY_TEST_DATABASE_URL to run the PostgreSQL stories")
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """Gateway time under the test's control: Monday 2026-11-23 10:00 UTC to start."""
    manual = ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    previous = set_clock(manual.now)
    try:
        yield manual
    finally:
        set_clock(previous)


#: every secret the tests hand the gateway: none may ever appear in a log line
TEST_SECRETS = (
    "SANDBOX-token-not-for-production",  # the Telegram sandbox's bot token
    "xoxb-0000-sandbox-bot-token",
    "xapp-1-sandbox-app-token",
    "sandbox-signing-secret-0123456789",
    "mailbox-secret",
)


class _SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if any(secret in text for secret in TEST_SECRETS):
            self.leaks.append(f"{record.name}: {text[:300]}")


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line() -> Iterator[None]:
    """Fails a test in which anything logged a token or password: the scrubber in
    production is the second line of defence, not the first."""
    watch = _SecretWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        yield
    finally:
        root.removeHandler(watch)
    assert not watch.leaks, "secrets in log lines:\n" + "\n".join(watch.leaks)
