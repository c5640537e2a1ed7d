"""How `ccctl` words things: the state palette, durations, one-line text, the summary
line, and the one description of an event that `events`, `watch` and `cancel` print.

Stdlib only: every command imports this, and the client must start fast.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ccd.report.units import kib_text, seconds_text

#: One palette for every view: terminal text and Graphviz fills (hex works in both).
STATE_COLOURS: dict[str, str] = {
    "pending": "#b0b0b0",
    "queued": "#4db6ac",
    "running": "#42a5f5",
    "succeeded": "#66bb6a",
    "failed": "#ef5350",
    "timed_out": "#ffa726",
    "cancelled": "#ab47bc",
    "skipped": "#a1887f",
    "unreachable": "#fdd835",
    "unknown": "#90a4ae",
}
DEFAULT_COLOUR = "#9e9e9e"

#: The order states are listed in summaries.
STATE_ORDER: tuple[str, ...] = (
    "running",
    "queued",
    "unreachable",
    "unknown",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped",
    "pending",
)


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, DEFAULT_COLOUR)


ONE_LINE_LIMIT = 200


def one_line(text: object, limit: int = ONE_LINE_LIMIT) -> str:
    """`text` on a single line (control characters become spaces), at most `limit` chars."""
    if (
        type(text) is str
        and len(text) <= limit
        and text.isprintable()  # no newlines, tabs or other separators but " "
        and "  " not in text
        and text[:1] != " " != text[-1:]
    ):
        return text  # already one line: the common case, without splitting and joining
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def format_when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def format_duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`, `3d04h`; empty when unknown."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def span(start: float | None, end: float | None, now: float) -> float | None:
    """Seconds from `start` to `end` (or to `now` while not ended); None before a start."""
    if start is None:
        return None
    return (now if end is None else float(end)) - float(start)


def elapsed(item: Mapping[str, Any], now: float, start_key: str = "started") -> float | None:
    """`span` of an API object's `start_key` and `ended`."""
    return span(item.get(start_key), item.get("ended"), now)


def format_percent(progress: float | None) -> str:
    return "" if progress is None else f"{int(progress)}%"


def count_states(status: Mapping[str, Any]) -> Counter[str]:
    """Jobs per state, from a status's `jobs` or a summary's `counts`."""
    if "job_fields" in status:  # jobs as rows of the named fields
        at = list(status["job_fields"]).index("state")
        return Counter(str(row[at] or "unknown") for row in status["jobs"])
    if "jobs" in status:
        return Counter(str(job.get("state", "unknown")) for job in status["jobs"])
    return Counter({str(k): int(v) for k, v in (status.get("counts") or {}).items()})


def ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    known = [(s, counts[s]) for s in STATE_ORDER if counts.get(s)]
    other = sorted((s, n) for s, n in counts.items() if s not in STATE_ORDER and n)
    return known + other


def summary_parts(status: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(text, colour) pieces of the summary line; colour "" means default."""
    state = str(status.get("state", "unknown"))
    parts = [
        (f"{one_line(status.get('name', '?'))} ({status.get('id', '?')}) ", ""),
        (state, state_colour(state)),
    ]
    pieces = ordered(count_states(status))
    for i, (job_state, n) in enumerate(pieces):
        parts.append((" — " if i == 0 else ", ", ""))
        parts.append((f"{n} {job_state}", state_colour(job_state)))
    return parts


def summary_line(status: Mapping[str, Any]) -> str:
    """`mnist (a1b2c3d4) running — 3 running, 10 succeeded, 1 failed, 86 pending`."""
    return "".join(text for text, _ in summary_parts(status))


def ansi(text: str, colour: str | None, bold: bool = False) -> str:
    """`text` in a #rrggbb colour (24-bit ANSI) and/or bold, for terminals."""
    codes = ["1"] if bold else []
    if colour:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        codes.append(f"38;2;{r};{g};{b}")
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def _state_text(data: Mapping[str, Any]) -> str:
    text = str(data.get("state", "?"))
    if data.get("attempt"):
        text += f" (attempt {data['attempt']})"
    if data.get("exit_code") is not None:
        text += f" exit={data['exit_code']}"
    if data.get("reason"):
        text += f": {one_line(data['reason'])}"
    return text


def _progress_text(data: Mapping[str, Any]) -> str:
    pct = data.get("progress")
    text = "progress" + (f" {pct:g}%" if isinstance(pct, int | float) else "")
    if data.get("message"):
        text += f" {one_line(data['message'])}"
    return text


def _added_text(data: Mapping[str, Any]) -> str:
    if isinstance(data.get("items"), list):  # a foreach job's elements replaced it
        return f"fanned out into {len(data['items'])} element(s)"
    names = list(data.get("jobs") or {})
    shown = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
    return f"added {len(names)} job(s): {one_line(shown)}"


def _usage_text(data: Mapping[str, Any]) -> str:
    text = f"attempt {data.get('attempt')} {data.get('outcome', 'ended')}"
    usage = data.get("usage")
    if isinstance(usage, dict):
        cpu = (usage.get("cpu_user") or 0) + (usage.get("cpu_sys") or 0)
        text += f": cpu {seconds_text(cpu)}"
        if usage.get("maxrss_kb") is not None:
            text += f", peak RSS {kib_text(usage['maxrss_kb'])}"
    return text


def _notified_text(data: Mapping[str, Any]) -> str:
    """`notified webhook hooks.example.org (failed)`; `notifying mail to a@b failed …`."""
    to, on, tries = (
        one_line(data.get("to", "?")),
        one_line(data.get("on", "?")),
        data.get("attempts"),
    )
    if "error" in data:
        after = f" after {tries} attempt(s)" if isinstance(tries, int) else ""
        return f"notifying {to} ({on}) failed{after}: {one_line(data['error'])}"
    return f"notified {to} ({on}" + (
        f", attempt {tries})" if isinstance(tries, int) and tries > 1 else ")"
    )


_EVENT_TEXT: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "job.state": _state_text,
    "workflow.state": _state_text,
    "job.progress": _progress_text,
    "job.output": lambda d: f"output {one_line(d.get('key'))}={one_line(d.get('value'), 80)}",
    "notify.sent": _notified_text,
    "notify.failed": _notified_text,
    "job.warning": lambda d: f"warning: {one_line(d.get('message', ''))}",
    "job.launched": lambda d: f"launched attempt {d.get('attempt')}",
    "workflow.submitted": lambda d: f"submitted {one_line(d.get('name'))}",
    "workflow.jobs_added": _added_text,
    "job.cached": lambda d: f"reused: {one_line(d.get('reason', ''))}",
    "job.usage": _usage_text,
}


def event_text(event: Mapping[str, Any]) -> str:
    """What an event says, on one line: `train failed (attempt 1) exit=3: oom`,
    `workflow succeeded`, `train progress 42% epoch 3/10` (an API event's JSON)."""
    kind = str(event.get("kind"))
    describe = _EVENT_TEXT.get(kind)
    text = describe(event.get("data") or {}) if describe is not None else kind
    return f"{one_line(event.get('job') or 'workflow')} {text}"
