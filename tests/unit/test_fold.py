"""ccd.fold: what each event does to a job's and a workflow's row, table-driven."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from ccd.events import Event, EventKind
from ccd.fold import BadEvent, Fold, JobRow, WorkflowRow
from ccd.states import JOB_TRANSITIONS, JobState

T0 = 1_700_000_000.0
WID = "a1b2c3d4"


def job_row(state: str = "pending", **fields: Any) -> JobRow:
    row = JobRow(
        WID, "train", 0, state, 0, None, None, None, None, "lab", "ssh", "[]", None, "{}",
        None, None, T0,
    )  # fmt: skip
    for key, value in fields.items():
        setattr(row, key, value)
    return row


def fold_of(row: JobRow) -> Fold:
    workflow = WorkflowRow(WID, "mnist", "running", "x.yaml", T0, T0, None)
    return Fold({WID: workflow}, {(WID, row.name): row})


def job_event(kind: EventKind, at: float = 0.0, **data: Any) -> Event:
    return Event(WID, "train", kind, data, T0 + at)


def state(new: str, at: float = 0.0, **data: Any) -> Event:
    return job_event(EventKind.JOB_STATE, at, state=new, **data)


#: (row before, event, the fields that must change to, the rest stays)
JOB_CASES = [
    pytest.param(
        job_row(),
        state("queued", 1, attempt=0),
        {"state": "queued", "updated": T0 + 1},
        id="pending-queued",
    ),
    pytest.param(
        job_row("queued"),
        state("running", 2, attempt=1, handle={"pid": 7}),
        {"state": "running", "attempt": 1, "started": T0 + 2, "handle": '{"pid":7}'},
        id="queued-running-with-handle",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, progress=40.0, message="epoch 4"),
        state("unreachable", 3, attempt=1, reason="host lab unreachable"),
        {"state": "unreachable", "reason": "host lab unreachable"},
        id="running-unreachable-keeps-progress",
    ),
    pytest.param(
        job_row(
            "unreachable",
            attempt=1,
            started=T0,
            progress=40.0,
            message="epoch 4",
            reason="host lab unreachable",
        ),
        state("running", 9, attempt=1),
        {"state": "running", "reason": None},
        id="unreachable-running-keeps-start-progress-message",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, progress=80.0, message="epoch 8"),
        state("failed", 5, attempt=1, exit_code=3, reason="oom"),
        {"state": "failed", "exit_code": 3, "reason": "oom", "ended": T0 + 5},
        id="running-failed",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0),
        state("failed", 600, attempt=1, exit_code=3, reason="exit 3", ended=T0 + 5),
        {"state": "failed", "exit_code": 3, "reason": "exit 3", "ended": T0 + 5},
        id="running-failed-ended-by-the-exit-file-not-the-event",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0 + 2),
        state("succeeded", 9, attempt=1, exit_code=0, ended=T0 + 1),
        {"state": "succeeded", "exit_code": 0, "ended": T0 + 2},
        id="running-succeeded-an-exit-time-before-the-start-is-the-start",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0),
        state("succeeded", 9, attempt=1, exit_code=0, ended=T0 + 60),
        {"state": "succeeded", "exit_code": 0, "ended": T0 + 9},
        id="running-succeeded-an-exit-time-after-the-event-is-the-event",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, progress=80.0, message="epoch 8"),
        state(
            "queued",
            6,
            attempt=1,
            exit_code=3,
            reason="exit 3: bad input; retry 1/2 in 1s",
            handle=None,
        ),
        {
            "state": "queued",
            "exit_code": 3,
            "reason": "exit 3: bad input; retry 1/2 in 1s",
            "progress": None,
            "message": None,
            "started": None,
        },
        id="running-queued-a-retry-forgets-the-attempt",
    ),
    pytest.param(
        job_row("queued", attempt=1, exit_code=3),
        state("running", 7, attempt=2),
        {"state": "running", "attempt": 2, "exit_code": None, "started": T0 + 7},
        id="retry-running-has-no-exit-code-yet",
    ),
    pytest.param(
        job_row("queued", attempt=1, reason="submitted"),
        state("queued", 2, attempt=1, reason="Priority"),
        {"reason": "Priority"},
        id="queued-queued-a-batch-reason",
    ),
    pytest.param(
        job_row("failed", attempt=2, exit_code=1, started=T0, ended=T0 + 1, progress=5.0),
        state("pending", 8, reason="retry"),
        {
            "state": "pending",
            "exit_code": None,
            "reason": "retry",
            "started": None,
            "ended": None,
            "progress": None,
        },
        id="workflow-retry-starts-over",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, exit_code=None),
        state("timed_out", 4, attempt=1, reason="timed out after 3s"),
        {"state": "timed_out", "reason": "timed out after 3s", "ended": T0 + 4},
        id="running-timed-out",
    ),
    pytest.param(
        job_row("queued", attempt=1),
        state("unknown", 2, attempt=0, reason="cannot check yet"),
        {"state": "unknown", "attempt": 0, "reason": "cannot check yet"},
        id="queued-unknown",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0),
        job_event(EventKind.JOB_LAUNCHED, 1, attempt=1, handle={"pid": 9}),
        {"handle": '{"pid":9}'},
        id="launched",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, message="old"),
        job_event(EventKind.JOB_PROGRESS, 2, progress=42.5, message="epoch 3/10"),
        {"progress": 42.5, "message": "epoch 3/10"},
        id="progress",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, progress=42.0, message="old"),
        job_event(EventKind.JOB_PROGRESS, 2, progress=None, message="epoch 4"),
        {"message": "epoch 4"},
        id="progress-message-only-keeps-the-value",
    ),
    pytest.param(
        job_row("running", attempt=1, started=T0, progress=42.0, message="keep"),
        job_event(EventKind.JOB_PROGRESS, 2, progress=50),
        {"progress": 50.0},
        id="progress-value-only-keeps-the-message",
    ),
    pytest.param(
        job_row("running", outputs='{"a":"1"}'),
        job_event(EventKind.JOB_OUTPUT, 3, key="acc", value="0.97"),
        {"outputs": '{"a":"1","acc":"0.97"}'},
        id="output",
    ),
]


@pytest.mark.parametrize(("before", "event", "changes"), JOB_CASES)
def test_a_job_event_changes_exactly_these_fields(
    before: JobRow, event: Event, changes: dict[str, Any]
) -> None:
    expected = {**asdict(before), "updated": event.time, "dirty": True, **changes}
    fold = fold_of(before)
    assert fold.apply(event) == event.kind.value
    assert asdict(fold.jobs[(WID, "train")]) == expected


def test_a_warning_changes_no_row() -> None:
    row = job_row("running")
    fold = fold_of(row)
    before = asdict(row)
    fold.apply(job_event(EventKind.JOB_WARNING, 1, message="bad marker"))
    assert asdict(row) == before


def test_running_unreachable_running_keeps_the_attempt_whole() -> None:
    """The sequence `ccctl watch` used to get wrong: elapsed and progress survive."""
    row = job_row("queued")
    fold = fold_of(row)
    events = [
        state("running", 1, attempt=1, handle={"pid": 1}),
        job_event(EventKind.JOB_PROGRESS, 2, progress=30.0, message="epoch 3"),
        state("unreachable", 3, attempt=1, reason="host lab unreachable"),
        state("running", 20, attempt=1),
        state("succeeded", 30, attempt=1, exit_code=0),
    ]
    for event in events:
        fold.apply(event)
    assert (row.state, row.started, row.ended) == ("succeeded", T0 + 1, T0 + 30)
    assert (row.progress, row.message, row.exit_code, row.reason) == (30.0, "epoch 3", 0, None)


@pytest.mark.parametrize("old", list(JobState))
def test_every_allowed_transition_folds(old: JobState) -> None:
    for new in JOB_TRANSITIONS[old]:
        row = job_row(old.value, attempt=1, started=T0)
        fold_of(row).apply(state(new.value, 1, attempt=1))
        assert row.state == new.value
        assert (row.ended is not None) is new.is_final


WORKFLOW_CASES = [
    pytest.param("succeeded", T0 + 5, id="succeeded"),
    pytest.param("failed", T0 + 5, id="failed"),
    pytest.param("cancelled", T0 + 5, id="cancelled"),
    pytest.param("running", None, id="running-again"),
]


@pytest.mark.parametrize(("new", "ended"), WORKFLOW_CASES)
def test_workflow_state(new: str, ended: float | None) -> None:
    fold = fold_of(job_row())
    fold.apply(Event(WID, None, EventKind.WORKFLOW_STATE, {"state": new}, T0 + 5))
    row = fold.workflows[WID]
    assert (row.state, row.ended, row.updated, row.dirty) == (new, ended, T0 + 5, True)


def test_submitted_creates_the_workflow_and_pending_jobs() -> None:
    fold = Fold({}, {})
    spec = {"name": "w", "jobs": {"a": {"host": "lab", "executor": "ssh"}, "b": {"needs": ["a"]}}}
    fold.apply(Event("w1", None, EventKind.WORKFLOW_SUBMITTED, {"spec": spec, "source": "s"}, T0))
    assert (fold.workflows["w1"].name, fold.workflows["w1"].state) == ("w", "running")
    a, b = fold.jobs[("w1", "a")], fold.jobs[("w1", "b")]
    assert (a.position, a.state, a.host, a.executor) == (0, "pending", "lab", "ssh")
    assert (b.position, b.host, b.executor, json.loads(b.needs)) == (1, "localhost", "local", ["a"])


BAD_EVENTS = [
    pytest.param(state("sleeping"), "is not a job state", id="unknown-state"),
    pytest.param(state("running", attempt="1"), "attempt must be an integer", id="bad-attempt"),
    pytest.param(state("failed", exit_code=1.5), "exit_code must be an integer", id="bad-exit"),
    pytest.param(state("failed", reason=3), "reason must be a string", id="bad-reason"),
    pytest.param(state("failed", ended="soon"), "ended must be a number", id="bad-ended"),
    pytest.param(
        job_event(EventKind.JOB_PROGRESS, progress="x"), "progress must be a number", id="bad-pct"
    ),
    pytest.param(
        Event(WID, "nope", EventKind.JOB_STATE, {"state": "queued"}), "has no job", id="unknown-job"
    ),
    pytest.param(
        Event("zz", None, EventKind.WORKFLOW_STATE, {"state": "failed"}),
        "no workflow",
        id="unknown-workflow",
    ),
    pytest.param(Event(WID, None, "job.exploded", {}), "unknown event kind", id="unknown-kind"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("event", "message"), BAD_EVENTS)
def test_a_bad_event_is_rejected_and_changes_nothing(event: Event, message: str) -> None:
    row = job_row("running", attempt=1, started=T0, progress=10.0)
    fold = fold_of(row)
    before = (asdict(row), asdict(fold.workflows[WID]))
    with pytest.raises(BadEvent, match=message):
        fold.apply(event)
    assert (asdict(row), asdict(fold.workflows[WID])) == before
