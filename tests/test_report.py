"""`gateway report`: the figures of a scripted week, checked against the same figures
worked out by hand; the terminal table, and the HTML report in a real browser."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import parse_config
from gateway.report import Report, load_report
from tests.clock import ManualClock
from tests.support import (
    SAFETY_SECONDS,
    RecordingAdapter,
    config_text,
    gateway_cli,
    operator_writes,
    running,
    settle,
)

HOURS = """
[hours]
timezone = "UTC"
schedule = { mon-fri = "09:00-18:00" }

[sla]
first_response_minutes = 30
remind_before_minutes = 0
customer_update_minutes = 0

[faq]
when = "always_first"
suggest_threshold = 0

[[faq.entries]]
id = "delivery"
questions = ["How long does delivery take?"]
answer = "Two to four days."
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


async def play_the_week(gw: Gateway, tg: RecordingAdapter, slack: RecordingAdapter, clock) -> dict:  # type: ignore[no-untyped-def]
    """Four conversations; the times in the comments are what the figures come from."""
    ids = {}
    # A, Telegram, Monday 10:00: Anna answers 10:06, closes 11:00, Olga rates 5
    ids["a"] = (await gw.core.ingest(tg.customer_says("olga", "hi there"))).conversation_id
    clock.set(at(23, 10, 6))
    await operator_writes(gw, tg, "anna", ids["a"], "Hello Olga")
    await settle(gw)
    clock.set(at(23, 11))
    await operator_writes(gw, tg, "anna", ids["a"], "/close")
    await gw.core.ingest(tg.customer_says("olga", "5"))
    # B, Telegram, Monday 11:00, goes to Boris: the 30-minute target is missed at 11:30,
    # he answers at 12:01 (a minute past the histogram's 1 h bound, so the running clock
    # cannot put it on either side) and closes at 12:30; Petro rates 2
    ids["b"] = (await gw.core.ingest(tg.customer_says("petro", "hello"))).conversation_id
    clock.set(at(23, 11, 31))
    await gw.core.run_due()
    clock.set(at(23, 12, 1))
    await operator_writes(gw, tg, "boris", ids["b"], "Sorry for the wait")
    await settle(gw)
    clock.set(at(23, 12, 30))
    await operator_writes(gw, tg, "boris", ids["b"], "/close")
    await gw.core.ingest(tg.customer_says("petro", "2"))
    # C, Slack, Friday 17:50, ten minutes before closing: Anna answers Monday 09:10
    # (2 days 15 h 20 min on the clock; 20 minutes of business hours)
    clock.set(at(27, 17, 50))
    ids["c"] = (await gw.core.ingest(slack.customer_says("ivan", "good evening"))).conversation_id
    clock.set(at(30, 9, 10))
    await operator_writes(gw, tg, "anna", ids["c"], "Good morning Ivan")
    await settle(gw)
    # D, Telegram, Monday 10:00: the FAQ answers and it helped; no operator reply
    clock.set(at(30, 10))
    ids["d"] = (
        await gw.core.ingest(tg.customer_says("vera", "How long does delivery take?"))
    ).conversation_id
    clock.set(at(30, 10, 1))
    await gw.core.ingest(tg.customer_says("vera", "1"))
    await settle(gw)
    return ids


def close_to(value: float | None, expected: float) -> bool:
    """The clock runs on between the script's steps: equal within a few seconds."""
    return value is not None and abs(value - expected) < 5


def check_by_hand(report: Report) -> None:
    total = report.total
    assert (total.opened, total.resolved) == (4, 3)
    # first responses: A 6 min, B 61 min, C 2 d 15 h 20 min = 228,000 s
    assert close_to(total.median("first_response"), 3660)
    # p90 of [360, 3660, 228000]: rank 1.8, 3660 + 0.8 * (228000 - 3660)
    assert close_to(total.p90("first_response"), 183_132)
    # in business hours C took 20 minutes: [360, 1200, 3660]
    assert close_to(total.median("first_response_business"), 1200)
    # resolutions: D 1 min, A 60 min, B 90 min; p90 3600 + 0.8 * 1800
    assert close_to(total.median("resolution"), 3600)
    assert close_to(total.p90("resolution"), 5040)
    assert close_to(total.median("resolution_business"), 3600)
    assert (total.faq_answered, total.faq_share, total.solved_by_faq) == (1, 0.25, 1)
    assert total.breaches == 1
    assert (total.csat_average, len(total.csat)) == (3.5, 2)


async def test_the_figures_of_a_scripted_week(sqlite_url: str, clock: ManualClock) -> None:
    config = parse_config(config_text(sqlite_url, max_chats=3, extra=HOURS))
    tg, slack = RecordingAdapter(), RecordingAdapter("slack", serves_workspace=False)
    async with running(config, tg, slack) as gw:
        await play_the_week(gw, tg, slack, clock)
        window = {"since": at(23, 0), "until": at(30, 0) + timedelta(days=1)}
        report = await load_report(gw.repository, config, by="operator", **window)
        check_by_hand(report)
        anna, boris = report.groups["Anna"], report.groups["Boris"]
        # A and C are Anna's; B and D went to Boris (the least busy each time)
        assert (anna.opened, anna.resolved, anna.breaches, anna.csat) == (2, 1, 0, [5])
        assert (boris.opened, boris.resolved, boris.breaches, boris.csat) == (2, 2, 1, [2])
        assert (boris.faq_answered, boris.solved_by_faq) == (1, 1)
        assert close_to(anna.median("first_response"), (360 + 228_000) / 2)
        assert report.csat_by_operator == {"Anna": (5.0, 1), "Boris": (2.0, 1)}
        # opened at 10, 11, 17 and 10 o'clock
        assert [(h, n) for h, n in enumerate(report.by_hour) if n] == [(10, 2), (11, 1), (17, 1)]
        # first responses of 6 min, 61 min and 2.6 days
        assert report.response_histogram == [0, 0, 1, 0, 0, 1, 0, 0, 0, 1]

        by_channel = await load_report(gw.repository, config, by="channel", **window)
        check_by_hand(by_channel)
        assert {k: (g.opened, g.resolved) for k, g in by_channel.groups.items()} == {
            "slack": (1, 0),
            "telegram": (3, 3),
        }
        by_day = await load_report(gw.repository, config, by="day", **window)
        assert {k: (g.opened, g.resolved, g.breaches) for k, g in by_day.groups.items()} == {
            "2026-11-23": (2, 2, 1),
            "2026-11-27": (1, 0, 0),
            "2026-11-30": (1, 1, 0),
        }
        # a window that holds only the Friday
        friday = await load_report(
            gw.repository, config, by="operator", since=at(27, 0), until=at(28, 0)
        )
        assert (friday.total.opened, friday.total.resolved, friday.total.breaches) == (1, 0, 0)
        # response times belong to the day the conversation opened, even when the
        # answer came later
        assert [round(s) for s in friday.total.first_response] == [228_000]


def browse(browser: str, html: Path, shot: Path) -> str:
    """The page's DOM as headless Chromium built it, and a screenshot of it."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    rendered = subprocess.run(
        [browser, *flags, "--dump-dom", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=SAFETY_SECONDS,
    )
    assert rendered.returncode == 0, rendered.stderr
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,1500", html.as_uri()],
        capture_output=True,
        timeout=SAFETY_SECONDS,
        check=True,
    )
    return rendered.stdout


def chromium() -> str | None:
    return shutil.which("chromium-headless-shell") or shutil.which("chromium")


async def test_the_report_command_prints_a_table_and_writes_html_that_renders(
    tmp_path: Path, sqlite_url: str, clock: ManualClock
) -> None:
    text = config_text(sqlite_url, max_chats=3, extra=HOURS)
    config = parse_config(text)
    tg, slack = RecordingAdapter(), RecordingAdapter("slack", serves_workspace=False)
    async with running(config, tg, slack) as gw:
        await play_the_week(gw, tg, slack, clock)
    path = tmp_path / "config.toml"
    path.write_text(text)
    html = tmp_path / "report.html"
    result = gateway_cli(
        "report", "--config", str(path), "--since", "2026-11-23", "--until", "2026-11-30",
        "--html", str(html),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Support report 2026-11-23 .. 2026-11-30 (UTC), by operator"
    total = next(line.split() for line in lines if line.startswith("total"))
    assert total[:3] == ["total", "4", "3"]
    assert "25%" in total and "3.50" in total
    assert next(line for line in lines if line.startswith("Boris")).split()[1:3] == ["2", "2"]
    page = html.read_text()
    assert page.count("<svg") == 3 and "http" not in page.replace("http-equiv", "")
    bad = gateway_cli("report", "--config", str(path), "--since", "yesterday")
    assert bad.returncode == 2 and "--since 'yesterday': not a date" in bad.stderr

    browser = chromium()
    if browser is None:
        if os.environ.get("GATEWAY_REQUIRE_BROWSER"):
            pytest.fail("GATEWAY_REQUIRE_BROWSER is set but no headless Chromium is installed")
        pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")
    shot = tmp_path / "report.png"
    dom = browse(browser, html, shot)
    # what the browser built: three charts with their bars, the table with its total
    assert dom.count("<svg") == 3 and dom.count("<rect") >= 24 + 10 + 2
    assert '<tr class="total">' in dom
    assert shot.stat().st_size > 20_000  # a page with charts, not a blank one
    keep = os.environ.get("GATEWAY_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
