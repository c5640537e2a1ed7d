"""The executor protocol: the only thing the engine knows about running a job.

An executor turns a `LaunchRequest` into an `Attempt`.  The attempt's `handle`
is plain JSON that the engine persists before it waits, so that a restarted
daemon can `adopt` the same attempt again.  Executors map their own failures to
`LaunchError`; the engine never sees an OSError, SSH or Slurm exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ccd.executors.environment import NO_ENVIRONMENT, Environment
from ccd.spec.model import Job
from ccd.states import JobState
from ccd.usage import Usage


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    workflow_id: str
    job: Job
    attempt: int
    #: the shell text the job runs (``run:`` after substitution, or the script's command line)
    command: str
    #: variables added to the job's environment with literal values (CCD_*, parents' outputs)
    env: dict[str, str] = field(default_factory=dict)
    #: the job's ``env:``, each value one sh word that may expand ``$NAME``
    exports: dict[str, str] = field(default_factory=dict)
    #: the software environment set up before the command (job's over host's)
    environment: Environment = NO_ENVIRONMENT


@dataclass(frozen=True, slots=True)
class ExitStatus:
    #: the job's exit code; None when it was killed before the wrapper could write one
    exit_code: int | None
    #: when the attempt ended (epoch seconds)
    ended: float
    #: a ccd reason when the exit code alone does not tell (e.g. ``lost``)
    reason: str | None = None
    #: the outcome when the executor knows better than the exit code (a batch
    #: system's TIMEOUT or CANCELLED); None: the exit code decides
    state: JobState | None = None
    #: what the attempt cost (CPU, peak RSS, ...), if its executor could tell
    usage: Usage | None = None


class LaunchError(Exception):
    """The attempt could not be started; the message says why (shown to the user)."""


class Attempt(Protocol):
    #: JSON-able data that finds this attempt again after a daemon restart
    handle: dict[str, Any]
    #: the local file that holds (a mirror of) the attempt's log
    log_path: Path
    #: resolves with the attempt's exit status (never cancelled by the engine)
    exited: asyncio.Future[ExitStatus]

    def log_chunks(self) -> AsyncIterator[bytes]:
        """Yield the log's bytes as they appear; end after the attempt ended and all was read."""
        ...

    async def kill(self, grace: float) -> None:
        """TERM the attempt's whole process group, KILL it after ``grace`` seconds."""
        ...

    #: True when the batch system enforces the job's time limit itself
    enforces_timeout: bool
    #: the job's state once launched: running, or queued in a batch system
    launched_state: JobState

    def on_state(self, listener: Callable[[JobState, str | None], None]) -> None:
        """Call `listener(state, reason)` when the executor sees the attempt change:
        ``queued``/``running`` in a batch queue, ``unreachable`` when its host drops."""
        ...

    def on_warning(self, listener: Callable[[str], None]) -> None:
        """Call `listener(message)` for trouble that does not change the attempt's state
        (e.g. the batch system could not be asked)."""
        ...


class Executor(Protocol):
    async def ready(self, host: str) -> None:
        """Wait until `host` can take a launch; raise LaunchError if it never will.

        The engine may cancel this wait (a cancelled job); `launch` itself is not
        cancelled once started, so an executor never leaves a launch half known.
        """
        ...

    async def launch(self, request: LaunchRequest) -> Attempt: ...

    async def adopt(self, handle: dict[str, Any]) -> Attempt:
        """Re-attach to an attempt launched by an earlier daemon."""
        ...

    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        """The handle of an attempt that was started but never recorded (the daemon
        died between launch and commit), found where the job protocol put it; None
        if that attempt never started."""
        ...

    async def close(self) -> None: ...
