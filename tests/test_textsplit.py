"""Long texts are split at the gentlest boundary, never cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.textsplit import split_text


def test_paragraphs_then_sentences_then_words() -> None:
    text = "First paragraph.\n\nSecond one is here. It has two sentences."
    assert split_text(text, 30) == [
        "First paragraph.",
        "Second one is here.",
        "It has two sentences.",
    ]
    assert split_text("alpha beta gamma", 11) == ["alpha beta", "gamma"]
    assert split_text("x" * 10, 4) == ["xxxx", "xxxx", "xx"]
    assert split_text("short", 4096) == ["short"]


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=3000), st.integers(20, 500))
def test_nothing_is_lost_and_every_part_fits(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    squash = "".join(text.split())
    assert "".join("".join(p.split()) for p in parts) == squash
