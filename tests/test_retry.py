"""The retry policy on its own: a failure and the tries so far -> what to do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import PermanentFailure, RateLimited, TemporaryFailure
from gateway.retry import Policy, backoff, call_part, decide, wait_within

POLICY = Policy(max_attempts=5, base_delay=1.0, max_delay=60.0)


def highest(low: float, high: float) -> float:
    return high


@given(st.integers(min_value=1, max_value=40))
def test_backoff_grows_and_is_capped(attempt: int) -> None:
    delay = backoff(attempt, base=1.0, cap=60.0)
    expected = min(60.0, 2 ** (attempt - 1))
    assert expected / 2 <= delay <= expected


def test_a_temporary_failure_is_retried_later_each_time_until_the_tries_run_out() -> None:
    delays = [
        decide(TemporaryFailure("502"), attempt, POLICY, highest).retry_in
        for attempt in range(1, 5)
    ]
    assert delays == [1.0, 2.0, 4.0, 8.0]
    last = decide(TemporaryFailure("502"), 5, POLICY, highest)
    assert last.gives_up and "5 attempts" in last.reason and "502" in last.reason
    assert not last.unexpected


def test_a_rate_limit_waits_its_time_in_its_scope_and_costs_no_try() -> None:
    for attempts in (1, POLICY.max_attempts, POLICY.max_attempts + 3):
        chat = decide(RateLimited(7.5), attempts, POLICY)
        assert (chat.retry_in, chat.held, chat.counts) == (7.5, "chat", False)
    bot = decide(RateLimited(30, scope="destination"), 1, POLICY)
    assert (bot.retry_in, bot.held) == (30, "destination")


def test_a_permanent_failure_is_given_up_at_once_with_its_reason() -> None:
    decision = decide(PermanentFailure("the customer blocked the bot"), 1, POLICY)
    assert decision.gives_up and decision.reason == "the customer blocked the bot"


def test_a_bug_in_an_adapter_is_retried_like_an_outage_and_flagged() -> None:
    decision = decide(KeyError("chat"), 1, POLICY, highest)
    assert decision.retry_in == 1.0 and decision.unexpected and decision.counts
    assert decide(KeyError("chat"), 5, POLICY).gives_up


def test_a_later_call_waits_only_for_rate_limits() -> None:
    assert wait_within(RateLimited(3)) == 0.0  # the limiter holds the scope
    assert wait_within(TemporaryFailure("timeout")) is None
    assert wait_within(ValueError("429"), lambda exc: 2.0) == 2.0


@pytest.mark.parametrize("first", [True, False])
async def test_call_part_retries_a_later_call_but_never_a_first(first: bool) -> None:
    calls = 0

    async def throttled_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimited(0)
        return "sent"

    if first:
        with pytest.raises(RateLimited):
            await call_part(throttled_once, first=True, tries=3)
        assert calls == 1
    else:
        assert await call_part(throttled_once, first=False, tries=3) == "sent"
        assert calls == 2


async def test_call_part_gives_a_later_calls_other_failure_to_the_delivery() -> None:
    async def broken() -> None:
        raise TemporaryFailure("502")

    with pytest.raises(TemporaryFailure):
        await call_part(broken, first=False, tries=3)
