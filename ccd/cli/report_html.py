"""`ccctl report --html`: the run report as one self-contained page.

Inline CSS and an inline SVG timeline (`ccd.report.gantt`'s layout), no script, no
font, no link to anything: the file opens the same on a laptop without network,
attached to a mail, or years later.  The markup is XHTML-clean (every element
closed, everything escaped), so it also reads as XML; the SVG has no ``xmlns``,
which HTML does not need and which would be the page's only URL.  Each bar's
``<title>`` is its tooltip.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ccd import __version__
from ccd.cli.format import DEFAULT_COLOUR, STATE_COLOURS
from ccd.report.gantt import Gantt, layout
from ccd.report.text import (
    ATTEMPT_HEADERS,
    GROUP_HEADERS,
    GROUP_RIGHT,
    RIGHT,
    SIZING_HINT,
    attempt_cells,
    group_cells,
    summary,
    total_cells,
)

#: the timeline's plot, its label column and its axis, in pixels
PLOT_WIDTH = 900
LABEL_WIDTH = 220
AXIS_HEIGHT = 22
LABEL_CHARS = 32

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:left;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}td.n,th.n{text-align:right}
tr.total td{font-weight:600;border-top:2px solid #999}
.hint{max-width:60em;color:#444}.legend span{margin-right:1em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .axis{stroke:#ddd}
svg .band{stroke:#bbb}svg .wait{fill:#d0d0d0}
footer{margin-top:2em;color:#888;font-size:.85em}
"""


def _state_style() -> str:
    # the default first: a state's rule of the same weight comes later and wins
    states = "".join(
        f".s-{state}{{fill:{colour}}}i.s-{state}{{background:{colour}}}"
        for state, colour in STATE_COLOURS.items()
    )
    return f".bar{{fill:{DEFAULT_COLOUR}}}{states}"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: frozenset[str],
    total: Sequence[str] | None = None,
) -> str:
    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="n">{escape(c)}</{tag}>' if h in right else f"<{tag}>{escape(c)}</{tag}>"
            for h, c in zip(headers, row, strict=True)
        )

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    if total is not None:
        body += f'<tr class="total">{cells(total, "td")}</tr>'
    return f"<table><thead><tr>{cells(headers, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def _label(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def timeline_svg(gantt: Gantt) -> str:
    """The timeline: one ``<rect class="bar …">`` per attempt, a band per job group."""
    lane = gantt.lane_height
    height = AXIS_HEIGHT + gantt.lanes * lane + 4
    width = LABEL_WIDTH + PLOT_WIDTH + 20
    scale = PLOT_WIDTH / gantt.span if gantt.span else 0.0
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for at, text in gantt.ticks:
        x = LABEL_WIDTH + at * scale
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height}"/>')
        parts.append(f'<text x="{x + 2:.1f}" y="11">{escape(text)}</text>')
    for band in gantt.bands:
        y = AXIS_HEIGHT + band.first_lane * lane
        parts.append(f'<line class="band" x1="0" y1="{y}" x2="{width}" y2="{y}"/>')
        text_y = y + min(band.lanes * lane, lane + 12) / 2 + 4
        if band.lanes * lane >= 9:  # a label fits
            parts.append(f'<text x="2" y="{text_y:.1f}">{escape(_label(band.label))}</text>')
    for bar in gantt.bars:
        y = AXIS_HEIGHT + bar.lane * lane + (1 if lane > 4 else 0)
        h = max(1, lane - (2 if lane > 4 else 0))
        if bar.queued is not None and bar.queued < bar.begin:
            qx, qw = LABEL_WIDTH + bar.queued * scale, (bar.begin - bar.queued) * scale
            parts.append(
                f'<rect class="wait" x="{qx:.1f}" y="{y + h / 3:.1f}" '
                f'width="{max(qw, 0.5):.1f}" height="{max(1, h / 3):.1f}"/>'
            )
        x, w = LABEL_WIDTH + bar.begin * scale, max(1.0, (bar.finish - bar.begin) * scale)
        parts.append(
            f'<rect class="bar s-{escape(bar.state)}" x="{x:.1f}" y="{y}" width="{w:.1f}" '
            f'height="{h}"><title>{escape(bar.title)}</title></rect>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(gantt: Gantt) -> str:
    states = sorted({bar.state for bar in gantt.bars})
    items = "".join(f'<span><i class="s-{escape(s)}"></i>{escape(s)}</span>' for s in states)
    if any(bar.queued is not None for bar in gantt.bars):
        items += '<span><i style="background:#d0d0d0"></i>waiting in the batch queue</span>'
    return f'<p class="legend">{items}</p>'


def report_html(report: Mapping[str, Any], now: float | None = None) -> str:
    """The whole page of one report (the API's JSON)."""
    now = time.time() if now is None else now
    wf = report["workflow"]
    gantt = layout(report["attempts"], float(report.get("generated") or now))
    attempts = [attempt_cells(entry) for entry in report["attempts"]]
    groups = [group_cells(group) for group in report["groups"]]
    made = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    title = f"ccd report: {wf.get('name')} ({wf.get('id')})"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>',
            f"<title>{escape(title)}</title>",
            f"<style>{_STYLE}{_state_style()}</style></head><body>",
            f"<h1>{escape(str(wf.get('name')))}</h1>",
            f"<p>{escape(summary(report))}</p>",
            "<h2>Timeline</h2>",
            timeline_svg(gantt),
            _legend(gantt),
            "<h2>Sizing</h2>",
            f'<p class="hint">{escape(SIZING_HINT)}</p>',
            _table(GROUP_HEADERS, groups, GROUP_RIGHT),
            "<h2>Attempts</h2>",
            _table(ATTEMPT_HEADERS, attempts, RIGHT, total_cells(report["totals"])),
            f"<footer>ccd {escape(__version__)}, {escape(made)}</footer>",
            "</body></html>\n",
        ]
    )
