"""The benchmark harness still works (correctness only: benchmarks print figures, and
no test here asserts a speed)."""

from __future__ import annotations

from bench.telegram import run


async def test_the_telegram_benchmark_delivers_everything_once_for_both_relays() -> None:
    for relay in ("floor", "gateway"):
        result = await run(relay, 3, 2, limits=False, patience=120)
        assert (result.sent, result.delivered, result.duplicates) == (6, 6, 0), relay
        assert len(result.latencies) == 6 and result.peak_rss_mb > 0
