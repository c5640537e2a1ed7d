"""`ccctl watch`: one workflow kept current by its event stream, and shown live.

`WatchModel` holds the workflow's rows and applies each event with the same
`ccd.fold.Fold` the daemon's store uses, so ``watch`` shows what ``status`` would;
it also says, one line per change, what an event changed (`format.event_text`).
On a terminal a rich Live table is redrawn at most `FPS` times a second; a reader
thread turns the blocking HTTP stream into a queue so the view keeps ticking
(elapsed times) while no event arrives.  Without a terminal, one plain line is
printed per change, which is what logs and CI want.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ccd.cli.client import Client, path_of
from ccd.cli.format import (
    elapsed,
    event_text,
    format_clock,
    format_duration,
    format_percent,
    one_line,
    ordered,
    span,
    state_colour,
    summary_line,
    summary_parts,
)
from ccd.cli.tables import state_text
from ccd.errors import DaemonUnreachable
from ccd.events import Event, EventKind
from ccd.fold import BadEvent, Fold, JobRow, WorkflowRow, dumps
from ccd.states import FINAL_JOB_STATES, FINAL_WORKFLOW_STATES

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

Json = dict[str, Any]
FPS = 8
_END = object()

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


# -- the model -------------------------------------------------------------------------

#: the event kinds the fold knows; the stream may bring newer ones, which are skipped
_KINDS = frozenset(EventKind)


def _job_row(workflow_id: str, position: int, job: Mapping[str, Any]) -> JobRow:
    """A job of the API's status as the fold's row (its JSON columns as JSON text)."""
    handle = job.get("handle")
    return JobRow(
        workflow_id, str(job["name"]), position, str(job.get("state") or "pending"),
        int(job.get("attempt") or 0), job.get("progress"), job.get("message"),
        job.get("exit_code"), job.get("reason"), str(job.get("host") or ""),
        str(job.get("executor") or ""), dumps(job.get("needs") or []),
        None if handle is None else dumps(handle), dumps(job.get("outputs") or {}),
        job.get("started"), job.get("ended"), float(job.get("updated") or 0),
    )  # fmt: skip


def _percent_key(job: JobRow) -> tuple[int | None, str | None]:
    """What a progress line shows: the integer percentage and the message."""
    return (None if job.progress is None else int(job.progress), job.message)


class WatchModel:
    """The client's copy of one workflow's status, kept current by its events."""

    def __init__(self, status: Json, last_seq: int | None = None) -> None:
        self.workflow = WorkflowRow(
            str(status.get("id") or ""), str(status.get("name") or "?"),
            str(status.get("state") or "running"), str(status.get("source") or ""),
            float(status.get("created") or 0), float(status.get("updated") or 0),
            status.get("ended"),
        )  # fmt: skip
        wid = self.workflow.id
        rows = [_job_row(wid, i, job) for i, job in enumerate(status.get("jobs") or [])]
        self._fold = Fold({wid: self.workflow}, {(wid, row.name): row for row in rows})
        #: the progress each job's last printed progress line showed
        self._said = {row.name: _percent_key(row) for row in rows}
        #: events with this sequence number or lower are already in `status`
        self.last_seq = int(status.get("seq") or 0) if last_seq is None else last_seq

    @property
    def jobs(self) -> list[JobRow]:
        return list(self._fold.jobs.values())

    def job(self, name: str) -> JobRow:
        return self._fold.jobs[(self.workflow.id, name)]

    @property
    def finished(self) -> bool:
        return self.workflow.state in FINAL_WORKFLOW_STATES

    def summary(self) -> Json:
        """The workflow as the summary line reads it (as `ccctl ls` gets it)."""
        w = self.workflow
        counts = Counter(job.state for job in self._fold.jobs.values())
        return {"id": w.id, "name": w.name, "state": w.state, "created": w.created,
                "ended": w.ended, "counts": counts}  # fmt: skip

    def apply(self, event: Mapping[str, Any]) -> list[str]:
        """Fold `event` into the status; return lines describing what changed."""
        seq = event.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                return []
            self.last_seq = seq
        wid = self.workflow.id
        if event.get("workflow_id") not in (None, "", wid) or event.get("kind") not in _KINDS:
            return []
        job = event.get("job")
        if job is not None and (wid, job) not in self._fold.jobs:
            # a job the status did not list yet: it starts as every job does
            row = _job_row(wid, len(self._fold.jobs), {"name": job})
            self._fold.jobs[(wid, row.name)] = row
            self._said[row.name] = _percent_key(row)
        when = float(event.get("time") or time.time())
        data = dict(event.get("data") or {})
        # The daemon folded this event when it recorded it; one the copy here cannot
        # take (a `workflow.submitted` of a status that already holds the workflow)
        # changes nothing, and its line is still printed.
        with contextlib.suppress(BadEvent, ValueError, KeyError, TypeError):
            self._fold.apply(Event(wid, job, EventKind(event["kind"]), data, when))
        self._fold.cache_rows.clear()  # the daemon's store keeps those, not the view
        return [f"{format_clock(when)} {line}" for line in self._lines(event, job)]

    def _lines(self, event: Mapping[str, Any], job: str | None) -> list[str]:
        """The change lines for an applied event: none for a launch (the running
        event says it), and a progress line only when what it shows changed."""
        kind = event.get("kind")
        if kind in (EventKind.JOB_LAUNCHED, EventKind.JOB_USAGE):  # (the report's data)
            return []
        if job is not None and kind in (EventKind.JOB_PROGRESS, EventKind.JOB_STATE):
            said, self._said[job] = self._said.get(job), _percent_key(self.job(job))
            if kind == EventKind.JOB_PROGRESS and said == self._said[job]:
                return []
        return [event_text(event)]


# -- the live view ---------------------------------------------------------------------


def _interest(item: tuple[int, JobRow]) -> tuple[int, float, int]:
    """Sort key: by state group, most recently ended first, then the daemon's order."""
    index, job = item
    recent = -float(job.ended or 0) if job.state in FINAL_JOB_STATES else 0.0
    return (_INTEREST.get(job.state, 1), recent, index)


def choose_rows(jobs: list[JobRow], room: int) -> tuple[list[JobRow], Counter[str]]:
    """The jobs to show in `room` rows, and the states of those left out.

    When not all fit, one row is kept for the "… and N more" line and the most
    interesting jobs are shown, most interesting first.
    """
    if len(jobs) <= room:
        return jobs, Counter()
    best = heapq.nsmallest(max(0, room - 1), enumerate(jobs), key=_interest)
    shown = [job for _, job in best]
    hidden = Counter(job.state for job in jobs)
    hidden.subtract(Counter(job.state for job in shown))
    return shown, +hidden


def _more_line(hidden: Counter[str]) -> Text:
    from rich.text import Text

    by_size = sorted(ordered(hidden), key=lambda item: -item[1])  # stable: ties keep order
    detail = ", ".join(f"{n} {state}" for state, n in by_size)
    return Text(
        f"… and {hidden.total()} more ({detail})", style="dim", no_wrap=True, overflow="ellipsis"
    )


def _bar(job: JobRow) -> RenderableType:
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    state, progress = job.state, job.progress
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


def _exit_and_note(job: JobRow) -> str:
    """A non-zero exit code, and the reason the job is where it is, else its last message."""
    code = job.exit_code
    note = one_line(job.reason or job.message or "")
    return " ".join(([f"exit={code}"] if code not in (None, 0) else []) + [note]).strip()


def _watch_cells(job: JobRow, now: float) -> dict[str, RenderableType]:
    from rich.text import Text

    return {
        "Job": Text(one_line(job.name)),
        "State": state_text(job.state),
        "Progress": _bar(job),
        "%": Text(format_percent(job.progress)),
        "Host": Text(one_line(job.host)),
        "Elapsed": Text(format_duration(span(job.started, job.ended, now))),
        "Message": Text(_exit_and_note(job)),
    }


def _watch_table(jobs: list[JobRow], width: int, now: float) -> Table:
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
    for piece, colour in summary_parts(status):
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
    header = _header(model.summary(), now)
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


# -- following the stream ---------------------------------------------------------------


def follow(client: Client, ref: str) -> str:
    """Follow a workflow until it is final; return its final state."""
    status: dict[str, Any] = client.call("GET", path_of("workflows", ref))
    model = WatchModel(status)
    stream = client.stream_lines(
        path_of("workflows", status["id"], "events"),
        {"follow": True, "since": status.get("seq", 0)},
    )
    if sys.stdout.isatty():
        _live(model, stream)
    else:
        _plain(model, stream)
    print(summary_line(model.summary()))
    if not model.finished:
        # the stream ended before the workflow did: the daemon stopped
        raise DaemonUnreachable(
            "the ccd daemon stopped while watching; the jobs keep running and the next "
            f"daemon picks them up (then: ccctl watch {status['id']})"
        )
    return model.workflow.state


def _plain(model: WatchModel, stream: Any) -> None:
    for raw in stream:
        if not raw.strip():
            continue
        for line in model.apply(json.loads(raw)):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _live(model: WatchModel, stream: Any) -> None:
    from rich.console import Console
    from rich.live import Live

    events: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            for raw in stream:
                if raw.strip():
                    events.put(json.loads(raw))
        except Exception as exc:  # shown by the main thread
            events.put(exc)
        events.put(_END)

    threading.Thread(target=read, name="events", daemon=True).start()
    console = Console()

    def view() -> Any:
        return watch_renderable(
            model, height=max(5, console.height - 1), width=console.width, now=time.time()
        )

    with Live(view(), console=console, auto_refresh=False, transient=False) as live:
        going = True
        while going:  # redrawn at least FPS times a second: elapsed times tick
            going = _apply_queued(model, events, 1 / FPS)
            live.update(view(), refresh=True)


def _apply_queued(model: WatchModel, events: queue.Queue[Any], timeout: float) -> bool:
    """Apply the events that arrive within `timeout`, and all queued behind the first
    (one redraw for a burst); False once the stream has ended."""
    wait: float | None = timeout
    while True:
        try:
            item = events.get(timeout=wait) if wait is not None else events.get_nowait()
        except queue.Empty:
            return True
        if item is _END:
            return False
        if isinstance(item, Exception):
            raise item
        model.apply(item)
        wait = None
