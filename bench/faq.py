"""FAQ matching speed: questions per second against 500 entries, on one core.

    python -m bench.faq

Builds 500 entries from the evaluation set's 30 (bench/faq_set/faq.toml: each
copied with its example questions and answers varied, so the index is as large
and as varied as a real 500-entry FAQ would be) and times the set's 666
questions against it. Prints figures; asserts nothing.
"""

from __future__ import annotations

import platform
import random
import time
import tomllib
from pathlib import Path

from gateway.faq import Entry, Matcher, answers_of
from gateway.faq_eval import read_cases

SET = Path(__file__).resolve().parent / "faq_set"
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
    base = tomllib.loads((SET / "faq.toml").read_text(encoding="utf-8"))["faq"]["entries"]
    rng = random.Random(7)
    made = []
    for number in range(count):
        source = base[number % len(base)]

        def vary(text: str, number: int = number) -> str:
            return f"{text} {rng.choice(FILLERS)} {number}" if number >= len(base) else text

        made.append(
            Entry(
                f"{source['id']}-{number}",
                tuple(vary(q) for q in source["questions"]),
                tuple(source.get("keywords", ())),
                tuple(vary(a) for a in answers_of(source["answer"])),
            )
        )
    return made


def measure(rounds: int = 3, count: int = 500) -> dict[str, float]:
    """Questions per second against ``count`` entries (and the time to build the index)."""
    made = entries(count)
    started = time.perf_counter()
    matcher = Matcher(made)
    built = time.perf_counter() - started
    questions = [case.text for case in read_cases(SET / "questions.csv")]
    # the first pass meets every word for the first time (the misspelling lookups
    # are remembered after); the rounds after it are a gateway that has run a while
    started = time.perf_counter()
    for text in questions:
        matcher.match(text, limit=3)
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        for text in questions:
            matcher.match(text, limit=3)
    elapsed = time.perf_counter() - started
    total = rounds * len(questions)
    return {
        "entries": count,
        "phrasings": sum(len(e.questions) for e in made),
        "build_ms": built * 1000,
        "questions": total,
        "questions_per_s": total / elapsed,
        "first_pass_per_s": len(questions) / first,
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
    print(f"first pass (every word new): {r['first_pass_per_s']:,.0f} questions/s")


if __name__ == "__main__":
    main()
