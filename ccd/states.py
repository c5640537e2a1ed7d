"""Job and workflow states and the transitions allowed between them (pure)."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    #: waiting for its parents to finish
    PENDING = "pending"
    #: parents succeeded; waiting for a free slot or for the batch scheduler
    QUEUED = "queued"
    #: the job's process is running
    RUNNING = "running"
    #: launched on a remote host that cannot be reached right now; ccd reconnects
    UNREACHABLE = "unreachable"
    #: recovered after a daemon crash, and whether its next attempt already started
    #: cannot be checked yet (its host is down); ccd waits until it can, then adopts
    #: or launches it -- never both, and never fails it for being out of reach
    UNKNOWN = "unknown"
    #: exited with code 0
    SUCCEEDED = "succeeded"
    #: exited non-zero, could not be launched, or was lost
    FAILED = "failed"
    #: killed by ccd because it ran past its ``timeout``
    TIMED_OUT = "timed_out"
    #: cancelled by the user (or a cancelled ancestor)
    CANCELLED = "cancelled"
    #: never ran because an ancestor did not succeed
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATES


FINAL_JOB_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED, JobState.SKIPPED}
)

#: Final states a `retry` of the workflow runs again.
RETRYABLE_JOB_STATES = frozenset(
    {JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED, JobState.SKIPPED}
)

_P, _Q, _R = JobState.PENDING, JobState.QUEUED, JobState.RUNNING
_S, _F, _T = JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT
_C, _K, _U = JobState.CANCELLED, JobState.SKIPPED, JobState.UNREACHABLE
_X = JobState.UNKNOWN

#: Every allowed transition.  A retry attempt goes RUNNING -> QUEUED; a workflow
#: retry moves a retryable final state back to PENDING, and a rerun any final one.
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # pending -> succeeded: an earlier run of the job is reused (--resume)
    _P: frozenset({_Q, _C, _K, _F, _S}),
    # a batch job can start and end between two looks at the queue: queued -> final;
    # and fail there, so its retry is queued again straight from queued
    _Q: frozenset({_Q, _R, _C, _F, _P, _S, _T, _X}),
    _R: frozenset({_S, _F, _T, _C, _Q, _U}),
    _U: frozenset({_R, _S, _F, _T, _C, _Q}),
    # once the host answers: adopted or launched (running), or the launch failed
    _X: frozenset({_R, _Q, _F, _C}),
    _S: frozenset({_P}),
    _F: frozenset({_P}),
    _T: frozenset({_P}),
    _C: frozenset({_P}),
    _K: frozenset({_P}),
}


class WorkflowState(StrEnum):
    #: at least one job is not final
    RUNNING = "running"
    #: every job succeeded
    SUCCEEDED = "succeeded"
    #: all jobs are final and at least one failed, timed out or was skipped
    FAILED = "failed"
    #: the user cancelled the workflow
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_WORKFLOW_STATES


#: A str-Enum member equals its value, so the sets answer for plain strings too
#: (``"failed" in FINAL_JOB_STATES``): clients that hold states as JSON text use them.
FINAL_WORKFLOW_STATES = frozenset(
    {WorkflowState.SUCCEEDED, WorkflowState.FAILED, WorkflowState.CANCELLED}
)


class InvalidTransition(Exception):
    """A bug: the engine tried a transition the table does not allow."""


def check_transition(old: JobState, new: JobState) -> None:
    if new not in JOB_TRANSITIONS[old]:
        raise InvalidTransition(f"job state {old.value} -> {new.value} is not allowed")


def workflow_state(job_states: list[JobState], cancelled: bool) -> WorkflowState:
    """The workflow's state as a function of its jobs' states."""
    if any(not s.is_final for s in job_states):
        return WorkflowState.RUNNING
    if cancelled:
        return WorkflowState.CANCELLED
    if all(s is JobState.SUCCEEDED for s in job_states):
        return WorkflowState.SUCCEEDED
    # skipped with nothing failed or cancelled: only an empty foreach list (and what
    # needs it) does that, and nothing to do is done
    if all(s in (JobState.SUCCEEDED, JobState.SKIPPED) for s in job_states):
        return WorkflowState.SUCCEEDED
    if any(s is JobState.CANCELLED for s in job_states) and not any(
        s in (JobState.FAILED, JobState.TIMED_OUT) for s in job_states
    ):
        return WorkflowState.CANCELLED
    return WorkflowState.FAILED
