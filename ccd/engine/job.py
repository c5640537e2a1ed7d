"""One job of a running workflow: its in-memory state, and how its changes are recorded.

`JobRun` is what the engine keeps per job; `JobEvents` turns a job's changes
into events through the store (the store folds them into the job's row).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ccd.events import Event, EventKind
from ccd.spec.model import Job
from ccd.states import JobState, check_transition
from ccd.store import Store

#: states of a job whose stored handle names its current attempt (adopted on recovery)
LAUNCHED = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.UNREACHABLE})


@dataclass(eq=False, slots=True)
class JobRun:
    """The runtime state of one job of a running workflow (slots: a workflow may hold
    100,000 of these)."""

    spec: Job
    state: JobState = JobState.PENDING
    attempt: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    #: executor handle of the current attempt (recovery adopts it)
    handle: dict[str, Any] | None = None
    #: wall-clock start of the current attempt (timeouts count from it)
    started_at: float | None = None
    #: the job whose failure or cancel made this one final, for children's reasons
    root_cause: str | None = None
    #: final in this run (its children may start)
    done: bool = False
    #: parents not final yet; the job's task starts when this reaches 0
    blocking: int = 0
    #: the job's task, from when it is ready until it is final
    task: asyncio.Task[None] | None = None
    running: bool = False
    cancel_reason: str | None = None
    #: the reason recorded with the current state
    reason: str | None = None
    #: loaded from the store by a new daemon: its next attempt may already exist
    recovered: bool = False
    #: the cache key of the job's current run (None: it has none, e.g. ``cache: false``)
    cache_key: str | None = None
    #: what `JobCache` decided, recorded with the job's next launch event
    cache_note: dict[str, Any] | None = None
    #: its outcome is an earlier run's, reused (so its success is no cache entry of its own)
    reused: bool = False
    #: must run, not reuse an earlier run (a rerun asked for it)
    fresh: bool = False
    #: set by a cancel while the job runs (a future: the monitor waits on it directly)
    kill_requested: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def name(self) -> str:
        return self.spec.name


class JobEvents:
    """Records the changes of one workflow's jobs as events (not awaited: the store
    commits them in order, in batches)."""

    __slots__ = ("_store", "_workflow_id")

    def __init__(self, store: Store, workflow_id: str) -> None:
        self._store = store
        self._workflow_id = workflow_id

    def emit(self, job: str | None, kind: EventKind, **data: Any) -> asyncio.Future[int]:
        return self._store.emit(Event(self._workflow_id, job, kind, data))

    def set_state(
        self, jr: JobRun, new: JobState, *, forget_handle: bool = False, **data: Any
    ) -> None:
        check_transition(jr.state, new)
        jr.state = new
        jr.reason = data.get("reason")
        payload = {k: v for k, v in data.items() if v is not None}
        payload.setdefault("attempt", jr.attempt)
        if forget_handle:
            # queued for a new attempt: the last attempt's handle must not be adopted
            # after a crash before the launch
            jr.handle = None
            payload["handle"] = None
        self.emit(jr.name, EventKind.JOB_STATE, state=new.value, **payload)

    def warn(self, jr: JobRun, message: str) -> None:
        self.emit(jr.name, EventKind.JOB_WARNING, message=message)
