"""Measuring an FAQ before it goes live: `gateway faq ask` and `gateway faq eval`."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.models import FaqSection
from gateway.faq import Match, Matcher, decide, word_count


@dataclass
class Report:
    threshold: float
    total: int = 0
    should_answer: int = 0
    answered: int = 0
    right: int = 0
    #: (question, expected id or "", what was answered, score)
    wrong: list[tuple[str, str, str, float]] = field(default_factory=list)
    missed: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.right / self.answered if self.answered else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.should_answer if self.should_answer else 1.0

    @property
    def answer_rate(self) -> float:
        return self.answered / self.total if self.total else 0.0

    def lines(self) -> list[str]:
        out = [
            f"{self.total} questions, threshold {self.threshold:g}",
            f"precision {self.precision:.3f}  (answers that were right: "
            f"{self.right}/{self.answered})",
            f"recall    {self.recall:.3f}  (questions with an answer that got it: "
            f"{self.right}/{self.should_answer})",
            f"answered  {self.answer_rate:.1%} of all questions",
        ]
        if self.wrong:
            out.append("wrong answers:")
            out += [
                f"  {q!r}: answered {got} ({score:.2f}), expected {exp or 'no answer'}"
                for q, exp, got, score in self.wrong
            ]
        return out


def read_cases(path: Path) -> list[tuple[str, str]]:
    """``text,expected`` rows; an empty expected means "should not answer"."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"text", "expected"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must be text,expected")
        return [(row["text"], (row["expected"] or "").strip()) for row in reader]


def evaluate(matcher: Matcher, section: FaqSection, cases: Iterable[tuple[str, str]]) -> Report:
    report = Report(section.threshold)
    for text, expected in cases:
        report.total += 1
        report.should_answer += bool(expected)
        found = matcher.match(text, limit=3)
        decision = decide(
            found, section.threshold, section.suggest_threshold, words=word_count(text)
        )
        best: Match | None = decision.answer or (found[0] if found else None)
        if best is not None and decision.answer is not None:
            report.answered += 1
            if best.entry_id == expected:
                report.right += 1
            else:
                report.wrong.append((text, expected, best.entry_id, best.score))
        elif expected:
            report.missed.append((text, expected, best.score if best else 0.0))
    return report
