"""The fold: how events become a workflow's and its jobs' current state (pure, stdlib only).

This is the one place that says what each event does to a row.  The store folds
every batch it writes into the ``workflows``/``jobs`` tables with it, and
``ccctl watch`` keeps its copy of a workflow current with the same `Fold`, so
``status`` and ``watch`` cannot disagree (the web view is meant to use it too).

A job's row, by the state its ``job.state`` event enters:

==================  ===================================================================
state entered       what else changes
==================  ===================================================================
running             ``started`` = now, unless the job comes back from ``unreachable``
                    (the same attempt kept running while its host was out of reach)
pending, queued     from any other state a new attempt is coming: the last attempt's
                    ``progress``, ``message`` and ``started`` are cleared
final states        ``ended`` = the event's ``ended`` (when the attempt ended by its
                    executor's account: a new daemon learns of an exit long after it),
                    kept within ``started`` .. now (another host's clock may differ);
                    else now.  Any other state clears ``ended``
every state         ``reason`` as given; ``exit_code`` as given, else kept by a
                    final state and cleared by the others; ``attempt`` as given, else
                    kept; ``handle`` as given (None: a new attempt forgets the last)
==================  ===================================================================

``job.usage`` (an attempt ended: its outcome and cost) changes no row; the run report
reads those events, since a row holds only the job's current attempt.

`Fold.apply` either applies an event completely or raises `BadEvent` (or the
error of a malformed value) without changing anything, so one bad event is
rejected on its own instead of failing the whole batch.  Applying events to
rows here in Python, rather than one UPDATE per event, keeps a store batch to a
handful of round trips to the database thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccd.events import Event, EventKind
from ccd.states import FINAL_JOB_STATES, FINAL_WORKFLOW_STATES, JobState, WorkflowState

#: Compact and strict: NaN/Infinity are not JSON, and other readers would choke on them.
dumps: Callable[[Any], str] = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


class EncodedJSON(str):
    """A value its emitter already encoded as JSON text: a workflow's spec (29 MB for
    100,000 jobs) is encoded once, by pydantic, instead of twice by `dumps`."""


def dumps_data(data: dict[str, Any]) -> str:
    """An event's data as JSON; `EncodedJSON` values are embedded as they are."""
    # only a submitted event's spec comes encoded: one look-up keeps other events' cost
    if type(data.get("spec")) is not EncodedJSON:
        return dumps(data)
    items = (
        f"{dumps(str(key))}:{value if type(value) is EncodedJSON else dumps(value)}"
        for key, value in data.items()
    )
    return "{" + ",".join(items) + "}"


# A str-Enum member hashes and compares equal to its value, so these sets of
# members answer for the plain strings events and rows hold.
_JOB_STATES = frozenset(JobState)
_WORKFLOW_STATES = frozenset(WorkflowState)
#: states of a job waiting for its next attempt
_WAITING = frozenset({JobState.PENDING, JobState.QUEUED})


class BadEvent(ValueError):
    """An event that cannot be folded (unknown workflow or job, bad data); it is not recorded."""


@dataclass(slots=True)
class WorkflowRow:
    id: str
    name: str
    state: str
    source: str
    created: float
    updated: float
    ended: float | None
    #: the spec as JSON; only set for a row created in this batch (loaded rows
    #: leave it empty because it can be large and an update never writes it)
    spec: str = ""
    new: bool = False
    dirty: bool = False


@dataclass(slots=True)
class JobRow:
    # Field order is the column order of the jobs table.
    workflow_id: str
    name: str
    #: listing order; a foreach job's elements take fractions of its place
    position: float
    state: str
    attempt: int
    progress: float | None
    message: str | None
    exit_code: int | None
    reason: str | None
    host: str
    executor: str
    needs: str
    handle: str | None
    outputs: str
    started: float | None
    ended: float | None
    updated: float
    new: bool = False
    dirty: bool = False


class Fold:
    """The rows a batch touches, and the events applied to them so far."""

    def __init__(
        self, workflows: dict[str, WorkflowRow], jobs: dict[tuple[str, str], JobRow]
    ) -> None:
        self.workflows = workflows
        self.jobs = jobs
        #: what jobs_added changes beyond rows: jobs replaced (workflow, job), new
        #: parents (needs as JSON, workflow, job) and merge patches of specs (patch, workflow)
        self.deleted: list[tuple[str, str]] = []
        self.needs_changed: list[tuple[str, str, str]] = []
        self.spec_patches: list[tuple[str, str]] = []
        #: rows of the cache table: jobs that succeeded with a cache key (`cache_row`)
        self.cache_rows: list[tuple[Any, ...]] = []
        # Unbound functions, not bound methods: a Fold holding its own bound methods
        # is a reference cycle, and a batch's rows (100,000 of them for a big submit)
        # would then wait for the cyclic garbage collector instead of being freed.
        handlers: dict[EventKind, Callable[[Fold, Event], None]] = {
            EventKind.WORKFLOW_SUBMITTED: Fold._submitted,
            EventKind.WORKFLOW_STATE: Fold._workflow_state,
            EventKind.WORKFLOW_JOBS_ADDED: Fold._jobs_added,
            EventKind.JOB_STATE: Fold._job_state,
            EventKind.JOB_LAUNCHED: Fold._launched,
            EventKind.JOB_PROGRESS: Fold._progress,
            EventKind.JOB_OUTPUT: Fold._output,
            # no row changes, as for a warning
            EventKind.NOTIFY_SENT: Fold._warning,
            EventKind.NOTIFY_FAILED: Fold._warning,
            EventKind.JOB_WARNING: Fold._warning,
            EventKind.JOB_CACHED: Fold._cached,
            EventKind.JOB_USAGE: Fold._usage,
        }
        # Keyed by the plain string (a str-Enum member hashes and compares equal
        # to it), so either finds the handler and the value to store, without the
        # cost of EventKind(...) per event.
        self._handlers = {kind.value: (handler, kind.value) for kind, handler in handlers.items()}

    def apply(self, event: Event) -> str:
        """Fold `event` into the rows; returns its kind as the string to store."""
        entry = self._handlers.get(event.kind)
        if entry is None:
            raise BadEvent(f"unknown event kind {event.kind!r}")
        handler, kind = entry
        handler(self, event)
        return kind

    # -- lookups ----------------------------------------------------------------------
    def _workflow(self, event: Event) -> WorkflowRow:
        row = self.workflows.get(event.workflow_id)
        if row is None:
            raise BadEvent(f"{event.kind}: no workflow {event.workflow_id!r}")
        return row

    def _job(self, event: Event) -> JobRow:
        if event.job is None:
            raise BadEvent(f"{event.kind} for workflow {event.workflow_id!r} names no job")
        row = self.jobs.get((event.workflow_id, event.job))
        if row is None:
            raise BadEvent(f"{event.kind}: workflow {event.workflow_id!r} has no job {event.job!r}")
        return row

    # -- workflow events --------------------------------------------------------------
    def _submitted(self, event: Event) -> None:
        wid, now = event.workflow_id, float(event.time)
        if wid in self.workflows:
            raise BadEvent(f"workflow {wid!r} was already submitted")
        spec = event.data["spec"]
        if type(spec) is EncodedJSON:
            text, spec = str(spec), json.loads(spec)
        else:
            text = dumps(spec)
        name = str(event.data.get("name") or spec["name"])
        source = str(event.data.get("source", spec.get("source", "")))
        jobs = [
            _new_job(wid, job_name, position, job, now)
            for position, (job_name, job) in enumerate(spec["jobs"].items())
        ]
        workflow = WorkflowRow(
            wid, name, WorkflowState.RUNNING.value, source, now, now, None, text, new=True
        )
        # Nothing above mutates the fold, so a malformed spec rejects the event cleanly.
        self.workflows[wid] = workflow
        for row in jobs:
            self.jobs[(wid, row.name)] = row

    def _workflow_state(self, event: Event) -> None:
        row = self._workflow(event)
        state = _member(event.data.get("state"), _WORKFLOW_STATES, "workflow state")
        now = float(event.time)
        row.state = state
        row.updated = now
        row.ended = now if state in FINAL_WORKFLOW_STATES else None
        row.dirty = True

    def _jobs_added(self, event: Event) -> None:
        row = self._workflow(event)
        if event.job is not None:
            self._fanned_out(event)
        else:
            self._added(event)
        row.updated = float(event.time)
        row.dirty = True

    def _fanned_out(self, event: Event) -> None:
        """A foreach job replaced by one element per item, listed in its place."""
        template, data = self._job(event), event.data
        items, needs = data.get("items"), data.get("needs", {})
        if not isinstance(items, list) or not items or not isinstance(needs, dict):
            raise BadEvent("workflow.jobs_added: a fan-out needs its items and children")
        wid, now, step = event.workflow_id, float(event.time), 1 / (len(items) + 1)
        for index in range(len(items)):
            name = f"{template.name}[{index}]"
            self.jobs[(wid, name)] = JobRow(
                wid, name, template.position + (index + 1) * step, JobState.PENDING.value,
                0, None, None, None, None, template.host, template.executor, template.needs,
                None, "{}", None, None, now, new=True,
            )  # fmt: skip
        del self.jobs[(wid, template.name)]
        self.deleted.append((wid, template.name))
        for child, parents in needs.items():
            text = dumps(list(parents))
            if (child_row := self.jobs.get((wid, child))) is not None:
                child_row.needs = text
            self.needs_changed.append((text, wid, str(child)))
        # the stored spec keeps the foreach job, with what it fanned out over
        self.spec_patches.append((dumps({"jobs": {template.name: {"items": items}}}), wid))

    def _added(self, event: Event) -> None:
        """Jobs a user added to a running workflow."""
        wid, now, data = event.workflow_id, float(event.time), event.data
        jobs, positions = data.get("jobs"), data.get("positions")
        if not isinstance(jobs, dict) or not jobs or not isinstance(positions, dict):
            raise BadEvent("workflow.jobs_added: jobs and their positions are missing")
        if set(positions) != set(jobs) or any((wid, name) in self.jobs for name in jobs):
            raise BadEvent("workflow.jobs_added: positions must name every new job, once")
        rows = [_new_job(wid, n, float(positions[n]), job, now) for n, job in jobs.items()]
        # Nothing above mutates the fold, so a malformed event is rejected cleanly.
        for new_row in rows:
            self.jobs[(wid, new_row.name)] = new_row
        self.spec_patches.append((dumps({"jobs": jobs}), wid))

    # -- job events -------------------------------------------------------------------
    def _job_state(self, event: Event) -> None:
        row, data, now = self._job(event), event.data, float(event.time)
        state = _member(data.get("state"), _JOB_STATES, "job state")
        attempt = _int(data["attempt"], "attempt") if "attempt" in data else row.attempt
        reason = _opt_str(data.get("reason"), "reason")
        final = state in FINAL_JOB_STATES
        ended = _float(data["ended"], "ended") if final and "ended" in data else now
        if "exit_code" in data:
            exit_code = _opt_int(data["exit_code"], "exit_code")
        else:
            exit_code = row.exit_code if final else None
        # nothing above changed the row: a malformed event leaves it as it was
        if state in _WAITING and row.state not in _WAITING:
            # a new attempt is coming (a retry, a requeue, a workflow retry): what the
            # last one showed is stale
            row.progress = row.message = row.started = None
        elif state == JobState.RUNNING and row.state != JobState.UNREACHABLE:
            row.started = now  # back from `unreachable`, the same attempt kept running
        row.state, row.attempt, row.reason, row.exit_code = state, attempt, reason, exit_code
        if final:
            ended = min(ended, now)
            row.ended = ended if row.started is None else max(ended, row.started)
        else:
            row.ended = None
        if "handle" in data:  # the launch names the attempt's handle; a new attempt clears it
            row.handle = None if data["handle"] is None else dumps(data["handle"])
        if state == JobState.SUCCEEDED and "cache_key" in data:
            key = _str(data["cache_key"], "cache_key")
            origin = (row.workflow_id, row.name, row.attempt)
            self.cache_rows.append(self._cache_row(row, key, origin, row.ended or now))
        self._touch(row, now)

    def _cached(self, event: Event) -> None:
        """An earlier run is reused: the job has its outputs, and is a cache entry
        pointing at that run (its ``succeeded`` event follows)."""
        row, data, now = self._job(event), event.data, float(event.time)
        key = _str(data.get("key"), "key")
        origin = data.get("origin")
        outputs = data.get("outputs", {})
        if not isinstance(origin, dict) or not isinstance(outputs, dict):
            raise BadEvent("job.cached: origin and outputs must be objects")
        source = (
            _str(origin.get("workflow_id"), "origin workflow"),
            _str(origin.get("job"), "origin job"),
            _int(origin.get("attempt"), "origin attempt"),
        )
        row.outputs = dumps(outputs)
        self.cache_rows.append(self._cache_row(row, key, source, now))
        self._touch(row, now)

    def _cache_row(
        self, row: JobRow, key: str, origin: tuple[str, str, int], ended: float
    ) -> tuple[Any, ...]:
        name = self.workflows[row.workflow_id].name if row.workflow_id in self.workflows else ""
        return (name, key, row.workflow_id, row.name, row.attempt, *origin, row.outputs, ended)

    def _launched(self, event: Event) -> None:
        row = self._job(event)
        row.handle = dumps(event.data["handle"])
        self._touch(row, float(event.time))

    def _progress(self, event: Event) -> None:
        row, data = self._job(event), event.data
        progress = data.get("progress")
        value = None if progress is None else _float(progress, "progress")
        message = _opt_str(data["message"], "message") if "message" in data else row.message
        if value is not None:
            row.progress = value
        row.message = message
        self._touch(row, float(event.time))

    def _output(self, event: Event) -> None:
        row, data = self._job(event), event.data
        key = data["key"]
        if not isinstance(key, str):
            raise BadEvent(f"job.output: key must be a string, not {key!r}")
        outputs = json.loads(row.outputs)
        outputs[key] = data.get("value")
        row.outputs = dumps(outputs)
        self._touch(row, float(event.time))

    def _warning(self, event: Event) -> None:
        # No row changes, but the event must still belong to something that exists.
        if event.job is None:
            self._workflow(event)
        else:
            self._job(event)

    def _usage(self, event: Event) -> None:
        # An attempt's record for the run report: no row changes (the row shows the
        # job's current attempt; the report reads these events), but it must fit.
        self._job(event)
        data = event.data
        _int(data.get("attempt"), "attempt")
        if not isinstance(data.get("usage", {}), dict):
            raise BadEvent(f"job.usage: usage must be an object, not {data['usage']!r}")

    @staticmethod
    def _touch(row: JobRow, now: float) -> None:
        row.updated = now
        row.dirty = True


def _new_job(wid: str, name: str, position: float, job: dict[str, Any], now: float) -> JobRow:
    needs = job.get("needs", [])
    if not isinstance(needs, list):
        raise BadEvent(f"workflow.submitted: needs of job {name!r} is not a list")
    host, executor = str(job.get("host", "localhost")), str(job.get("executor", "local"))
    return JobRow(
        wid, name, position, JobState.PENDING.value, 0, None, None, None, None,
        host, executor, dumps(needs), None, "{}", None, None, now, new=True,
    )  # fmt: skip


def _member(value: Any, allowed: frozenset[str], what: str) -> str:
    if value not in allowed:
        raise BadEvent(f"{value!r} is not a {what} (one of {', '.join(sorted(allowed))})")
    return str(value.value if isinstance(value, JobState | WorkflowState) else value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent(f"{what} must be an integer, not {value!r}")
    return value


def _opt_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEvent(f"{what} must be a number, not {value!r}")
    return float(value)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadEvent(f"{what} must be a non-empty string, not {value!r}")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadEvent(f"{what} must be a string, not {value!r}")
    return value
