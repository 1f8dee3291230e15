"""FAQ matching speed: questions per second against 500 entries, on one core.

    python -m bench.faq

Builds 500 entries from the test fixture's 22 (each copied with its phrasings
varied, so the index is as large and as varied as a real 500-entry FAQ would be)
and times the test fixture's 207 questions against it. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import platform
import random
import time
import tomllib
from pathlib import Path

from gateway.faq import Entry, Matcher
from gateway.faq_eval import read_cases

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
FILLERS = [
    "please",
    "quickly",
    "today",
    "again",
    "now",
    "срочно",
    "сегодня",
    "ще",
    "знову",
    "опять",
]


def entries(count: int) -> list[Entry]:
    base = tomllib.loads((FIXTURES / "faq.toml").read_text())["faq"]["entries"]
    rng = random.Random(7)
    made = []
    for number in range(count):
        source = base[number % len(base)]
        questions = tuple(
            f"{q} {rng.choice(FILLERS)} {number}" if number >= len(base) else q
            for q in source["questions"]
        )
        made.append(Entry(f"{source['id']}-{number}", questions, tuple(source.get("keywords", ()))))
    return made


def measure(rounds: int = 5) -> dict[str, float]:
    """Questions per second against 500 entries (and the time to build the index)."""
    started = time.perf_counter()
    matcher = Matcher(entries(500))
    built = time.perf_counter() - started
    questions = [text for text, _ in read_cases(FIXTURES / "faq_eval.csv")]
    started = time.perf_counter()
    for _ in range(rounds):
        for text in questions:
            matcher.match(text, limit=3)
    elapsed = time.perf_counter() - started
    total = rounds * len(questions)
    return {
        "entries": 500,
        "phrasings": sum(len(e.questions) for e in entries(500)),
        "build_ms": built * 1000,
        "questions": total,
        "questions_per_s": total / elapsed,
        "us_per_question": elapsed / total * 1e6,
    }


def main() -> None:
    r = measure()
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"index: {r['entries']} entries, {r['phrasings']:.0f} phrasings, "
        f"built in {r['build_ms']:.0f} ms"
    )
    print(f"matching: {r['questions']:.0f} questions = {r['questions_per_s']:,.0f} questions/s")
    print(f"per question: {r['us_per_question']:.0f} µs")


if __name__ == "__main__":
    main()
