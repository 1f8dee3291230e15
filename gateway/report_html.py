"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing
fetched, so it opens in any browser with no network (and can be mailed around)."""

from __future__ import annotations

from datetime import timedelta
from html import escape

from gateway.report import BUCKETS, COLUMNS, Report, duration, local_date, rows, share

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
.muted { color: #667085; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid #e4e7ec; border-radius: 8px; padding: .6rem .9rem; min-width: 9rem; }
.card b { display: block; font-size: 1.35rem; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e7ec; padding: .35rem .5rem; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #98a2b3; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1.5rem; }
svg text { font: 11px system-ui, sans-serif; fill: #344054; }
"""

BLUE, GREEN, AMBER = "#4c78a8", "#54a24b", "#e8a33d"


def _vertical_bars(labels: list[str], values: list[float], color: str, *, every: int = 1) -> str:
    width, height, left, bottom, top = 520, 220, 34, 30, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(values) if values and max(values) > 0 else 1
    step = plot_w / max(1, len(values))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        'stroke="#98a2b3"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak:g}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / peak
        x = left + index * step + step * 0.15
        y = top + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{bar_h:.1f}" '
            f'fill="{color}"><title>{escape(label)}: {value:g}</title></rect>'
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{top + plot_h + 16}" '
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
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img">']
    if not labels:
        parts.append('<text x="10" y="24">no data in this period</text>')
    for index, (label, value, note) in enumerate(zip(labels, values, notes, strict=True)):
        y = 5 + index * row
        bar_w = plot_w * (value / scale if scale else 0)
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label[:24])}</text>'
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


def render_html(report: Report) -> str:
    first = local_date(report.since, report.zone)
    last = local_date(report.until - timedelta(microseconds=1), report.zone)
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
            _card(
                "CSAT",
                f"{total.csat_average:.2f} ({len(total.csat)})"
                if total.csat_average is not None
                else "-",
            ),
        ]
    )
    head = "".join(f"<th>{escape(name)}</th>" for name in (report.by, *(n for n, _ in COLUMNS)))
    table_rows = rows(report)
    body = "".join(
        ('<tr class="total">' if number == len(table_rows) - 1 else "<tr>")
        + "".join(f"<td>{escape(cell)}</td>" for cell in cells)
        + "</tr>"
        for number, cells in enumerate(table_rows)
    )
    histogram = _vertical_bars(
        [label for _, label in BUCKETS], [float(v) for v in report.response_histogram], BLUE
    )
    hours = _vertical_bars(
        [f"{h:02d}" for h in range(24)], [float(v) for v in report.by_hour], GREEN, every=3
    )
    csat_names = list(report.csat_by_operator)
    csat = _horizontal_bars(
        csat_names,
        [avg for avg, _ in report.csat_by_operator.values()],
        [f"{avg:.2f} ({count})" for avg, count in report.csat_by_operator.values()],
        AMBER,
        scale=5,
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Support report {first} – {last}</title>
<style>{CSS}</style></head>
<body>
<h1>Support report</h1>
<div class="muted">{first} – {last} ({escape(report.zone)}) · by {escape(report.by)}</div>
<div class="cards">{cards}</div>
<div class="charts">
<section><h2>First response time</h2>
<div class="muted">conversations by time to the first operator reply the customer received</div>
{histogram}</section>
<section><h2>Volume by hour of day</h2>
<div class="muted">conversations opened, by hour ({escape(report.zone)})</div>
{hours}</section>
<section><h2>CSAT by operator</h2>
<div class="muted">average score 1–5 (number of ratings)</div>
{csat}</section>
</div>
<h2>By {escape(report.by)}</h2>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p class="muted">(bh): counted in business hours. First response: the first operator reply
the customer received; greetings and FAQ answers do not count. Percentiles interpolate
between ranks.</p>
</body></html>
"""
