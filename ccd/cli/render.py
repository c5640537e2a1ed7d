"""How `ccctl` shows workflows: tables, the live `watch` view and plain change lines.

Everything here works on the API's plain JSON dicts. Only the stdlib is imported at
module level; rich is imported inside the functions that build renderables, so the
client starts fast.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ccd.states import FINAL_JOB_STATES, WorkflowState

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

Json = dict[str, Any]

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

FINAL_JOB = frozenset(s.value for s in FINAL_JOB_STATES)
FINAL_WORKFLOW = frozenset(s.value for s in WorkflowState if s.is_final)

#: When not every job fits, the watch view shows these groups of states in this order.
_INTEREST_GROUPS = (
    ("running",),
    ("unreachable", "unknown"),
    ("failed", "timed_out"),
    ("succeeded", "cancelled", "skipped"),
    ("queued",),
    ("pending",),
)
_INTEREST = {state: rank for rank, group in enumerate(_INTEREST_GROUPS) for state in group}
#: Lines around the watch table's rows: the summary line, table header and its rule.
_WATCH_CHROME = 3


# -- small formatting helpers -------------------------------------------------


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, DEFAULT_COLOUR)


_ONE_LINE_LIMIT = 200


def one_line(text: object, limit: int = _ONE_LINE_LIMIT) -> str:
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


def elapsed(item: Mapping[str, Any], now: float, start_key: str = "started") -> float | None:
    """Seconds from `start_key` to `ended` (or to `now` while not ended)."""
    start = item.get(start_key)
    if start is None:
        return None
    end = item.get("ended")
    return (now if end is None else float(end)) - float(start)


def format_percent(progress: float | None) -> str:
    return "" if progress is None else f"{int(progress)}%"


def count_states(status: Mapping[str, Any]) -> Counter[str]:
    """Jobs per state, from a status's `jobs` or a summary's `counts`."""
    if "job_fields" in status:  # jobs as rows
        return Counter(str(row[1] or "unknown") for row in table_rows(status))
    if "jobs" in status:
        return Counter(str(job.get("state", "unknown")) for job in status["jobs"])
    return Counter({str(k): int(v) for k, v in (status.get("counts") or {}).items()})


def _ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    known = [(s, counts[s]) for s in STATE_ORDER if counts.get(s)]
    other = sorted((s, n) for s, n in counts.items() if s not in STATE_ORDER and n)
    return known + other


def format_counts(counts: Mapping[str, int]) -> str:
    """`3 running, 10 succeeded, 86 pending` (zero counts left out)."""
    return ", ".join(f"{n} {s}" for s, n in _ordered(counts))


def _summary_parts(status: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(text, colour) pieces of the summary line; colour "" means default."""
    state = str(status.get("state", "unknown"))
    parts = [
        (f"{one_line(status.get('name', '?'))} ({status.get('id', '?')}) ", ""),
        (state, state_colour(state)),
    ]
    pieces = _ordered(count_states(status))
    for i, (job_state, n) in enumerate(pieces):
        parts.append((" — " if i == 0 else ", ", ""))
        parts.append((f"{n} {job_state}", state_colour(job_state)))
    return parts


def summary_line(status: Mapping[str, Any]) -> str:
    """`mnist (a1b2c3d4) running — 3 running, 10 succeeded, 1 failed, 86 pending`."""
    return "".join(text for text, _ in _summary_parts(status))


# -- tables ---------------------------------------------------------------------


def state_text(state: str) -> Text:
    from rich.text import Text

    return Text(state, style=state_colour(state))


def _counts_text(counts: Mapping[str, int]) -> Text:
    from rich.text import Text

    text = Text()
    for i, (state, n) in enumerate(_ordered(counts)):
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


def _note(job: Mapping[str, Any]) -> str:
    """The reason a job is where it is, else its last progress message."""
    return one_line(job.get("reason") or job.get("message") or "")


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
            max(map(len, texts), default=0) <= _ONE_LINE_LIMIT
            and joined.replace("\n", "").isprintable()
            and "  " not in joined
            and " \n" not in joined
            and "\n " not in joined
            and joined[:1] != " " != joined[-1:]
        ):
            return texts
    return [one_line(t) for t in texts]


def ansi(text: str, colour: str | None, bold: bool = False) -> str:
    """`text` in a #rrggbb colour (24-bit ANSI) and/or bold, for terminals."""
    codes = ["1"] if bold else []
    if colour:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        codes.append(f"38;2;{r};{g};{b}")
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


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
        ansi(text, tint) if colour and tint else text for text, tint in _summary_parts(status)
    )
    return summary + "\n" + "\n".join(lines) + "\n"


# -- the live model ---------------------------------------------------------------


def _percent_key(job: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """What a progress line shows: the integer percentage and the message."""
    progress = job.get("progress")
    return (None if progress is None else int(progress), job.get("message"))


_Handler = Callable[["WatchModel", str | None, Json, float], list[str]]


class WatchModel:
    """The client's copy of one workflow's status, kept current by its events."""

    def __init__(self, status: Json, last_seq: int | None = None) -> None:
        self.status = status
        status.setdefault("jobs", [])
        self._jobs: dict[str, Json] = {job["name"]: job for job in status["jobs"]}
        #: the progress each job's last printed progress line showed
        self._said = {name: _percent_key(job) for name, job in self._jobs.items()}
        #: events with this sequence number or lower are already in `status`
        self.last_seq = int(status.get("seq") or 0) if last_seq is None else last_seq

    @property
    def jobs(self) -> list[Json]:
        return list(self.status["jobs"])

    @property
    def finished(self) -> bool:
        return self.status.get("state") in FINAL_WORKFLOW

    def apply(self, event: Mapping[str, Any]) -> list[str]:
        """Fold `event` into the status; return lines describing what changed."""
        seq = event.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                return []
            self.last_seq = seq
        workflow_id = event.get("workflow_id")
        if workflow_id and self.status.get("id") and workflow_id != self.status["id"]:
            return []
        handler = _HANDLERS.get(str(event.get("kind")))
        if handler is None:
            return []
        when = float(event.get("time") or time.time())
        self.status["updated"] = when
        lines = handler(self, event.get("job"), dict(event.get("data") or {}), when)
        return [f"{format_clock(when)} {line}" for line in lines]

    def _job(self, name: str) -> Json:
        job = self._jobs.get(name)
        if job is None:
            job = dict.fromkeys(("progress", "message", "exit_code", "reason", "started", "ended"))
            job.update(name=name, state="pending", attempt=0, host="", executor="")
            job.update(needs=[], outputs={})
            self.status["jobs"].append(job)
            self._jobs[name] = job
            self._said[name] = (None, None)
        return job

    def _on_submitted(self, _job: str | None, data: Json, _when: float) -> list[str]:
        if "name" in data:
            self.status["name"] = data["name"]
        return [f"workflow {one_line(self.status.get('name', '?'))} submitted"]

    def _on_workflow_state(self, _job: str | None, data: Json, when: float) -> list[str]:
        state = str(data.get("state"))
        self.status["state"] = state
        self.status["ended"] = when if state in FINAL_WORKFLOW else None
        line = f"workflow {one_line(self.status.get('name', '?'))} {state}"
        return [line + (f" ({one_line(data['reason'])})" if data.get("reason") else "")]

    def _on_job_state(self, name: str | None, data: Json, when: float) -> list[str]:
        if name is None:
            return []
        job = self._job(name)
        state = str(data.get("state"))
        job["state"] = state
        if data.get("attempt") is not None:
            job["attempt"] = data["attempt"]
        job["reason"] = data.get("reason")
        job["exit_code"] = data.get("exit_code")
        if state == "running":
            job["started"], job["ended"] = when, None
        elif state in FINAL_JOB:
            job["ended"] = when
        else:  # waiting again (a retry): the previous attempt's numbers are stale
            job.update(started=None, ended=None, progress=None, message=None)
            self._said[name] = (None, None)
        return [_state_line(job)]

    def _on_launched(self, name: str | None, data: Json, _when: float) -> list[str]:
        if name is not None and data.get("attempt") is not None:
            self._job(name)["attempt"] = data["attempt"]
        return []

    def _on_progress(self, name: str | None, data: Json, _when: float) -> list[str]:
        if name is None:
            return []
        job = self._job(name)
        for key in ("progress", "message"):
            if data.get(key) is not None:
                job[key] = data[key]
        said = _percent_key(job)
        if said == self._said.get(name):
            return []
        self._said[name] = said
        percent, message = said
        words = [one_line(name), *([f"{percent}%"] if percent is not None else [])]
        return [" ".join(words + ([one_line(message)] if message else []))]

    def _on_output(self, name: str | None, data: Json, _when: float) -> list[str]:
        if name is None or "key" not in data:
            return []
        key, value = str(data["key"]), str(data.get("value", ""))
        self._job(name).setdefault("outputs", {})[key] = value
        return [f"{one_line(name)} output {one_line(key)}={one_line(value, 80)}"]

    def _on_warning(self, name: str | None, data: Json, _when: float) -> list[str]:
        who = one_line(name) if name else f"workflow {one_line(self.status.get('name', '?'))}"
        return [f"{who} warning: {one_line(data.get('message', ''))}"]


def _state_line(job: Mapping[str, Any]) -> str:
    """`train running (attempt 1)`, `train failed exit=3 (out of memory)`."""
    state = job["state"]
    line = f"{one_line(job['name'])} {state}"
    if state == "running" and job.get("attempt"):
        line += f" (attempt {job['attempt']})"
    if job.get("exit_code") not in (None, 0):
        line += f" exit={job['exit_code']}"
    if job.get("reason"):
        line += f" ({one_line(job['reason'])})"
    return line


_HANDLERS: dict[str, _Handler] = {
    "workflow.submitted": WatchModel._on_submitted,
    "workflow.state": WatchModel._on_workflow_state,
    "job.state": WatchModel._on_job_state,
    "job.launched": WatchModel._on_launched,
    "job.progress": WatchModel._on_progress,
    "job.output": WatchModel._on_output,
    "job.warning": WatchModel._on_warning,
}


# -- the live view ---------------------------------------------------------------------


def _interest(item: tuple[int, Json]) -> tuple[int, float, int]:
    """Sort key: by state group, most recently ended first, then the daemon's order."""
    index, job = item
    state = str(job.get("state"))
    recent = -float(job.get("ended") or 0) if state in FINAL_JOB else 0.0
    return (_INTEREST.get(state, 1), recent, index)


def choose_rows(jobs: list[Json], room: int) -> tuple[list[Json], Counter[str]]:
    """The jobs to show in `room` rows, and the states of those left out.

    When not all fit, one row is kept for the "… and N more" line and the most
    interesting jobs are shown, most interesting first.
    """
    if len(jobs) <= room:
        return jobs, Counter()
    best = heapq.nsmallest(max(0, room - 1), enumerate(jobs), key=_interest)
    shown = [job for _, job in best]
    hidden = Counter(str(job.get("state")) for job in jobs)
    hidden.subtract(Counter(str(job.get("state")) for job in shown))
    return shown, +hidden


def _more_line(hidden: Counter[str]) -> Text:
    from rich.text import Text

    by_size = sorted(_ordered(hidden), key=lambda item: -item[1])  # stable: ties keep order
    detail = ", ".join(f"{n} {state}" for state, n in by_size)
    return Text(
        f"… and {hidden.total()} more ({detail})", style="dim", no_wrap=True, overflow="ellipsis"
    )


def _bar(job: Mapping[str, Any]) -> RenderableType:
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    state = str(job.get("state"))
    progress = job.get("progress")
    if progress is None and state == "succeeded":
        progress = 100.0
    if progress is None:
        if state == "running":
            return ProgressBar(total=None, pulse=True)
        return Text("")
    colour = state_colour(state)
    return ProgressBar(
        total=100.0,
        completed=min(100.0, max(0.0, float(progress))),
        complete_style=colour,
        finished_style=colour,
    )


def _watch_columns(width: int) -> dict[str, dict[str, Any]]:
    """The watch table's columns and their options; narrow screens keep the essentials."""
    columns: dict[str, dict[str, Any]] = {
        "Job": {"max_width": max(12, width // 4)},
        "State": {},
        "Progress": {"width": 20 if width >= 100 else 10},
        "%": {"justify": "right"},
        "Host": {"max_width": 16},
        "Elapsed": {"justify": "right"},
        "Message": {"ratio": 1},
    }
    dropped = () if width >= 80 else ("Host",) if width >= 50 else ("Progress", "Host", "Message")
    return {name: options for name, options in columns.items() if name not in dropped}


def _exit_and_note(job: Mapping[str, Any]) -> str:
    code = job.get("exit_code")
    return " ".join(([f"exit={code}"] if code not in (None, 0) else []) + [_note(job)]).strip()


def _watch_cells(job: Mapping[str, Any], now: float) -> dict[str, RenderableType]:
    from rich.text import Text

    return {
        "Job": Text(one_line(job.get("name", ""))),
        "State": state_text(str(job.get("state", "unknown"))),
        "Progress": _bar(job),
        "%": Text(format_percent(job.get("progress"))),
        "Host": Text(one_line(job.get("host", ""))),
        "Elapsed": Text(format_duration(elapsed(job, now))),
        "Message": Text(_exit_and_note(job)),
    }


def _watch_table(jobs: list[Json], width: int, now: float) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, width=width, header_style="bold"
    )
    columns = _watch_columns(width)
    for name, options in columns.items():  # no_wrap: every row is exactly one line
        table.add_column(name, no_wrap=True, overflow="ellipsis", **options)
    for job in jobs:
        cells = _watch_cells(job, now)
        table.add_row(*(cells[name] for name in columns))
    return table


def _header(status: Mapping[str, Any], now: float) -> Text:
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ellipsis")
    for piece, colour in _summary_parts(status):
        text.append(piece, style=colour)
    took = format_duration(elapsed(status, now, "created"))
    if took:
        text.append(f" · {took}", style="dim")
    return text


def watch_renderable(
    model: WatchModel, height: int, width: int, now: float | None = None
) -> RenderableType:
    """The `ccctl watch` screen; never taller than `height` lines."""
    from rich.console import Group

    now = time.time() if now is None else now
    if height < 1:
        return Group()
    header = _header(model.status, now)
    room = height - _WATCH_CHROME
    if room < 1:
        return Group(header)  # a Group keeps the Text's no_wrap when printed
    shown, hidden = choose_rows(model.jobs, room)
    parts: list[RenderableType] = [header]
    if shown:
        parts.append(_watch_table(shown, width, now))
    if hidden:
        parts.append(_more_line(hidden))
    return Group(*parts)
