"""What `Client` and `AsyncClient` return: the API's answers (`ccd.api.models`) as
plain dataclasses.

Dataclasses, not the API's pydantic models: a client should not pay pydantic's
import (~100 ms) to read a status.  Each is built from the answer's JSON with
`from_json`, which ignores fields it does not know, so a newer daemon's extra
fields never break an older client.  States are the text values of
`ccd.states.JobState` and `WorkflowState` (``"running"``, ``"succeeded"``, …).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from ccd.states import FINAL_WORKFLOW_STATES

__all__ = [
    "Cancelled",
    "Event",
    "JobStatus",
    "Retried",
    "WorkflowRef",
    "WorkflowStatus",
    "WorkflowSummary",
]

_T = TypeVar("_T")

#: each result class's field names, looked up once
_FIELDS: dict[type, frozenset[str]] = {}


def _build(cls: type[_T], data: dict[str, Any], **values: Any) -> _T:
    known = _FIELDS.get(cls)
    if known is None:
        known = _FIELDS[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
    return cls(**{**{k: v for k, v in data.items() if k in known}, **values})


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """A submitted workflow (`Submitted`); pass it wherever a workflow is asked for."""

    id: str
    name: str
    #: how many jobs (array elements counted one by one)
    jobs: int

    def __str__(self) -> str:
        return self.id

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowRef:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """A row of ``ccctl ls`` (`WorkflowSummary`)."""

    id: str
    name: str
    state: str
    source: str
    created: float
    updated: float
    ended: float | None
    #: jobs per state
    counts: dict[str, int]

    @property
    def final(self) -> bool:
        return self.state in FINAL_WORKFLOW_STATES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowSummary:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job of a status: its stored row."""

    name: str
    state: str
    attempt: int = 0
    #: 0..100, or None when the job reported none
    progress: float | None = None
    message: str | None = None
    exit_code: int | None = None
    #: why it failed, was skipped or cancelled
    reason: str | None = None
    host: str = "localhost"
    executor: str = "local"
    needs: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    updated: float | None = None
    #: how the executor finds the attempt again (pid, Slurm id, run directory, …)
    handle: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobStatus:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    """A workflow and its jobs, in file order: what ``ccctl status`` shows."""

    id: str
    name: str
    state: str
    source: str
    created: float
    updated: float
    ended: float | None
    counts: dict[str, int]
    #: the last event this status may reflect (follow the events from here)
    seq: int
    jobs: list[JobStatus]

    @property
    def final(self) -> bool:
        return self.state in FINAL_WORKFLOW_STATES

    def job(self, name: str) -> JobStatus:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowStatus:
        return _build(cls, data, jobs=[JobStatus.from_json(job) for job in data["jobs"]])


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the workflow's log (``ccctl events``); `kind` is an
    `ccd.events.EventKind` value such as ``job.state`` or ``job.progress``."""

    seq: int
    workflow_id: str
    job: str | None
    kind: str
    time: float
    data: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return _build(cls, data)

    @property
    def text(self) -> str:
        """The event on one line, as ``ccctl events`` prints it (without the time)."""
        from ccd.cli.format import event_text

        return event_text({"kind": self.kind, "job": self.job, "data": self.data})


@dataclass(frozen=True, slots=True)
class Cancelled:
    id: str
    #: the job cancelled (with its descendants), or "workflow"
    cancelled: str
    #: events after this sequence number tell how the cancel went
    seq: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cancelled:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Added:
    id: str
    #: the jobs added, in order
    added: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Added:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class Retried:
    id: str
    #: the jobs set to run again
    retried: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retried:
        return _build(cls, data)
