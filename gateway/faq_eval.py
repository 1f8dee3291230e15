"""Measuring an FAQ before it goes live: `gateway faq eval`.

An admin writes down questions customers really asked, each with the entry that
should answer it (or none), and sees per question what the FAQ would do, how sure
it was and by how far; then precision and recall at several thresholds, and the
lowest threshold that keeps the precision they ask for. Precision is the share of
automatic answers that were right; recall, the share of answerable questions that
got their answer; "no-answer answered", the share of questions that should get
none (small talk, near misses) but got one.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.config.replies import FaqSection
from gateway.faq import AMBIGUITY_MARGIN, Matcher, answers, decide, margin, sure_enough

#: the thresholds the table shows
THRESHOLDS = tuple(round(0.2 + 0.05 * i, 2) for i in range(14))


@dataclass(frozen=True)
class Case:
    text: str
    expected: str  # "" when no entry should answer
    language: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Outcome:
    case: Case
    best: str  # the best entry, "" when nothing matched at all
    score: float
    margin: float
    answered: str  # the entry answered at the configured threshold, "" for none
    offered: tuple[str, ...]
    sure: bool  # the best match shares enough words to be answered at all

    @property
    def right(self) -> bool:
        return bool(self.answered) and self.answered == self.case.expected


@dataclass(frozen=True)
class Figures:
    questions: int
    answerable: int
    answered: int
    right: int
    no_answer: int
    no_answer_answered: int

    @property
    def precision(self) -> float:
        return self.right / self.answered if self.answered else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.answerable if self.answerable else 1.0

    @property
    def false_rate(self) -> float:
        """The share of should-not-answer questions that got an answer."""
        return self.no_answer_answered / self.no_answer if self.no_answer else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "no_answer_answered_rate": round(self.false_rate, 4),
        }


def read_cases(path: Path) -> list[Case]:
    """CSV rows ``text,expected`` (and optionally ``language``, ``kind``, for figures per
    group); an empty expected means "should not answer"."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"text", "expected"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: the header must be text,expected (language,kind optional)")
        return [
            Case(
                row["text"] or "",
                (row["expected"] or "").strip(),
                (row.get("language") or "").strip(),
                (row.get("kind") or "").strip(),
            )
            for row in reader
        ]


def unknown_ids(cases: Iterable[Case], section: FaqSection) -> list[str]:
    """Expected ids the FAQ has no (enabled) entry for: a typo in the set, or a stale one."""
    known = {e.id for e in section.entries if e.enabled}
    return sorted({c.expected for c in cases if c.expected and c.expected not in known})


def outcomes(matcher: Matcher, section: FaqSection, cases: Iterable[Case]) -> list[Outcome]:
    out = []
    for case in cases:
        found = matcher.match(case.text, limit=3)
        decision = decide(found, section.threshold, section.suggest_threshold)
        out.append(
            Outcome(
                case,
                found[0].entry_id if found else "",
                found[0].score if found else 0.0,
                round(margin(found), 4),
                decision.answer.entry_id if decision.answer else "",
                tuple(m.entry_id for m in decision.offer),
                bool(found) and sure_enough(found[0]),
            )
        )
    return out


def answered_at(outcome: Outcome, threshold: float) -> str:
    """The entry this question would get at ``threshold``."""
    return outcome.best if answers(outcome.score, outcome.margin, outcome.sure, threshold) else ""


def figures(results: Sequence[Outcome], threshold: float | None = None) -> Figures:
    """The figures at the configured threshold, or at ``threshold`` when given."""
    answered = right = no_answer_answered = 0
    for outcome in results:
        got = outcome.answered if threshold is None else answered_at(outcome, threshold)
        if got:
            answered += 1
            right += got == outcome.case.expected
            no_answer_answered += not outcome.case.expected
    no_answer = sum(not o.case.expected for o in results)
    return Figures(
        len(results), len(results) - no_answer, answered, right, no_answer, no_answer_answered
    )


def by_group(results: Sequence[Outcome], key: str) -> dict[str, Figures]:
    """Figures per ``language`` or ``kind`` of the cases."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in results:
        groups[getattr(outcome.case, key) or "-"].append(outcome)
    return {name: figures(group) for name, group in sorted(groups.items())}


def threshold_for(results: Sequence[Outcome], precision: float) -> float | None:
    """The lowest threshold (in steps of 0.01) whose answers are at least ``precision``
    right, or None when none is."""
    for step in range(1, 101):
        threshold = step / 100
        found = figures(results, threshold)
        if found.answered and found.precision >= precision:
            return threshold
    return None


def report_lines(
    results: Sequence[Outcome],
    section: FaqSection,
    precision: float | None,
    *,
    wrong_only: bool = False,
) -> list[str]:
    """The text `gateway faq eval` prints: a line per question, then the figures."""
    lines = [f"{'verdict':<7} {'score':>5} {'margin':>6}  {'expected':<22} {'answer':<22} text"]
    for o in results:
        if wrong_only and (o.right or not (o.answered or o.case.expected)):
            continue
        if o.answered:
            verdict = "right" if o.right else "WRONG"
        else:
            verdict = "missed" if o.case.expected else "silent"
        shown = o.answered or (f"({o.best})" if o.best else "-")
        lines.append(
            f"{verdict:<7} {o.score:5.2f} {o.margin:6.2f}  {o.case.expected or '-':<22} "
            f"{shown:<22} {o.case.text[:70]!r}"
        )
    lines.append("")
    total = figures(results)
    lines += [
        f"{total.questions} questions ({total.answerable} with an answer, "
        f"{total.no_answer} without), threshold {section.threshold:g}, "
        f"margin {AMBIGUITY_MARGIN:g}",
        f"precision {total.precision:.3f}  (answers that were right: "
        f"{total.right}/{total.answered})",
        f"recall    {total.recall:.3f}  (answerable questions that got their answer: "
        f"{total.right}/{total.answerable})",
        f"no-answer answered {total.false_rate:.1%}  "
        f"({total.no_answer_answered}/{total.no_answer})",
        "",
        f"{'threshold':>9} {'answered':>8} {'precision':>9} {'recall':>6} "
        f"{'no-answer answered':>18}",
    ]
    for threshold in THRESHOLDS:
        f = figures(results, threshold)
        lines.append(
            f"{threshold:>9.2f} {f.answered:>8} {f.precision:>9.3f} {f.recall:>6.3f} "
            f"{f.false_rate:>18.1%}"
        )
    for key in ("language", "kind"):
        groups = by_group(results, key)
        if len(groups) > 1:
            lines += ["", f"by {key}:"]
            for name, f in groups.items():
                lines.append(
                    f"  {name:<12} {f.questions:>4} questions  precision {f.precision:.3f}  "
                    f"recall {f.recall:.3f}  no-answer answered {f.false_rate:.1%}"
                )
    if precision is not None:
        chosen = threshold_for(results, precision)
        lines.append("")
        if chosen is None:
            lines.append(f"no threshold keeps precision at {precision:g} on this set")
        else:
            f = figures(results, chosen)
            lines.append(
                f"threshold {chosen:g} keeps precision at {precision:g} "
                f"(precision {f.precision:.3f}, recall {f.recall:.3f}, no-answer answered "
                f"{f.false_rate:.1%})"
            )
    return lines


def report_json(
    results: Sequence[Outcome], section: FaqSection, precision: float | None
) -> dict[str, object]:
    """What `gateway faq eval --json` prints: the same as the text, for a program."""
    chosen = threshold_for(results, precision) if precision is not None else None
    return {
        "threshold": section.threshold,
        "margin": AMBIGUITY_MARGIN,
        "figures": figures(results).as_dict(),
        "thresholds": [{"threshold": t, **figures(results, t).as_dict()} for t in THRESHOLDS],
        "by_language": {k: f.as_dict() for k, f in by_group(results, "language").items()},
        "by_kind": {k: f.as_dict() for k, f in by_group(results, "kind").items()},
        "precision_target": precision,
        "threshold_for_target": chosen,
        "questions": [
            {
                "text": o.case.text,
                "expected": o.case.expected or None,
                "language": o.case.language or None,
                "kind": o.case.kind or None,
                "answered": o.answered or None,
                "offered": list(o.offered),
                "best": o.best or None,
                "score": o.score,
                "margin": o.margin,
                "right": o.right if o.answered else None,
            }
            for o in results
        ],
    }
