"""The report for the terminal and for other tools: two narrow tables (counts, then
times) that fit an 100-column terminal, CSV for spreadsheets, JSON for scripts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.report import BUCKETS, Figures, Report
from gateway.status import humanize, table


def duration(seconds: float | None) -> str:
    return "–" if seconds is None else humanize(timedelta(seconds=round(seconds)))


def share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def csat(figures: Figures) -> str:
    average = figures.csat_average
    return "–" if average is None else f"{average:.2f} ({len(figures.csat)})"


Column = tuple[str, Callable[[Figures], str]]

COUNTS: tuple[Column, ...] = (
    ("opened", lambda f: str(f.opened)),
    ("resolved", lambda f: str(f.resolved)),
    ("FAQ answered", lambda f: share(f.faq_share)),
    ("solved by FAQ", lambda f: str(f.solved_by_faq)),
    ("SLA breaches", lambda f: str(f.breaches)),
    ("CSAT", csat),
)
TIMES: tuple[Column, ...] = (
    ("1st resp", lambda f: duration(f.median("first_response"))),
    ("p90", lambda f: duration(f.p90("first_response"))),
    ("in bh", lambda f: duration(f.median("first_response_business"))),
    ("resolution", lambda f: duration(f.median("resolution"))),
    ("p90", lambda f: duration(f.p90("resolution"))),
    ("in bh", lambda f: duration(f.median("resolution_business"))),
)
COLUMNS = COUNTS + TIMES


def rows(groups: dict[str, Figures], total: Figures | None, columns: tuple[Column, ...]):
    out = [[name, *(column(figures) for _, column in columns)] for name, figures in groups.items()]
    if total is not None:
        out.append(["total", *(column(total) for _, column in columns)])
    return out


def local_date(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


def period(report: Report) -> str:
    first = local_date(report.since, report.zone)
    last = local_date(report.until - timedelta(microseconds=1), report.zone)
    return f"{first} .. {last} ({report.zone})"


def render_text(report: Report) -> str:
    title = f"Support report {period(report)}, by {report.by}"
    if report.tag:
        title += f", tag {report.tag}"
    lines = [title, ""]
    lines += [
        table([report.by, *(n for n, _ in COUNTS)], rows(report.groups, report.total, COUNTS))
    ]
    lines += ["", "Times (medians and 90th percentiles):"]
    lines += [table([report.by, *(n for n, _ in TIMES)], rows(report.groups, report.total, TIMES))]
    if report.by_tag and report.by != "tag":
        lines += ["", "By tag (a conversation counts under each of its tags):"]
        lines += [table(["tag", *(n for n, _ in COUNTS)], rows(report.by_tag, None, COUNTS))]
    if report.comments:
        lines += ["", "CSAT comments:"]
        lines += [
            f"  #{c.conversation_id} {local_date(c.at, report.zone)} {c.score}/5 {c.operator}: "
            + " ".join(c.text.split())
            for c in report.comments
        ]
    lines += [
        "",
        "1st resp: the first operator reply the customer received; automatic answers do not count.",
        "in bh: counted in business hours, for waits that overlapped them.",
    ]
    return "\n".join(lines)


def _numbers(figures: Figures) -> dict[str, Any]:
    """A group's figures as numbers (seconds, shares from 0 to 1), None where none."""
    return {
        "opened": figures.opened,
        "resolved": figures.resolved,
        "first_response_median_s": figures.median("first_response"),
        "first_response_p90_s": figures.p90("first_response"),
        "first_response_business_median_s": figures.median("first_response_business"),
        "resolution_median_s": figures.median("resolution"),
        "resolution_p90_s": figures.p90("resolution"),
        "resolution_business_median_s": figures.median("resolution_business"),
        "faq_answered": figures.faq_answered,
        "faq_share": figures.faq_share,
        "solved_by_faq": figures.solved_by_faq,
        "sla_breaches": figures.breaches,
        "csat_average": figures.csat_average,
        "csat_count": len(figures.csat),
    }


def render_csv(report: Report) -> str:
    """One row per group, then the total, then one per tag (``grouping`` says
    which): figures as numbers a spreadsheet can sum."""
    out = io.StringIO()
    header = list(_numbers(Figures()))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["grouping", "group", *header])
    for name, figures in report.groups.items():
        writer.writerow([report.by, name, *_cells(figures)])
    writer.writerow(["total", "total", *_cells(report.total)])
    if report.by != "tag":
        for name, figures in report.by_tag.items():
            writer.writerow(["tag", name, *_cells(figures)])
    return out.getvalue()


def _cells(figures: Figures) -> list[str]:
    return [_cell(value) for value in _numbers(figures).values()]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def render_json(report: Report) -> str:
    data = {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "zone": report.zone,
        "by": report.by,
        "tag": report.tag,
        "total": _numbers(report.total),
        "groups": {name: _numbers(f) for name, f in report.groups.items()},
        "by_tag": {name: _numbers(f) for name, f in report.by_tag.items()},
        "opened_by_hour": report.by_hour,
        "first_response_histogram": {
            label: count
            for (_, label), count in zip(BUCKETS, report.response_histogram, strict=True)
        },
        "csat_by_operator": {
            name: {"average": average, "count": count}
            for name, (average, count) in report.csat_by_operator.items()
        },
        "csat_comments": [
            {
                "conversation": c.conversation_id,
                "at": c.at.isoformat(),
                "score": c.score,
                "operator": c.operator,
                "comment": c.text,
            }
            for c in report.comments
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=1)
