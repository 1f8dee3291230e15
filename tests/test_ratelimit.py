"""The limiter on its own, on a fake clock: what it lets go, when, and what a 429
holds off."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapter import RateLimit
from gateway.events import Delivery, Outbound
from gateway.ratelimit import Limiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _delivery(chat: str) -> Delivery:
    return Delivery(
        Outbound(
            destination="x", audience="customer", kind="message", conversation_id=1, chat_id=chat
        ),
        attempt=1,
    )


@settings(max_examples=40, deadline=None)
@given(
    chats=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=60),
    per_chat=st.integers(1, 5),
    burst=st.integers(1, 3),
)
def test_the_limiter_never_exceeds_a_ceiling(chats: list[str], per_chat: int, burst: int) -> None:
    """Per chat at most burst + rate*t sends in any window of t seconds, and globally too."""
    fake = FakeTime()
    limits = [
        RateLimit(
            "chat", rate=per_chat, per_seconds=1.0, burst=burst, key=lambda d: d.outbound.chat_id
        ),
        RateLimit("bot", rate=10, per_seconds=1.0, burst=2, key=lambda d: "bot"),
    ]
    limiter = Limiter(limits, clock=fake.clock, sleep=fake.sleep)
    sent: list[tuple[float, str]] = []

    async def send_all() -> None:
        for chat in chats:
            await limiter.acquire(_delivery(chat))
            sent.append((fake.now, chat))

    asyncio.run(send_all())
    eps = 1e-6

    def check(times: list[float], rate: float, cap: int) -> None:
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                window = times[j] - start
                assert j - i + 1 <= cap + rate * window + eps

    for chat in set(chats):
        check([t for t, c in sent if c == chat], per_chat, burst)
    check([t for t, _ in sent], 10, 2)


@settings(max_examples=40, deadline=None)
@given(
    sends=st.lists(st.tuples(st.integers(1, 3), st.floats(0.0, 2.0)), min_size=1, max_size=30),
    burst=st.integers(1, 3),
)
def test_calls_that_reach_the_platform_late_still_keep_under_the_ceiling(
    sends: list[tuple[int, float]], burst: int
) -> None:
    """A call may reach the platform a while after its tokens were taken (the first
    call opens a connection, a busy process writes it late): the platform's bucket
    counts from when it arrived, so the limiter must count from no earlier."""
    fake = FakeTime()
    limiter = Limiter(
        [RateLimit("chat", rate=1, per_seconds=1.0, burst=burst, key=lambda d: d.outbound.chat_id)],
        clock=fake.clock,
        sleep=fake.sleep,
    )
    arrivals: list[float] = []

    async def send_all() -> None:
        for cost, lag in sends:
            async with limiter.slot(_delivery("a"), min(cost, burst)):
                fake.now += lag  # the calls are written, and arrive, at the end
                arrivals.extend([fake.now] * min(cost, burst))

    asyncio.run(send_all())
    for i, start in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            assert j - i + 1 <= burst + 1.0 * (arrivals[j] - start) + 1e-6


def _one_a_second(fake: FakeTime, burst: int) -> Limiter:
    return Limiter(
        [RateLimit("chat", rate=1, per_seconds=1.0, burst=burst, key=lambda d: d.outbound.chat_id)],
        clock=fake.clock,
        sleep=fake.sleep,
    )


def test_a_429_makes_the_limiter_hold_off() -> None:
    fake = FakeTime()
    limiter = _one_a_second(fake, burst=1)
    asyncio.run(limiter.acquire(_delivery("a")))
    limiter.penalise(_delivery("a"), 5.0)
    waited = asyncio.run(limiter.acquire(_delivery("a")))
    assert waited == pytest.approx(5.0)  # exactly retry_after, not a token more


def test_a_429_in_one_chat_holds_off_that_chat_only() -> None:
    """Telegram and Slack answer a chat's 429 for that chat: draining the bot-wide
    bucket too held every other customer's reply for the retry_after."""
    fake = FakeTime()
    limiter = Limiter(
        [
            RateLimit("chat", rate=1, per_seconds=1.0, burst=1, key=lambda d: d.outbound.chat_id),
            RateLimit(
                "bot", rate=30, per_seconds=1.0, burst=30, key=lambda d: "bot", scope="destination"
            ),
        ],
        clock=fake.clock,
        sleep=fake.sleep,
    )
    asyncio.run(limiter.acquire(_delivery("a")))
    limiter.penalise(_delivery("a"), 5.0, scope="chat")
    assert asyncio.run(limiter.acquire(_delivery("b"))) == 0.0
    assert asyncio.run(limiter.acquire(_delivery("a"))) == pytest.approx(5.0)
    # a 429 for the whole bot holds off every chat
    limiter.penalise(_delivery("a"), 5.0, scope="destination")
    assert asyncio.run(limiter.acquire(_delivery("c"))) == pytest.approx(5.0)


def test_reservations_claim_no_more_first_calls_than_can_go_now() -> None:
    fake = FakeTime()
    limiter = _one_a_second(fake, burst=3)
    claims = [limiter.reserve(_delivery("a")) for _ in range(3)]
    assert all(claims)
    assert limiter.reserve(_delivery("a")) is None  # a 4th would wait: left unclaimed
    assert limiter.held_for() == pytest.approx(1.0)
    assert limiter.held_for() == 0.0  # asked once, then forgotten
    assert limiter.reserve(_delivery("b")) is not None  # another chat is not held back
    # a claimed send takes its token when it is made, giving its claim back
    assert asyncio.run(limiter.acquire(_delivery("a"), reservation=claims[0])) == 0.0
    limiter.release(claims[0])  # twice is harmless
    assert limiter.reserve(_delivery("a")) is None  # 2 tokens left, 2 claims on them
    limiter.release(claims[1])  # that one will not be sent after all
    assert limiter.reserve(_delivery("a")) is not None
    fake.now += 1.0
    assert limiter.reserve(_delivery("a")) is not None  # the bucket refilled


def _group_limiter(fake: FakeTime, count: int = 20) -> Limiter:
    return Limiter(
        [
            RateLimit(
                "chat", rate=1, per_seconds=1.0, burst=3, key=lambda d: d.outbound.chat_id,
                serial=True,
            ),
            RateLimit(
                "group", rate=count, per_seconds=60.0, key=lambda d: "group", window=True
            ),
            RateLimit(
                "bot", rate=30, per_seconds=1.0, key=lambda d: "bot", scope="destination",
                window=True,
            ),
        ],
        clock=fake.clock,
        sleep=fake.sleep,
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    sends=st.lists(
        st.tuples(st.sampled_from("abcdef"), st.integers(1, 3), st.floats(0.0, 20.0)),
        min_size=1,
        max_size=80,
    ),
)
def test_a_window_limit_never_lets_more_than_its_count_into_any_period(
    sends: list[tuple[str, int, float]],
) -> None:
    """Telegram counts a group's messages over any 60 s: however the sends come (a
    message each, or an album of several; bursts, pauses), no 60 s holds more than
    20. A bucket of 20 refilling one per 3 s let 40 into the first minute."""
    fake = FakeTime()
    limiter = _group_limiter(fake)
    made: list[float] = []

    async def send_all() -> None:
        for chat, count, pause in sends:
            fake.now += pause
            async with limiter.call(limiter.keys(_delivery(chat)), count):
                made.extend([fake.now] * count)

    asyncio.run(send_all())
    for i, start in enumerate(made):
        inside = [t for t in made[i:] if t - start < 60.0]
        assert len(inside) <= 20


def test_a_window_lets_the_next_message_go_when_the_oldest_leaves_the_period() -> None:
    fake = FakeTime()
    limiter = _group_limiter(fake, count=3)

    async def send(chat: str) -> float:
        async with limiter.call(limiter.keys(_delivery(chat))) as made:
            return made.waited

    async def story() -> list[float]:
        waits = [await send("a")]
        fake.now += 10
        waits += [await send("b"), await send("c")]
        waits.append(await send("d"))  # the period holds 3: waits for the first to leave
        return waits

    assert asyncio.run(story()) == [0.0, 0.0, 0.0, pytest.approx(50.0, abs=0.01)]


def test_a_claim_is_made_only_when_all_its_messages_could_go_now() -> None:
    """A delivery of 3 messages is not claimed into a minute with room for 2: it
    would wait inside, holding a place customers' sends could use."""
    fake = FakeTime()
    limiter = _group_limiter(fake, count=4)
    asyncio.run(limiter.acquire(_delivery("a"), 2))
    assert limiter.reserve(_delivery("b"), 3) is None
    assert limiter.held_for() == pytest.approx(60.0, abs=0.01)
    assert limiter.reserve(_delivery("b"), 2) is not None
    fake.now += 61  # the first two have left the minute; two are claimed already
    assert limiter.reserve(_delivery("c"), 2) is not None


def test_a_429_is_read_as_the_chats_when_the_chat_was_busy_else_as_the_bots() -> None:
    """Telegram does not say what a 429 is about: a chat that had its burst is the
    likely reason, and only it waits; a 429 on a chat that had sent nothing lately
    can only be the bot's (its own limit, or another process sending as the bot),
    and so is one for a second chat right after another's."""
    fake = FakeTime()
    limiter = _group_limiter(fake)
    busy = limiter.keys(_delivery("busy"))

    async def sends(keys: tuple[tuple[str, str], ...], n: int) -> None:
        for _ in range(n):
            async with limiter.call(keys):
                pass

    asyncio.run(sends(busy, 3))
    assert limiter.scope_of(busy) == "chat"
    fake.now += 5  # long after: the chat was idle, the bot's 429 is the bot's
    quiet = limiter.keys(_delivery("quiet"))
    asyncio.run(sends(quiet, 1))
    assert limiter.scope_of(quiet) == "destination"
    fake.now += 5
    asyncio.run(sends(busy, 3))
    asyncio.run(sends(quiet, 3))
    assert limiter.scope_of(busy) == "chat"
    assert limiter.scope_of(quiet) == "destination"  # two chats within a second


def test_a_bot_wide_429_holds_every_chat_for_its_retry_after() -> None:
    fake = FakeTime()
    limiter = _group_limiter(fake)
    keys = limiter.keys(_delivery("a"))
    limiter.penalise_keys(keys, 7.0, "destination")
    assert asyncio.run(limiter.acquire(_delivery("elsewhere"))) == pytest.approx(7.0)


class TickingTime(FakeTime):
    """A clock that moves a millisecond each time it is read, as a real one does
    between two reads."""

    def clock(self) -> float:
        self.now += 0.001
        return self.now


def test_a_window_counts_a_call_from_when_it_ended() -> None:
    """The platform counts a call from its arrival, which may be well after the call
    was let go (a busy process, a slow connection): counted from before, the window
    frees its place early and the next call meets a 429. This happened with 100
    customers' greetings at once: 14 calls left the bot's window 30 ms early."""
    fake = TickingTime()
    limiter = _group_limiter(fake, count=1)

    async def story() -> float:
        async with limiter.call(limiter.keys(_delivery("a"))):
            fake.now += 5.0  # the call took 5 s to be made
        fake.now += 56.0  # 61 s after it was let go, 56 s after it ended
        async with limiter.call(limiter.keys(_delivery("b"))) as made:
            return made.waited

    assert asyncio.run(story()) == pytest.approx(4.0, abs=0.1)


@pytest.mark.parametrize("burst", [1, 3])
def test_a_refused_call_gives_back_its_place_but_not_the_429s_wait(burst: int) -> None:
    """A call the platform answered 429 did not count there, so its place comes back
    (``PacedCall.refused``); the wait the 429 asked for stays. Giving the place back
    after the hold-off undid it: the next call went at once and met a 429 again, for
    as long as the channel stayed busy (Slack, a long text's parts)."""
    fake = FakeTime()
    limiter = _one_a_second(fake, burst=burst)
    keys = limiter.keys(_delivery("a"))

    async def story() -> float:
        async with limiter.call(keys) as made:
            made.refused = True
            limiter.penalise_keys(keys, 5.0)
        async with limiter.call(keys) as made:
            return made.waited

    assert asyncio.run(story()) == pytest.approx(5.0, abs=0.01)
