"""The benchmark harness still works (correctness only: benchmarks print figures, and
no test here asserts a speed)."""

from __future__ import annotations

import pytest

from bench.telegram import run


@pytest.mark.long
async def test_the_telegram_benchmark_delivers_everything_once_for_both_relays() -> None:
    for relay in ("floor", "gateway"):
        result = await run(relay, 3, 2, limits=False, patience=120)
        assert (result.sent, result.delivered, result.duplicates) == (6, 6, 0), relay
        assert len(result.latencies) == 6 and result.peak_rss_mb > 0


async def test_the_memory_benchmark_opens_every_conversation(tmp_path) -> None:
    from bench.memory import run as memory

    result = await memory(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}", 20)
    assert result["open"] == 20 and result["rss_after_mb"] > 0


async def test_the_web_benchmark_answers_every_visitor_once() -> None:
    from bench.web import run as web

    result = await web(20, 2, settle=False)
    assert (result.missing, result.duplicates) == (0, 0)
    assert len(result.acks) == 40 and len(result.answers) == 40 and result.rss_connected_mb > 0


def test_the_faq_benchmark_matches_every_question() -> None:
    from bench.faq import measure

    result = measure(rounds=1)
    assert result["entries"] == 500 and result["questions"] > 0


def test_the_results_say_how_this_host_compares_with_the_issues() -> None:
    from bench.all import host_note

    slow = host_note(600.0, 1.5, 0.6, 1.4, 2.0)
    assert "this host is 1.5x slower" in slow
    assert "about 540 msgs/s at 1.54 ms per message, p99 about 1.6 s" in slow
    assert "this host is 2.0x faster" in host_note(1800.0, 0.5, 0.8, 1.2, 1.5)


def test_the_cli_benchmark_times_every_command() -> None:
    from bench.cli import COMMANDS, measure

    figures = measure(runs=1, warm_up=False)
    assert list(figures) == list(COMMANDS) and all(s > 0 for s in figures.values())


async def test_the_burst_benchmark_sees_every_greeting_and_reply_once() -> None:
    from bench.burst import run as burst

    result = await burst(3, patience=120)
    assert len(result.greeting_latencies) == 3
    assert result.replies_delivered == result.replies_sent == 3
    assert result.duplicates == 0 and result.rate_limited == 0


async def test_the_search_benchmark_finds_and_times_every_query() -> None:
    from bench import search

    [result] = await search.both(2_000, None)
    assert result.messages == 2_000 and len(result.search_ms) == 60
    assert result.history_ms and result.index_seconds >= 0


async def test_the_erase_benchmark_erases_its_customer() -> None:
    from bench import erase

    [(name, result)] = await erase.both(2_000, 200, None)
    assert name == "SQLite" and result["messages"] >= 200 and result["seconds"] > 0
