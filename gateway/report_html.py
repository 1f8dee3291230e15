"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing
fetched, so it opens in any browser with no network (and can be mailed around).
Laid out for a desktop and a phone alike: charts scale to the width, tables scroll
sideways on their own rather than pushing the page wider."""

from __future__ import annotations

import math
from html import escape

from gateway.report import BUCKETS, Figures, Report
from gateway.report_text import COUNTS, TIMES, Column, csat, duration, local_date, period, share

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
.muted { color: #667085; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr));
         gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid #e4e7ec; border-radius: 8px; padding: .6rem .9rem; }
.card b { display: block; font-size: 1.35rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e7ec; padding: .35rem .5rem; text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #98a2b3; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 460px), 1fr));
          gap: 1.5rem; }
.charts section { min-width: 0; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #344054; }
.comments { padding-left: 1.2rem; }
.comments li { margin: .4rem 0; }
@media (max-width: 600px) { body { margin: 1rem auto; } h1 { font-size: 1.3rem; } }
"""

BLUE, GREEN, AMBER = "#4c78a8", "#54a24b", "#e8a33d"
#: how wide a label's character is drawn, roughly, at the charts' 11 px
CHAR_WIDTH = 7.0


def ticks(peak: float, wanted: int = 4) -> list[float]:
    """Round values from 0 to at least ``peak``, about ``wanted`` steps apart: 1, 2
    or 5 times a power of ten (whole numbers: the charts count conversations)."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / wanted
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0)
    return [step * i for i in range(math.ceil(peak / step) + 1)]


def _vertical_bars(labels: list[str], values: list[float], color: str, *, every: int = 1) -> str:
    width, height, left, bottom, top = 520, 236, 40, 44, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    marks = ticks(max(values, default=0))
    peak = marks[-1]
    step = plot_w / max(1, len(values))
    # labels wider than their bar's room go on two alternating rows
    widest = max((len(label) for label in labels[::every]), default=0) * CHAR_WIDTH
    staggered = widest > step * every - 8
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img">']
    for mark in marks:
        y = top + plot_h - plot_h * mark / peak
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" '
            f'stroke="{"#98a2b3" if mark == 0 else "#eaecf0"}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{mark:g}</text>'
        )
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / peak
        x = left + index * step + step * 0.15
        y = top + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{bar_h:.1f}" '
            f'fill="{color}"><title>{escape(label)}: {value:g}</title></rect>'
        )
        if index % every == 0:
            row = (index // every) % 2 if staggered else 0
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{top + plot_h + 16 + row * 14}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _horizontal_bars(
    labels: list[str], values: list[float], notes: list[str], color: str, *, scale: float
) -> str:
    row, left, width = 26, 150, 520
    height = max(row * len(labels) + 10, 40)
    plot_w = width - left - 90
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img">']
    if not labels:
        parts.append('<text x="10" y="24">no ratings in this period</text>')
    for index, (label, value, note) in enumerate(zip(labels, values, notes, strict=True)):
        y = 5 + index * row
        bar_w = plot_w * (value / scale if scale else 0)
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label[:22])}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{bar_w:.1f}" height="{row - 8}" '
            f'fill="{color}"><title>{escape(label)}: {escape(note)}</title></rect>'
            f'<text x="{left + bar_w + 6:.1f}" y="{y + 15}">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _card(label: str, value: str) -> str:
    return (
        f'<div class="card"><span class="muted">{escape(label)}</span><b>{escape(value)}</b></div>'
    )


def _table(
    first: str, groups: dict[str, Figures], total: Figures | None, columns: tuple[Column, ...]
) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in (first, *(n for n, _ in columns)))
    lines = [(name, figures, False) for name, figures in groups.items()]
    if total is not None:
        lines.append(("total", total, True))
    body = "".join(
        ('<tr class="total">' if is_total else "<tr>")
        + f"<td>{escape(name)}</td>"
        + "".join(f"<td>{escape(column(figures))}</td>" for _, column in columns)
        + "</tr>"
        for name, figures, is_total in lines
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _comments(report: Report) -> str:
    if not report.comments:
        return '<p class="muted">No comments in this period.</p>'
    items = "".join(
        f"<li><b>{c.score}/5</b> · #{c.conversation_id} · {escape(c.operator)} · "
        f'<span class="muted">{local_date(c.at, report.zone)}</span><br>{escape(c.text)}</li>'
        for c in report.comments
    )
    return f'<ul class="comments">{items}</ul>'


def render_html(report: Report) -> str:
    total = report.total
    cards = "".join(
        [
            _card("Conversations opened", str(total.opened)),
            _card("Resolved", str(total.resolved)),
            _card("First response, median", duration(total.median("first_response"))),
            _card("… in business hours", duration(total.median("first_response_business"))),
            _card("Resolution, median", duration(total.median("resolution"))),
            _card("Answered by the FAQ", share(total.faq_share)),
            _card("SLA breaches", str(total.breaches)),
            _card("CSAT", csat(total)),
        ]
    )
    histogram = _vertical_bars(
        [label for _, label in BUCKETS], [float(v) for v in report.response_histogram], BLUE
    )
    hours = _vertical_bars(
        [f"{h:02d}" for h in range(24)], [float(v) for v in report.by_hour], GREEN, every=3
    )
    csat_chart = _horizontal_bars(
        list(report.csat_by_operator),
        [avg for avg, _ in report.csat_by_operator.values()],
        [f"{avg:.2f} ({count})" for avg, count in report.csat_by_operator.values()],
        AMBER,
        scale=5,
    )
    by = escape(report.by)
    tag_tables = ""
    if report.by_tag and report.by != "tag":
        tag_tables = (
            "<h2>By tag</h2>"
            '<div class="muted">a conversation counts under each of its tags</div>'
            + _table("tag", report.by_tag, None, COUNTS)
        )
    subtitle = escape(period(report).replace("..", "–")) + f" · by {by}"
    if report.tag:
        subtitle += f" · tag {escape(report.tag)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Support report {escape(period(report))}</title>
<style>{CSS}</style></head>
<body>
<h1>Support report</h1>
<div class="muted">{subtitle}</div>
<div class="cards">{cards}</div>
<div class="charts">
<section><h2>First response time</h2>
<div class="muted">conversations by time to the first operator reply the customer received</div>
{histogram}</section>
<section><h2>Volume by hour of day</h2>
<div class="muted">conversations opened, by hour ({escape(report.zone)})</div>
{hours}</section>
<section><h2>CSAT by operator</h2>
<div class="muted">average score 1–5 (number of ratings), credited to who had the
conversation when it was closed</div>
{csat_chart}</section>
</div>
<h2>By {by}</h2>
{_table(report.by, report.groups, total, COUNTS)}
<h2>Times by {by}</h2>
<div class="muted">medians and 90th percentiles; "in bh": business hours only</div>
{_table(report.by, report.groups, total, TIMES)}
{tag_tables}
<h2>CSAT comments</h2>
{_comments(report)}
<p class="muted">First response: the first operator reply the customer received, credited to
whoever wrote it; greetings and FAQ answers do not count. Resolution: credited to whoever
closed the conversation. Business hours: waits wholly outside them are left out. Percentiles
interpolate between ranks.</p>
</body></html>
"""
