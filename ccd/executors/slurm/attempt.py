"""`SlurmAttempt`: one batch job as the engine sees it, driven by its cluster's poller.

The poller hands each attempt what ``squeue`` or ``sacct`` said about it (or that
neither knew it); the attempt turns that into ``queued``/``running`` changes and,
once the job is over, into an `ExitStatus`, reading the wrapper's exit file and
Slurm's notices in the log where Slurm's own state does not tell enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ccd.executors.base import ExitStatus, LaunchError
from ccd.executors.follow import PolledAttempt, StateListener
from ccd.executors.slurm.access import RunFiles
from ccd.executors.slurm.model import (
    Accounting,
    QueueEntry,
    final_verdict,
    memory_exceeded,
    queue_state,
    slurm_notice,
)
from ccd.executors.slurm.poller import SlurmPoller
from ccd.states import JobState
from ccd.usage import Usage

log = logging.getLogger(__name__)

#: polls a job may be missing from squeue before its exit file alone decides
GRACE_POLLS = 3
#: polls a cancelled job's log may be waited on for Slurm's notice line
NOTICE_POLLS = 2
#: after the kill's grace, how long a failing scancel keeps being retried (seconds)
CANCEL_RETRY_FOR = 30
#: polls an ended job waits for accounting to know its end (and what it cost)
ACCOUNTING_POLLS = 1


class SlurmAttempt(PolledAttempt):
    enforces_timeout = True
    launched_state = JobState.QUEUED

    def __init__(
        self,
        poller: SlurmPoller,
        slurm_id: str,
        files: Callable[[SlurmAttempt], RunFiles],
        handle: dict[str, Any],
    ) -> None:
        self.slurm_id = slurm_id
        self.handle = handle
        self.submitted = float(handle.get("submitted", time.time()))
        self._seen: JobState | None = None
        self._reason: str | None = None
        self._missing = 0
        self._notice_polls = 0
        self._accounting_polls = 0
        self.files = files(self)
        super().__init__(self.files.log_path)
        self._poller = poller
        poller.follow(self)

    def __repr__(self) -> str:
        return f"<slurm attempt {self.slurm_id}>"

    def running(self) -> bool:
        return self._seen is JobState.RUNNING

    def on_state(self, listener: StateListener) -> None:
        super().on_state(listener)
        if self._seen is None:
            self._seen, self._reason = JobState.QUEUED, "submitted"
        listener(self._seen, self._reason)

    def _tell(self, state: JobState, reason: str | None) -> None:
        self._seen, self._reason = state, reason
        self.tell(state, reason)

    # -- the poller's side ------------------------------------------------------------
    async def update(self, entry: QueueEntry | None, record: Accounting | None) -> None:
        """Apply what squeue (`entry`) or sacct (`record`) said; neither: not known."""
        if self.exited.done():
            return
        if entry is not None:
            self._missing = 0
            await self._queued(entry, record)
        elif record is not None and queue_state(record.state) is None:
            await self._conclude(
                record.state, record.exit_code, record.signal, record.end, record.usage
            )
        else:
            await self._missed()

    async def _queued(self, entry: QueueEntry, record: Accounting | None) -> None:
        """Still in squeue's answer: pending, running, or ended within MinJobAge."""
        state = queue_state(entry.state)
        if state is None:
            if record is None or queue_state(record.state) is not None:
                if self._accounting_lags():
                    return  # accounting has not got the job's end (and its usage) yet
                record = None
            usage = None if record is None else record.usage
            await self._conclude(entry.state, None, None, usage=usage)
            return
        # a requeued job (node failure, preemption, `scontrol requeue`) is
        # PENDING again under the same id: queued, nothing resubmitted
        reason = entry.reason if state is JobState.QUEUED and entry.reason != "None" else None
        if (state, reason) != (self._seen, self._reason):
            self._tell(state, reason)
        if state is JobState.RUNNING:
            await self.files.sync()

    def _accounting_lags(self) -> bool:
        """Whether to wait one more poll for sacct, which learns of a job's end a moment
        after squeue (slurmctld tells slurmdbd in the background), on a cluster that
        has accounting: its figures (all steps, srun's too) beat the wrapper's."""
        if self._poller.sacct is not True or self._accounting_polls >= ACCOUNTING_POLLS:
            return False
        self._accounting_polls += 1
        return True

    async def _missed(self) -> None:
        """Not in the queue any more (aged out, or Slurm lost it), no accounting.

        The wrapper's exit file decides, else Slurm's notice in the log.  Only after
        a few polls: squeue can miss a job for one look (seen while a requeued job
        waited for its BeginTime), and a requeued job's killed first run left an
        exit file that its next run has not reset yet.  If accounting still says
        PENDING/RUNNING, it has not got the end yet, or never will (a "runaway job").
        """
        self._missing += 1
        if self._missing < GRACE_POLLS:
            return
        code, written = await self.files.exit_file()
        if code is not None:
            await self._finish(ExitStatus(code, written or time.time()))
            return
        await self.files.sync()
        notice = slurm_notice(self.files.tail())
        if notice is not None and notice.state is not JobState.QUEUED:
            await self._finish(
                ExitStatus(None, time.time(), reason=notice.reason, state=notice.state)
            )
            return
        await self._finish(
            ExitStatus(None, time.time(), reason="lost: not in Slurm's queue and no exit code")
        )

    async def _conclude(
        self,
        slurm_state: str,
        code: int | None,
        signal: int | None,
        end: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        """A terminal Slurm state: the exit file gives the job's own exit code, and
        when it ended (else sacct's `end`; a new daemon may learn of it much later)."""
        wrapper_code, written = await self.files.exit_file()
        ended = written or end or time.time()
        verdict = final_verdict(slurm_state, wrapper_code if code is None else code, signal)
        if verdict is None:
            log.warning("Slurm job %s in unknown state %s", self.slurm_id, slurm_state)
            return
        exit_code = wrapper_code if wrapper_code is not None else verdict.exit_code
        reason = verdict.reason
        if verdict.state is JobState.SUCCEEDED:
            exit_code = 0
        elif verdict.state is JobState.CANCELLED and reason == "cancelled":
            await self.files.sync()
            notice = slurm_notice(self.files.tail())
            if notice is None and self._notice_polls < NOTICE_POLLS:
                # slurmstepd writes its notice after the controller marks the job
                self._notice_polls += 1
                return
            # squeue does not say who; only accounting does ("CANCELLED by 1000")
            reason = "cancelled in Slurm, not by ccd" + (f": {notice.line}" if notice else "")
        elif verdict.state is JobState.FAILED and reason is None:
            await self.files.sync()
            if memory_exceeded(self.files.tail()):
                reason = "oom"  # Slurm's memory limit killed it: FAILED, signal 9
            elif wrapper_code is None and signal:
                # sacct's 0:9: no exit code of the job's own, a signal ended it
                exit_code, reason = None, f"killed by signal {signal} in Slurm"
            elif exit_code is None:
                reason = "failed in Slurm"
        await self._finish(
            ExitStatus(exit_code, ended, reason=reason, state=verdict.state, usage=usage)
        )

    async def _finish(self, status: ExitStatus) -> None:
        if self.exited.done():
            return
        self._poller.unfollow(self)
        with contextlib.suppress(Exception):  # the log copy is best effort at the end
            await asyncio.wait_for(self.files.sync(), 30)
        wrapper: Usage | None = None
        with contextlib.suppress(Exception):  # so are the wrapper's figures
            wrapper = await asyncio.wait_for(self.files.usage(), 30)
        usage = wrapper if status.usage is None else status.usage.over(wrapper)
        self.settle(replace(status, usage=usage))
        await self.files.close(status.exit_code)

    # -- the engine's side -------------------------------------------------------------
    async def kill(self, grace: float) -> None:
        """scancel (batched with others), and wait for Slurm to end the job.

        A failing scancel (controller down) is retried every poll interval until
        ``grace`` + 30 s have passed; the user is told which jobs may still be alive.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + CANCEL_RETRY_FOR
        warned = False
        while not self.exited.done():
            try:
                await self._poller.cancel(self)
            except LaunchError as exc:
                if not warned or loop.time() >= deadline:
                    self.warn(str(exc))
                    warned = True
                if loop.time() >= deadline:
                    return
                # a retry after a failure, cut short by the job's end: not a poll
                await asyncio.wait({self.exited}, timeout=self._poller.interval)
                continue
            await asyncio.wait({self.exited}, timeout=max(0.0, deadline - loop.time()))
            return
