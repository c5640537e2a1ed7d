"""The tables of `ccctl ls` and `ccctl status`, from the API's JSON.

`status` is laid out as plain strings, column by column (a 10,000-job status in
tens of ms); `ls` as one rich Text with styled spans.  rich is imported inside
the functions that build renderables, so the client starts fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ccd.cli.format import (
    ONE_LINE_LIMIT,
    ansi,
    count_states,
    elapsed,
    format_duration,
    format_percent,
    format_when,
    one_line,
    ordered,
    state_colour,
    summary_parts,
)

if TYPE_CHECKING:
    from rich.text import Text


def state_text(state: str) -> Text:
    from rich.text import Text

    return Text(state, style=state_colour(state))


def _counts_text(counts: Mapping[str, int]) -> Text:
    from rich.text import Text

    text = Text()
    for i, (state, n) in enumerate(ordered(counts)):
        if i:
            text.append(", ")
        text.append(f"{n} {state}", style=state_colour(state))
    return text


def _grid(headers: Sequence[str], rows: list[list[Text]], right: Collection[str] = ()) -> Text:
    """A table as one Text: columns as wide as their widest cell, two spaces apart.

    rich's Table lays out every cell as a renderable of its own (~1 ms per row of a
    status here: 0.27 s for 200 jobs); one Text with styled spans renders 10,000
    rows in a fraction of that.  Lines never wrap: each is cut at the terminal's edge.
    """
    from rich.text import Text

    head = [Text(h, style="bold") for h in headers]
    widths = [max(cell.cell_len for cell in column) for column in zip(head, *rows, strict=True)]
    last = len(headers) - 1
    out = Text(no_wrap=True, overflow="ellipsis")
    for index, row in enumerate([head, *rows]):
        if index:
            out.append("\n")
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - cell.cell_len)
            if i:
                out.append("  ")
            if headers[i] in right:
                out.append(pad)
                out.append_text(cell)
            else:
                out.append_text(cell)
                if i < last:
                    out.append(pad)
    return out


def workflows_table(rows: Iterable[Mapping[str, Any]], now: float | None = None) -> Text:
    """The `ccctl ls` table: one row per workflow summary."""
    from rich.text import Text

    now = time.time() if now is None else now
    cells = [
        [
            Text(str(row.get("id", ""))),
            Text(one_line(row.get("name", ""))),
            state_text(str(row.get("state", "unknown"))),
            _counts_text(count_states(row)),
            Text(format_when(row.get("created"))),
            Text(format_duration(elapsed(row, now, "created"))),
        ]
        for row in rows
    ]
    return _grid(("ID", "Name", "State", "Jobs", "Created", "Elapsed"), cells, ("Elapsed",))


STATUS_HEADERS = ("Job", "State", "Progress", "Attempt", "Exit", "Host", "Elapsed", "Reason")
_STATUS_RIGHT = frozenset({2, 3, 4, 6})
_STATE_COLUMN = 1


#: the job fields the status table shows, in the order `_status_columns` reads them
TABLE_FIELDS = (
    "name", "state", "progress", "attempt", "exit_code", "host", "elapsed", "reason", "message",
)  # fmt: skip


def table_rows(status: Mapping[str, Any], now: float | None = None) -> list[Sequence[Any]]:
    """The jobs as TABLE_FIELDS rows: as the daemon sent them (``job_fields`` names the
    columns), or taken from job objects, with `elapsed` worked out from `started`
    and `ended` (and `now` while a job runs) where the daemon did not send it."""
    fields = status.get("job_fields")
    jobs = status.get("jobs", [])
    if fields is not None and list(fields) == list(TABLE_FIELDS):
        return list(jobs)
    if fields is not None:
        jobs = [dict(zip(fields, job, strict=True)) for job in jobs]
    now = time.time() if now is None else now
    return [
        [
            _whole_seconds(elapsed(job, now))
            if f == "elapsed" and "elapsed" not in job
            else job.get(f)
            for f in TABLE_FIELDS
        ]
        for job in jobs
    ]


def _whole_seconds(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds)


def _status_columns(status: Mapping[str, Any], now: float | None) -> list[list[str]]:
    """The table's cells column by column, each column formatted in one pass.

    Column-wise because a status of 10,000 jobs is 80,000 cells: most columns repeat
    a few values (states, hosts, percentages, reasons), formatted once each here,
    and a column of short one-line names is checked in one go."""
    jobs = table_rows(status, now)
    if not jobs:
        return [[] for _ in STATUS_HEADERS]
    names, states, progress, attempts, exits, hosts, seconds, reasons, messages = zip(
        *jobs, strict=True
    )
    notes = [r or m or "" for r, m in zip(reasons, messages, strict=True)]
    return [
        _one_line_column(names),
        _each_once(states, lambda s: str(s or "unknown")),
        _each_once(progress, format_percent),
        _each_once(attempts, lambda a: str(a) if a else ""),
        _each_once(exits, lambda e: "" if e is None else str(e)),
        _each_once(hosts, lambda h: one_line(h or "")),
        _each_once(seconds, format_duration),
        _each_once(notes, one_line),
    ]


def _each_once(values: Iterable[Any], show: Callable[[Any], str]) -> list[str]:
    """`show` of each value, called once per distinct value."""
    shown: dict[Any, str] = {}
    return [shown[v] if v in shown else shown.setdefault(v, show(v)) for v in values]


def _pad(cells: list[str], width: int, *, right: bool) -> list[str]:
    return [c.rjust(width) for c in cells] if right else [c.ljust(width) for c in cells]


def _one_line_column(values: Sequence[Any]) -> list[str]:
    """`one_line` of each value (None as ""), with one look at the whole column for
    the common case of short names that are single lines already."""
    texts = ["" if v is None else v for v in values]
    if {type(t) for t in texts} <= {str}:
        joined = "\n".join(texts)
        if (
            max(map(len, texts), default=0) <= ONE_LINE_LIMIT
            and joined.replace("\n", "").isprintable()
            and "  " not in joined
            and " \n" not in joined
            and "\n " not in joined
            and joined[:1] != " " != joined[-1:]
        ):
            return texts
    return [one_line(t) for t in texts]


def status_text(
    status: Mapping[str, Any], *, width: int | None, colour: bool, now: float | None = None
) -> str:
    """The summary line and the status table as plain text (ANSI colours if `colour`),
    each line cut at `width`.

    Plain strings, not rich renderables: a 10,000-job status took ~1.2 s to lay out
    and print through rich; one format string per table does it in tens of ms.
    """
    columns = _status_columns(status, now)
    widths = [
        max(len(h), max(map(len, c), default=0))
        for h, c in zip(STATUS_HEADERS, columns, strict=True)
    ]
    # every column padded to its width but the last; then a line is one join
    padded = [
        [h, *c] if i == len(columns) - 1 else _pad([h, *c], w, right=i in _STATUS_RIGHT)
        for i, (h, c, w) in enumerate(zip(STATUS_HEADERS, columns, widths, strict=True))
    ]
    lines = ["  ".join(cells).rstrip() for cells in zip(*padded, strict=True)]
    if width is not None:
        lines = [line if len(line) <= width else line[: width - 1] + "…" for line in lines]
    if colour:
        lines[0] = ansi(lines[0], None, bold=True)
        state_at = widths[0] + 2  # where the state column starts
        tinted: dict[str, str] = {}
        for i, state in enumerate(columns[_STATE_COLUMN], start=1):
            line, end = lines[i], state_at + len(state)
            if len(line) >= end:  # the state is not cut off
                if state not in tinted:
                    tinted[state] = ansi(state, state_colour(state))
                lines[i] = line[:state_at] + tinted[state] + line[end:]
    summary = "".join(
        ansi(text, tint) if colour and tint else text for text, tint in summary_parts(status)
    )
    return summary + "\n" + "\n".join(lines) + "\n"


def job_text(job: Mapping[str, Any], now: float | None = None) -> str:
    """`ccctl status WF JOB`: one job as labelled lines (empty facts left out)."""
    now = time.time() if now is None else now
    workdir = job.get("workdir")
    if workdir == "run":  # RUN_WORKDIR: the attempt's own run directory
        workdir = f"run ({job['run_dir']})" if job.get("run_dir") else "run (its run directory)"
    progress = " ".join(
        p for p in (format_percent(job.get("progress")), one_line(job.get("message") or "")) if p
    )
    outputs = ", ".join(f"{k}={one_line(v, 80)}" for k, v in (job.get("outputs") or {}).items())
    facts = [
        ("state", f"{job.get('state')} (attempt {job.get('attempt') or 0})"),
        ("exit code", "" if job.get("exit_code") is None else str(job["exit_code"])),
        ("reason", one_line(job.get("reason") or "")),
        ("host", f"{job.get('host')} ({job.get('executor')})"),
        ("workdir", workdir or ""),
        ("run dir", job.get("run_dir") or ""),
        ("log", job.get("log") or ""),
        ("notebook", job.get("notebook") or ""),
        ("started", format_when(job.get("started"))),
        ("elapsed", format_duration(elapsed(job, now))),
        ("progress", progress),
        ("outputs", outputs),
    ]
    lines = [one_line(job.get("name", "?"))]
    lines += [f"  {label:<10} {value}" for label, value in facts if value]
    return "\n".join(lines) + "\n"
