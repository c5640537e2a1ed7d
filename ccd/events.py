"""Events: the append-only record of everything that happens (pure data).

Every state change is an `Event`.  The store appends it to the ``events`` table
and folds it into the ``workflows``/``jobs`` tables in the same transaction, so
the current-state tables are always the fold of the event log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    #: data: {name, spec (Workflow as JSON), source}; creates the workflow and its jobs (pending)
    WORKFLOW_SUBMITTED = "workflow.submitted"
    #: data: {state, reason?}; the workflow's state changed
    WORKFLOW_STATE = "workflow.state"
    #: jobs joined a running workflow. A foreach job's elements: the event's job is
    #: the foreach job, which they replace; data {items (the item texts), needs (its
    #: children's new parents), reason}. Jobs a user added: data {jobs: {name: Job as
    #: JSON}, positions: {name: listing position}, reason}
    WORKFLOW_JOBS_ADDED = "workflow.jobs_added"
    #: data: {state, attempt?, reason?, exit_code?, handle?, cache?, cache_key?}; a
    #: job's state changed; its first launch (``running``, a batch job's ``queued``)
    #: carries its cache key and what it was made of (``cache``), its ``succeeded``
    #: the key it ran with; the
    #: ``running`` event of an attempt carries its executor handle (how to find it again)
    JOB_STATE = "job.state"
    #: data: {attempt, handle}; an executor handle recorded on its own (e.g. a re-adoption)
    JOB_LAUNCHED = "job.launched"
    #: data: {progress (0..100 or null), message?}
    JOB_PROGRESS = "job.progress"
    #: data: {key, value}; a small value children can use
    JOB_OUTPUT = "job.output"
    #: a notification was delivered; the event's job is the failed job it was about.
    #: data: {notice (its id: the trigger's seq and the notifier's digest), on (the
    #: event it told of), to (the notifier, without URL), attempts, trigger (a seq)}
    NOTIFY_SENT = "notify.sent"
    #: a notification was given up after its last attempt: notify.sent's data, and error
    NOTIFY_FAILED = "notify.failed"
    #: data: {message}; something the user should see, never fatal
    JOB_WARNING = "job.warning"
    #: data: {key, parts, origin: {workflow_id, job, attempt}, outputs, reason}; the
    #: job's earlier run with the same cache key is reused (its ``succeeded`` follows)
    JOB_CACHED = "job.cached"
    #: data: {attempt, outcome (the attempt's end state), exit_code?, reason?, ended, usage?
    #: (`ccd.usage.Usage` as data)}; an attempt ended, and what it cost: the run report's
    #: record of it, also of attempts that were retried
    JOB_USAGE = "job.usage"


@dataclass(frozen=True, slots=True)
class Event:
    workflow_id: str
    job: str | None
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
