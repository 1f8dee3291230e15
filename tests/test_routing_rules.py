"""The routing rules on their own, over generated teams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.config import OperatorConfig
from gateway.routing import Candidate, choose

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def teams(draw) -> list[Candidate]:
    size = draw(st.integers(1, 8))
    out = []
    for i in range(size):
        max_chats = draw(st.integers(1, 5))
        idle = draw(st.none() | st.integers(0, 1000))
        out.append(
            Candidate(
                operator=OperatorConfig(
                    id=f"op{i}",
                    name=f"Op {i}",
                    languages=draw(st.sampled_from([[], ["en"], ["ru"]])),
                ),
                presence=draw(st.sampled_from(["online", "online", "away", "offline"])),
                load=draw(st.integers(0, max_chats)),
                max_chats=max_chats,
                last_assigned_at=None if idle is None else BASE + timedelta(seconds=idle),
                order=i,
            )
        )
    return out


@given(
    teams(),
    st.sampled_from(["least_busy", "round_robin"]),
    st.sampled_from([None, "en", "ru"]),
    st.booleans(),
)
def test_the_chosen_operator_is_online_and_has_room(team, strategy, language, match) -> None:
    chosen = choose(strategy, team, language, match_language=match)
    available = [c for c in team if c.presence == "online" and c.load < c.max_chats]
    someone_speaks = any(language in c.operator.languages for c in team)
    if match and language and someone_speaks:
        # the conversation waits for a speaker rather than go to someone who is not
        available = [
            c for c in available if not c.operator.languages or language in c.operator.languages
        ]
    if chosen is None:
        assert not available
        return
    assert chosen in available


@given(teams())
def test_least_busy_takes_the_lowest_load_then_the_longest_idle(team) -> None:
    chosen = choose("least_busy", team, None, match_language=False)
    available = [c for c in team if c.presence == "online" and c.load < c.max_chats]
    if not available:
        assert chosen is None
        return
    assert chosen is not None
    assert chosen.load == min(c.load for c in available)
    ties = [c for c in available if c.load == chosen.load]
    never = [c for c in ties if c.last_assigned_at is None]
    if never:
        assert chosen.last_assigned_at is None
    else:
        assert chosen.last_assigned_at == min(c.last_assigned_at for c in ties)


@given(teams(), st.integers(0, 7))
def test_the_previous_operator_wins_when_available(team, index) -> None:
    preferred = team[index % len(team)]
    chosen = choose("least_busy", team, None, match_language=False, preferred=preferred.operator.id)
    if preferred.presence == "online" and preferred.load < preferred.max_chats:
        assert chosen is preferred


@given(teams())
def test_manual_never_assigns_by_itself(team) -> None:
    assert choose("manual", team, None, match_language=False) is None
