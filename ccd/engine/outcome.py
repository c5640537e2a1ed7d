"""How an attempt ended, in the engine's words (pure: no I/O, no event loop).

An executor reports an `ExitStatus`; this module turns it into an `Outcome`
(the job's next state and reason), names the failure kind ``retry_on`` matches,
says whether and when a failed attempt is retried, and writes the short "why"
text shown with a retry.
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ccd.states import JobState

if TYPE_CHECKING:
    from ccd.executors.base import ExitStatus
    from ccd.spec.model import Job

#: batch-system reasons that are their own failure kinds for ``retry_on``
_BATCH_KINDS = frozenset({"oom", "node_fail", "preempted", "boot_fail"})


@dataclass(slots=True)
class Outcome:
    state: JobState
    reason: str | None = None
    exit_code: int | None = None
    #: when the attempt ended by its executor's account (the exit file's time), which
    #: for an attempt that ended while no daemon ran is earlier than its final event
    ended: float | None = None


def describe_exit(code: int) -> str:
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"exit code {code} ({signal.Signals(code - 128).name})"
    return f"exit code {code}"


def exit_reason(code: int, last_line: str | None = None) -> str | None:
    """Why an attempt that exited `code` failed: the signal that killed it, else the
    code and the last line of its log (None for a success)."""
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"terminated by {signal.Signals(code - 128).name}"
    if code == 0:
        return None
    return f"exit {code}: {last_line}" if last_line else f"exit {code}"


def outcome_of(status: ExitStatus, last_line: str | None = None) -> Outcome:
    """The outcome of an attempt that ended by itself (not killed by the engine);
    `last_line` is the last line of its log (not a marker), if it wrote one."""
    code, ended = status.exit_code, status.ended
    if status.state is not None:
        reason = status.reason
        if reason is None and status.state is JobState.FAILED and code is not None:
            reason = exit_reason(code, last_line)
        return Outcome(status.state, reason=reason, exit_code=code, ended=ended)
    if code == 0:
        return Outcome(JobState.SUCCEEDED, exit_code=0, ended=ended)
    if code is None:
        return Outcome(JobState.FAILED, reason=status.reason or "lost", ended=ended)
    return Outcome(
        JobState.FAILED, reason=exit_reason(code, last_line), exit_code=code, ended=ended
    )


def failure_kind(outcome: Outcome) -> str:
    """What a failed attempt failed of (one of RETRY_KINDS)."""
    if outcome.state is JobState.TIMED_OUT:
        return "timeout"
    if outcome.reason is not None and outcome.reason in _BATCH_KINDS:
        return outcome.reason
    if outcome.exit_code is None and outcome.reason and outcome.reason.startswith("lost"):
        return "lost"
    return "exit"


def why(outcome: Outcome) -> str:
    """The shortest text that says why an attempt did not succeed."""
    if outcome.reason:
        return outcome.reason
    if outcome.exit_code is not None:
        return describe_exit(outcome.exit_code)
    return outcome.state.value


def retry_delay(job: Job, attempt: int, outcome: Outcome) -> float | None:
    """Seconds before retrying `job` after its attempt number `attempt` ended with
    `outcome`; None when it is not retried (succeeded, out of retries, or a failure
    kind its ``retry_on`` leaves out)."""
    if outcome.state not in (JobState.FAILED, JobState.TIMED_OUT) or attempt > job.retries:
        return None
    if job.retry_on is not None and failure_kind(outcome) not in job.retry_on:
        return None
    # `attempt` is also the 1-based number of the retry about to happen
    return job.retry_delay * job.retry_backoff ** (attempt - 1)


def retry_reason(job: Job, attempt: int, outcome: Outcome, delay: float) -> str:
    """The reason recorded with the queued state of a retry."""
    return f"{why(outcome)}; retry {attempt}/{job.retries} in {delay:g}s"
