"""One attempt's life: launched (or found again, or adopted), followed to its end.

`Attempts` takes the job's slots (and its local GPUs, CPUs and memory), launches
the attempt exactly once (a recovered job first asks its executor whether a crashed
daemon already started it), then waits for the first of: the attempt's exit, a
cancel, the timeout.  Meanwhile the attempt's log is read and its markers become
progress, output and warning events.  Retrying and the DAG are `WorkflowRun`'s business.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from ccd.commands import MissingOutput
from ccd.config import DaemonConfig
from ccd.engine.cache import JobCache
from ccd.engine.job import JobEvents, JobRun
from ccd.engine.outcome import Outcome, outcome_of
from ccd.engine.pool import gpu_env, with_devices
from ccd.engine.request import launch_request
from ccd.engine.slots import Slots
from ccd.events import EventKind
from ccd.executors.base import Attempt, Executor, ExitStatus, LaunchError, LaunchRequest
from ccd.logscan import LogScanner
from ccd.markers import MarkerWarning, Output, Progress
from ccd.resources import Amounts, ResourceError
from ccd.spec.model import ExecutorKind, Workflow
from ccd.states import JOB_TRANSITIONS, JobState

#: warnings recorded per attempt before the rest are counted only
MAX_WARNINGS = 20
#: how long a recovered job's `find` may go unanswered before the job shows as `unknown`
UNKNOWN_AFTER = 2.0


class Attempts:
    """Runs the attempts of one workflow's jobs (one instance per workflow run)."""

    def __init__(
        self,
        workflow_id: str,
        spec: Workflow,
        jobs: Mapping[str, JobRun],
        *,
        events: JobEvents,
        executors: Mapping[ExecutorKind, Executor],
        slots: Slots,
        config: DaemonConfig,
        cache: JobCache,
    ) -> None:
        self._id = workflow_id
        self._spec = spec
        self._jobs = jobs
        self._events = events
        self._executors = executors
        self._slots = slots
        self._config = config
        self._cache = cache
        self._limit = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None

    async def run(self, jr: JobRun) -> Outcome:
        """Run `jr`'s next attempt to its end."""
        # an `unknown` job stays so until its executor can tell whether it started
        if jr.state not in (JobState.QUEUED, JobState.UNKNOWN):
            self._events.set_state(jr, JobState.QUEUED, forget_handle=True)
        if self._limit is None:
            return await self._run_in_slot(jr)
        # a plain `async with` while the job waits for the workflow's limit: thousands
        # of jobs may wait here, and an AsyncExitStack (a deque) each is ~1 KB more
        async with self._limit:
            return await self._run_in_slot(jr)

    async def adopt(self, jr: JobRun) -> Outcome:
        """Follow the attempt an earlier daemon launched (its handle is stored) to its end."""
        assert jr.handle is not None
        executor = self._executors[jr.spec.executor]
        async with AsyncExitStack() as stack:
            self._hold_claim(jr, stack)
            try:
                attempt = await executor.adopt(jr.handle)
            except LaunchError as exc:
                return Outcome(JobState.FAILED, reason=f"lost: {exc}")
            for pool in self._slots.of(jr.spec):
                await stack.enter_async_context(pool)
            jr.running = True
            return await self._monitor(jr, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _hold_claim(self, jr: JobRun, stack: AsyncExitStack) -> None:
        """Take over what the engine's recovery claimed for this adopted attempt (its
        recorded GPU devices): it is free again when the attempt ends, however it ends."""
        pool = self._slots.resources(jr.spec)
        grant = pool.take_claim((self._id, jr.name)) if pool is not None else None
        if pool is not None and grant is not None:
            stack.callback(pool.release, grant)

    # -- starting -------------------------------------------------------------------
    async def _run_in_slot(self, jr: JobRun) -> Outcome:
        async with AsyncExitStack() as stack:
            try:
                devices = await self._hold_resources(jr, stack)
            except ResourceError as exc:  # the host's config shrank since the submit
                return Outcome(JobState.FAILED, reason=str(exc))
            for pool in self._slots.of(jr.spec):
                await stack.enter_async_context(pool)
            executor = self._executors[jr.spec.executor]
            jr.attempt += 1
            try:
                # A recovered attempt may already run, so it must not be left behind by a
                # cancel here: its `find` waits for the host itself, with jr.running set.
                if not jr.recovered:
                    await executor.ready(jr.spec.host)  # a cancel here just cancels this task
                request = launch_request(
                    self._id, self._spec, self._jobs, jr, self._config, extra_env=gpu_env(devices)
                )
                if jr.cache_key is None and jr.cache_note is None:
                    await self._cache.keep_key(jr, request)  # from the request: built once
                # From here a cancel must kill what may already be starting, not just
                # cancel this task (which would leave the launched job behind).
                jr.running = True
                attempt = await self._find_or_launch(jr, executor, request)
            except (LaunchError, MissingOutput) as exc:
                jr.running = False
                return Outcome(JobState.FAILED, reason=str(exc))
            # the devices go with the handle: a new daemon holds the same ones again
            jr.handle = with_devices(attempt.handle, devices)
            jr.started_at = time.time()
            # The running event carries the handle.  It is not awaited: waiting would
            # not close the gap between spawn and commit (the job already runs); the
            # run directory of each attempt is where it is found again after a crash.
            note, jr.cache_note = jr.cache_note, None  # the job's key, with its first launch
            self._events.set_state(
                jr,
                attempt.launched_state,
                handle=jr.handle,
                reason="submitted" if attempt.launched_state is JobState.QUEUED else None,
                cache=note,
            )
            return await self._monitor(jr, attempt)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncExitStack swallows nothing

    async def _hold_resources(self, jr: JobRun, stack: AsyncExitStack) -> tuple[str, ...]:
        """Wait for and take the GPUs, CPUs and memory the job asks of its host, all at
        once; the GPU device ids it holds.  Raises ResourceError (more than the host has)."""
        pool = self._slots.resources(jr.spec)
        if pool is None or not jr.spec.resources:
            return ()
        amounts = pool.amounts_of(jr.spec)
        if not amounts:
            return ()
        grant = await pool.acquire(amounts, lambda: self._waiting(jr, amounts))
        stack.callback(pool.release, grant)
        return grant.devices

    def _waiting(self, jr: JobRun, amounts: Amounts) -> None:
        """Say why a queued job does not start although a host slot may be free."""
        if jr.state is not JobState.QUEUED:
            return
        jr.reason = f"waiting for local resources ({amounts.describe()})"
        self._events.emit(
            jr.name,
            EventKind.JOB_STATE,
            state=JobState.QUEUED.value,
            attempt=jr.attempt,
            reason=jr.reason,
        )

    async def _find_or_launch(
        self, jr: JobRun, executor: Executor, request: LaunchRequest
    ) -> Attempt:
        """Launch the attempt, unless a crashed daemon already did (exactly once)."""
        if jr.recovered:
            jr.recovered = False
            handle = await self._find(jr, executor)
            if handle is not None:
                self._events.warn(
                    jr,
                    f"attempt {jr.attempt} was already started by an earlier "
                    "daemon; adopted it instead of starting it again",
                )
                return await executor.adopt(handle)
        return await executor.launch(request)

    async def _find(self, jr: JobRun, executor: Executor) -> dict[str, Any] | None:
        """Ask whether a crashed daemon started this attempt; `unknown` while none can say.

        An executor's `find` waits for an unreachable host rather than guess, because
        a wrong "no" would start the attempt twice and a "lost" would fail a job that
        may be running.  The wait can be long, so after UNKNOWN_AFTER the job shows
        as `unknown` (keeping its last certain attempt number) until `find` answers.
        """
        find = asyncio.ensure_future(executor.find(self._id, jr.spec, jr.attempt))
        try:
            done, _ = await asyncio.wait({find}, timeout=UNKNOWN_AFTER)
            if not done and jr.state is not JobState.UNKNOWN:
                self._events.set_state(
                    jr,
                    JobState.UNKNOWN,
                    attempt=jr.attempt - 1,
                    reason=f"cannot check yet whether attempt {jr.attempt} already started "
                    f"(host '{jr.spec.host}' does not answer); waiting for it",
                )
            return await find
        finally:
            find.cancel()  # only matters when this task is cancelled (shutdown, user)

    # -- following ------------------------------------------------------------------
    async def _monitor(self, jr: JobRun, attempt: Attempt) -> Outcome:
        """Follow a launched attempt to its end, enforcing timeout and cancel."""
        attempt.on_state(lambda state, reason: self._observed(jr, state, reason))
        attempt.on_warning(lambda message: self._events.warn(jr, message))
        follower: asyncio.Task[str | None] = asyncio.create_task(
            follow_log(self._events, jr, attempt)
        )
        # plain futures, not tasks: nothing to schedule per job while it runs
        exited = attempt.exited
        killed = jr.kill_requested
        waiters: set[asyncio.Future[Any]] = {exited, killed}
        try:
            # a batch system enforces the limit it was given (the time a job waits
            # in its queue does not count against it)
            timeout = None if attempt.enforces_timeout else _remaining(jr)
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if exited in done:
                # the verdict waits for the log's end: its last line says why it failed
                outcome = outcome_of(exited.result(), await follower)
                self._ended(jr, exited.result(), outcome)
                return outcome
            await attempt.kill(self._config.kill_grace)
            if killed in done:
                outcome = Outcome(JobState.CANCELLED, reason=jr.cancel_reason)
            else:
                outcome = Outcome(
                    JobState.TIMED_OUT, reason=f"timed out after {jr.spec.timeout:g}s"
                )
            await follower
            if exited.done():
                self._ended(jr, exited.result(), outcome)
            return outcome
        finally:
            jr.running = False
            follower.cancel()

    def _ended(self, jr: JobRun, status: ExitStatus, outcome: Outcome) -> None:
        """Record the attempt's end and what it cost (`job.usage`): the run report's
        line for it, whether it is retried or not.  An attempt a new daemon adopted
        ends here too, with the figures its executor found on disk."""
        data: dict[str, Any] = {
            "attempt": jr.attempt,
            "outcome": outcome.state.value,
            "ended": status.ended,
        }
        if status.exit_code is not None:
            data["exit_code"] = status.exit_code
        if outcome.reason is not None:
            data["reason"] = outcome.reason
        if status.usage is not None:
            data["usage"] = status.usage.to_data()
        self._events.emit(jr.name, EventKind.JOB_USAGE, **data)

    def _observed(self, jr: JobRun, state: JobState, reason: str | None) -> None:
        """The executor saw the attempt queued, running or out of reach."""
        if not jr.running:
            return
        if jr.state is state:
            if reason != jr.reason:  # e.g. Slurm's pending reason changed: say so
                jr.reason = reason
                self._events.emit(
                    jr.name,
                    EventKind.JOB_STATE,
                    state=state.value,
                    attempt=jr.attempt,
                    **({"reason": reason} if reason else {}),
                )
            return
        if state in JOB_TRANSITIONS[jr.state]:
            self._events.set_state(jr, state, reason=reason)


def _remaining(jr: JobRun) -> float | None:
    if jr.spec.timeout is None:
        return None
    started = jr.started_at if jr.started_at is not None else time.time()
    return max(0.0, jr.spec.timeout - (time.time() - started))


# -- the log ------------------------------------------------------------------------
async def follow_log(events: JobEvents, jr: JobRun, attempt: Attempt) -> str | None:
    """Read the attempt's log to its end, recording what its markers say; returns
    the log's last line that is not a marker (None: it has none)."""
    scanner = LogScanner(jr.spec.progress_regex)
    warnings = 0
    async for chunk in attempt.log_chunks():
        warnings = apply_markers(events, jr, scanner.feed(chunk), warnings)
    apply_markers(events, jr, scanner.close(), warnings)
    return scanner.last_line()


def apply_markers(events: JobEvents, jr: JobRun, markers: list[Any], warnings: int) -> int:
    """Record one read's markers; returns the attempt's marker-warning count so far."""
    last_progress: Progress | None = None
    for marker in markers:
        if isinstance(marker, Progress):
            last_progress = marker
        elif isinstance(marker, Output):
            jr.outputs[marker.key] = marker.value
            events.emit(jr.name, EventKind.JOB_OUTPUT, key=marker.key, value=marker.value)
        elif isinstance(marker, MarkerWarning):
            warnings += 1
            if warnings <= MAX_WARNINGS:
                events.emit(jr.name, EventKind.JOB_WARNING, message=marker.message)
            elif warnings == MAX_WARNINGS + 1:
                events.emit(
                    jr.name,
                    EventKind.JOB_WARNING,
                    message="more marker warnings in this attempt are not recorded",
                )
    # Many progress lines in one read collapse to the newest: that is all a viewer sees.
    if last_progress is not None and (
        last_progress.value is not None or last_progress.message is not None
    ):
        events.emit(
            jr.name,
            EventKind.JOB_PROGRESS,
            progress=last_progress.value,
            message=last_progress.message,
        )
    return warnings
