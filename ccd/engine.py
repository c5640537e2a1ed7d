"""The engine: one coroutine per job, started once its parents are final.

A `WorkflowRun` owns the tasks of one workflow; the `Engine` owns the runs and
the slot pools (per workflow, per host, daemon-wide).  Every change is recorded
as an `Event` through the store before or as it happens; the engine keeps just
enough in memory to drive the jobs (states, outputs, unfinished-parent counts).

A job gets its task only when its last parent finishes: a 100,000-job workflow
holds tasks for the jobs that can run, not for every job waiting its turn (each
task is ~1 KB, and a shutdown cancels each one).

User cancel is explicit: a waiting job is settled as cancelled, a running job is
killed through its executor.  Daemon shutdown cancels the tasks, but leaves
every launched job running: the job protocol lets the next daemon adopt it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from ccd.commands import MissingOutput, resolve
from ccd.config import DaemonConfig
from ccd.errors import Conflict, NotFound
from ccd.events import Event, EventKind
from ccd.executors.base import Attempt, Executor, ExitStatus, LaunchError, LaunchRequest
from ccd.logscan import LogScanner
from ccd.markers import MarkerWarning, Output, Progress
from ccd.spec.model import ExecutorKind, Job, Workflow
from ccd.states import (
    FINAL_JOB_STATES,
    JOB_TRANSITIONS,
    RETRYABLE_JOB_STATES,
    JobState,
    check_transition,
    workflow_state,
)
from ccd.store import Store
from ccd.store.fold import EncodedJSON

log = logging.getLogger(__name__)

#: warnings recorded per attempt before the rest are counted only
MAX_WARNINGS = 20
#: how long a recovered job's `find` may go unanswered before the job shows as `unknown`
UNKNOWN_AFTER = 2.0


def new_workflow_id() -> str:
    return secrets.token_hex(4)


def describe_exit(code: int) -> str:
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"exit code {code} ({signal.Signals(code - 128).name})"
    return f"exit code {code}"


def exit_reason(code: int) -> str | None:
    """A reason only where the exit code alone does not say it (killed by a signal)."""
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"terminated by {signal.Signals(code - 128).name}"
    return None


@dataclass(slots=True)
class Outcome:
    state: JobState
    reason: str | None = None
    exit_code: int | None = None


#: states of a job whose stored handle names its current attempt (adopted on recovery)
_LAUNCHED = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.UNREACHABLE})
#: batch-system reasons that are their own failure kinds for ``retry_on``
_BATCH_KINDS = frozenset({"oom", "node_fail", "preempted", "boot_fail"})


def failure_kind(outcome: Outcome) -> str:
    """What a failed attempt failed of (one of RETRY_KINDS)."""
    if outcome.state is JobState.TIMED_OUT:
        return "timeout"
    if outcome.reason is not None and outcome.reason in _BATCH_KINDS:
        return outcome.reason
    if outcome.exit_code is None and outcome.reason and outcome.reason.startswith("lost"):
        return "lost"
    return "exit"


def _why(outcome: Outcome) -> str:
    if outcome.reason:
        return outcome.reason
    if outcome.exit_code is not None:
        return describe_exit(outcome.exit_code)
    return outcome.state.value


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
    #: set by a cancel while the job runs (a future: the monitor waits on it directly)
    kill_requested: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def name(self) -> str:
        return self.spec.name


class _Outputs(Mapping[str, Mapping[str, str]]):
    """Jobs' outputs by job name, without copying them for every launch."""

    def __init__(self, jobs: dict[str, JobRun]) -> None:
        self._jobs = jobs

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return self._jobs[name].outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)


class Slots:
    """The daemon-wide and per-host pools of running-job slots."""

    def __init__(self, config: DaemonConfig) -> None:
        self._config = config
        self._global = asyncio.Semaphore(config.max_jobs)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def host(self, name: str) -> asyncio.Semaphore:
        sem = self._hosts.get(name)
        if sem is None:
            sem = self._hosts[name] = asyncio.Semaphore(self._config.host_slots(name))
        return sem

    def of(self, job: Job) -> list[asyncio.Semaphore]:
        """The pools a job takes a slot of while it is launched and followed."""
        if job.executor is ExecutorKind.SLURM:
            # a batch job costs the daemon no process: only the cluster's queue limit
            key = f"slurm:{job.host}"
            sem = self._hosts.get(key)
            if sem is None:
                limit = self._config.host_config(job.host).slurm.max_jobs
                sem = self._hosts[key] = asyncio.Semaphore(limit)
            return [sem]
        return [self.host(job.host), self._global]


class WorkflowRun:
    def __init__(
        self,
        workflow_id: str,
        spec: Workflow,
        *,
        store: Store,
        executors: Mapping[ExecutorKind, Executor],
        slots: Slots,
        config: DaemonConfig,
        jobs: dict[str, JobRun],
    ) -> None:
        self.id = workflow_id
        self.spec = spec
        self.jobs = jobs
        self.cancelled = False
        #: the jobs waiting for each unfinished parent, by the parent's name
        self._children: dict[str, list[JobRun]] = {}
        # in start order (a dict, not a set): a shutdown cancels them in that order,
        # so each leaves the head of the queue it waits in (asyncio's semaphores
        # and events remove a cancelled waiter by a linear search: cancelled in
        # hash order, a SIGTERM with 100,000 waiting jobs took 70 s)
        self._tasks: dict[asyncio.Task[None], None] = {}
        self._unfinished = 0
        self._all_final = asyncio.Event()
        self._store = store
        self._executors = executors
        self._slots = slots
        self._config = config
        self._closing = False
        self._limit = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None

    # -- recording ------------------------------------------------------------------
    def _emit(self, job: str | None, kind: EventKind, **data: Any) -> asyncio.Future[int]:
        return self._store.emit(Event(self.id, job, kind, data))

    def _set_state(
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
        self._emit(jr.name, EventKind.JOB_STATE, state=new.value, **payload)

    # -- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        """Run every non-final job; record the workflow's final state."""
        for jr in self.jobs.values():
            jr.done = jr.state in FINAL_JOB_STATES
        for jr in self.jobs.values():
            if not jr.done:
                self._unfinished += 1
                for parent in jr.spec.needs:
                    if not self.jobs[parent].done:
                        jr.blocking += 1
                        self._children.setdefault(parent, []).append(jr)
        for jr in [jr for jr in self.jobs.values() if not jr.done and jr.blocking == 0]:
            self._start_job(jr)
        try:
            if self._unfinished:
                await self._all_final.wait()
        except asyncio.CancelledError:
            self._closing = True
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        final = workflow_state([jr.state for jr in self.jobs.values()], self.cancelled)
        await self._store.record(
            Event(self.id, None, EventKind.WORKFLOW_STATE, {"state": final.value})
        )

    def cancel(self, job: str | None = None) -> None:
        if job is None:
            self.cancelled = True
            targets = [jr for jr in self.jobs.values() if not jr.done]
            reason = "workflow cancelled"
        else:
            if job not in self.jobs:
                raise NotFound(f"workflow {self.id} has no job '{job}'")
            targets = [self.jobs[job]]
            reason = "cancelled by user"
        for jr in targets:
            self._cancel_job(jr, reason)

    def _cancel_job(self, jr: JobRun, reason: str) -> None:
        if jr.done or jr.cancel_reason is not None:
            return
        jr.cancel_reason = reason
        jr.root_cause = jr.name
        if jr.running:
            if not jr.kill_requested.done():
                jr.kill_requested.set_result(None)
        elif jr.task is not None:
            jr.task.cancel()
        else:  # still waiting for its parents: it has no task to cancel
            self._set_state(jr, JobState.CANCELLED, reason=reason)
            self._finished(jr)

    def _start_job(self, jr: JobRun) -> None:
        task = asyncio.create_task(self._job_main(jr), name=f"{self.id}/{jr.name}")
        jr.task = task
        self._tasks[task] = None
        task.add_done_callback(lambda t: self._task_ended(jr, t))

    def _task_ended(self, jr: JobRun, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if jr.done or self._closing:
            return
        # cancelled before its first step (a cancel just as it became ready), so
        # `_job_main` never ran to settle it
        self._set_state(jr, JobState.CANCELLED, reason=jr.cancel_reason or "cancelled")
        self._finished(jr)

    def _finished(self, jr: JobRun) -> None:
        """`jr` is final: start the children it was the last unfinished parent of."""
        jr.done = True
        jr.task = None
        for child in self._children.pop(jr.name, ()):
            child.blocking -= 1
            # a workflow cancel settles every waiting job itself, in its own loop
            if child.blocking == 0 and not child.done and not self.cancelled:
                self._start_job(child)
        self._unfinished -= 1
        if self._unfinished == 0:
            self._all_final.set()

    # -- one job --------------------------------------------------------------------
    async def _job_main(self, jr: JobRun) -> None:
        try:
            outcome = await self._job_body(jr)
        except asyncio.CancelledError:
            if self._closing or jr.cancel_reason is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = Outcome(JobState.CANCELLED, reason=jr.cancel_reason)
        except Exception as exc:  # a bug: fail this job, keep the daemon and the workflow
            log.exception("job %s/%s crashed", self.id, jr.name)
            outcome = Outcome(JobState.FAILED, reason=f"internal error: {exc!r}")
        if jr.state is not outcome.state:
            self._set_state(jr, outcome.state, reason=outcome.reason, exit_code=outcome.exit_code)
        self._finished(jr)

    async def _job_body(self, jr: JobRun) -> Outcome:
        if jr.handle is not None and jr.state in _LAUNCHED:
            outcome = await self._adopt(jr)
        else:
            blocked = self._blocked_by_parents(jr)
            if blocked is not None:
                return blocked
            outcome = await self._attempt(jr)
        while outcome.state in (JobState.FAILED, JobState.TIMED_OUT):
            if jr.attempt > jr.spec.retries:
                break
            kind = failure_kind(outcome)
            if jr.spec.retry_on is not None and kind not in jr.spec.retry_on:
                break  # a failure the user did not ask to retry
            retry = jr.attempt  # 1-based number of the retry about to happen
            delay = jr.spec.retry_delay * jr.spec.retry_backoff ** (retry - 1)
            self._set_state(
                jr,
                JobState.QUEUED,
                reason=f"{_why(outcome)}; retry {retry}/{jr.spec.retries} in {delay:g}s",
                exit_code=outcome.exit_code,
                forget_handle=True,
            )
            await asyncio.sleep(delay)
            outcome = await self._attempt(jr)
        return outcome

    def _blocked_by_parents(self, jr: JobRun) -> Outcome | None:
        """Why `jr` cannot run, now that its parents are final; None if it can."""
        for parent in jr.spec.needs:
            pr = self.jobs[parent]
            if pr.state is JobState.SUCCEEDED:
                continue
            root = pr.root_cause or parent
            jr.root_cause = root
            if pr.state is JobState.CANCELLED:
                return Outcome(JobState.CANCELLED, reason=f"ancestor '{root}' was cancelled")
            what = "timed out" if self.jobs[root].state is JobState.TIMED_OUT else "failed"
            return Outcome(JobState.SKIPPED, reason=f"ancestor '{root}' {what}")
        return None

    async def _attempt(self, jr: JobRun) -> Outcome:
        # an `unknown` job stays so until its executor can tell whether it started
        if jr.state not in (JobState.QUEUED, JobState.UNKNOWN):
            self._set_state(jr, JobState.QUEUED, forget_handle=True)
        if self._limit is None:
            return await self._attempt_in_slot(jr)
        # a plain `async with` while the job waits for the workflow's limit: thousands
        # of jobs may wait here, and an AsyncExitStack (a deque) each is ~1 KB more
        async with self._limit:
            return await self._attempt_in_slot(jr)

    async def _attempt_in_slot(self, jr: JobRun) -> Outcome:
        async with AsyncExitStack() as stack:
            for pool in self._slots.of(jr.spec):
                await stack.enter_async_context(pool)
            executor = self._executors[jr.spec.executor]
            jr.attempt += 1
            try:
                # A recovered attempt may already run, so it must not be left behind by a
                # cancel here: its `find` waits for the host itself, with jr.running set.
                if not jr.recovered:
                    await executor.ready(jr.spec.host)  # a cancel here just cancels this task
                request = self._request(jr)
                # From here a cancel must kill what may already be starting, not just
                # cancel this task (which would leave the launched job behind).
                jr.running = True
                attempt = await self._find_or_launch(jr, executor, request)
            except (LaunchError, MissingOutput) as exc:
                jr.running = False
                return Outcome(JobState.FAILED, reason=str(exc))
            jr.handle = attempt.handle
            jr.started_at = time.time()
            # The running event carries the handle.  It is not awaited: waiting would
            # not close the gap between spawn and commit (the job already runs); the
            # run directory of each attempt is where it is found again after a crash.
            self._set_state(
                jr,
                attempt.launched_state,
                handle=attempt.handle,
                reason="submitted" if attempt.launched_state is JobState.QUEUED else None,
            )
            return await self._monitor(jr, attempt)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncExitStack swallows nothing

    async def _find_or_launch(
        self, jr: JobRun, executor: Executor, request: LaunchRequest
    ) -> Attempt:
        """Launch the attempt, unless a crashed daemon already did (exactly once)."""
        if jr.recovered:
            jr.recovered = False
            handle = await self._find(jr, executor)
            if handle is not None:
                self._warn(
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
        find = asyncio.ensure_future(executor.find(self.id, jr.spec, jr.attempt))
        try:
            done, _ = await asyncio.wait({find}, timeout=UNKNOWN_AFTER)
            if not done and jr.state is not JobState.UNKNOWN:
                self._set_state(
                    jr,
                    JobState.UNKNOWN,
                    attempt=jr.attempt - 1,
                    reason=f"cannot check yet whether attempt {jr.attempt} already started "
                    f"(host '{jr.spec.host}' does not answer); waiting for it",
                )
            return await find
        finally:
            find.cancel()  # only matters when this task is cancelled (shutdown, user)

    async def _adopt(self, jr: JobRun) -> Outcome:
        assert jr.handle is not None
        executor = self._executors[jr.spec.executor]
        try:
            attempt = await executor.adopt(jr.handle)
        except LaunchError as exc:
            return Outcome(JobState.FAILED, reason=f"lost: {exc}")
        async with AsyncExitStack() as stack:
            for pool in self._slots.of(jr.spec):
                await stack.enter_async_context(pool)
            jr.running = True
            return await self._monitor(jr, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, jr: JobRun) -> LaunchRequest:
        spec = jr.spec
        base_env = {
            "CCD_WORKFLOW": self.spec.name,
            "CCD_WORKFLOW_ID": self.id,
            "CCD_JOB": spec.name,
            "CCD_ATTEMPT": str(jr.attempt),
            "PYTHONUNBUFFERED": "1",
        }
        if spec.array is not None:
            base_env["CCD_ARRAY_INDEX"] = str(spec.array.index)
            base_env["CCD_ARRAY_VALUE"] = spec.array.value
        host = self._config.hosts.get(spec.host)
        resolved = resolve(
            spec,
            outputs=_Outputs(self.jobs),
            is_ancestor=lambda other: self._is_ancestor(other, spec.name),
            base_env=base_env,
            python=host.python if host is not None else "python3",
        )
        return LaunchRequest(self.id, spec, jr.attempt, resolved.command, resolved.env)

    def _is_ancestor(self, ancestor: str, job: str) -> bool:
        """Whether `job` (transitively) needs `ancestor`: only asked for an output
        reference, so the parents are walked then instead of keeping a graph."""
        seen: set[str] = set()
        todo = list(self.spec.jobs[job].needs)
        while todo:
            name = todo.pop()
            if name == ancestor:
                return True
            if name not in seen:
                seen.add(name)
                todo.extend(self.spec.jobs[name].needs)
        return False

    async def _monitor(self, jr: JobRun, attempt: Attempt) -> Outcome:
        """Follow a launched attempt to its end, enforcing timeout and cancel."""
        attempt.on_state(lambda state, reason: self._observed(jr, state, reason))
        attempt.on_warning(lambda message: self._warn(jr, message))
        follower = asyncio.create_task(self._follow_log(jr, attempt))
        # plain futures, not tasks: nothing to schedule per job while it runs
        exited = attempt.exited
        killed = jr.kill_requested
        waiters: set[asyncio.Future[Any]] = {exited, killed}
        try:
            # a batch system enforces the limit it was given (the time a job waits
            # in its queue does not count against it)
            timeout = None if attempt.enforces_timeout else self._remaining(jr)
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if exited in done:
                outcome = self._outcome(exited.result())
            elif killed in done:
                await attempt.kill(self._config.kill_grace)
                outcome = Outcome(JobState.CANCELLED, reason=jr.cancel_reason)
            else:
                await attempt.kill(self._config.kill_grace)
                outcome = Outcome(
                    JobState.TIMED_OUT, reason=f"timed out after {jr.spec.timeout:g}s"
                )
            await follower
            return outcome
        finally:
            jr.running = False
            follower.cancel()

    def _warn(self, jr: JobRun, message: str) -> None:
        self._emit(jr.name, EventKind.JOB_WARNING, message=message)

    def _observed(self, jr: JobRun, state: JobState, reason: str | None) -> None:
        """The executor saw the attempt queued, running or out of reach."""
        if not jr.running:
            return
        if jr.state is state:
            if reason != jr.reason:  # e.g. Slurm's pending reason changed: say so
                jr.reason = reason
                self._emit(
                    jr.name,
                    EventKind.JOB_STATE,
                    state=state.value,
                    attempt=jr.attempt,
                    **({"reason": reason} if reason else {}),
                )
            return
        if state in JOB_TRANSITIONS[jr.state]:
            self._set_state(jr, state, reason=reason)

    @staticmethod
    def _remaining(jr: JobRun) -> float | None:
        if jr.spec.timeout is None:
            return None
        started = jr.started_at if jr.started_at is not None else time.time()
        return max(0.0, jr.spec.timeout - (time.time() - started))

    @staticmethod
    def _outcome(status: ExitStatus) -> Outcome:
        if status.state is not None:
            return Outcome(status.state, reason=status.reason, exit_code=status.exit_code)
        if status.exit_code == 0:
            return Outcome(JobState.SUCCEEDED, exit_code=0)
        if status.exit_code is None:
            return Outcome(JobState.FAILED, reason=status.reason or "lost")
        return Outcome(
            JobState.FAILED, reason=exit_reason(status.exit_code), exit_code=status.exit_code
        )

    async def _follow_log(self, jr: JobRun, attempt: Attempt) -> None:
        scanner = LogScanner(jr.spec.progress_regex)
        warnings = 0
        async for chunk in attempt.log_chunks():
            warnings = self._apply(jr, scanner.feed(chunk), warnings)
        self._apply(jr, scanner.close(), warnings)

    def _apply(self, jr: JobRun, markers: list[Any], warnings: int) -> int:
        last_progress: Progress | None = None
        for marker in markers:
            if isinstance(marker, Progress):
                last_progress = marker
            elif isinstance(marker, Output):
                jr.outputs[marker.key] = marker.value
                self._emit(jr.name, EventKind.JOB_OUTPUT, key=marker.key, value=marker.value)
            elif isinstance(marker, MarkerWarning):
                warnings += 1
                if warnings <= MAX_WARNINGS:
                    self._emit(jr.name, EventKind.JOB_WARNING, message=marker.message)
                elif warnings == MAX_WARNINGS + 1:
                    self._emit(
                        jr.name,
                        EventKind.JOB_WARNING,
                        message="more marker warnings in this attempt are not recorded",
                    )
        # Many progress lines in one read collapse to the newest: that is all a viewer sees.
        if last_progress is not None and (
            last_progress.value is not None or last_progress.message is not None
        ):
            self._emit(
                jr.name,
                EventKind.JOB_PROGRESS,
                progress=last_progress.value,
                message=last_progress.message,
            )
        return warnings


class Engine:
    def __init__(
        self, store: Store, config: DaemonConfig, executors: Mapping[ExecutorKind, Executor]
    ) -> None:
        self._store = store
        self._config = config
        self._executors = executors
        self._slots = Slots(config)
        self._runs: dict[str, WorkflowRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def is_running(self, workflow_id: str) -> bool:
        return workflow_id in self._runs

    def supports(self, kind: ExecutorKind) -> bool:
        return kind in self._executors

    async def submit(self, spec: Workflow) -> str:
        unsupported = sorted(
            {j.executor.value for j in spec.jobs.values()} - {k.value for k in self._executors}
        )
        if unsupported:
            raise Conflict(
                f"this daemon cannot run {', '.join(unsupported)} jobs yet; "
                "use executor: local (host: localhost)"
            )
        workflow_id = new_workflow_id()
        await self._store.record(
            Event(
                workflow_id,
                None,
                EventKind.WORKFLOW_SUBMITTED,
                {
                    "name": spec.name,
                    # encoded once, by pydantic: a 100,000-job spec is 29 MB of JSON
                    "spec": EncodedJSON(spec.model_dump_json()),
                    "source": spec.source,
                },
            )
        )
        jobs = {name: JobRun(job) for name, job in spec.jobs.items()}
        self._start(workflow_id, spec, jobs)
        return workflow_id

    def _start(self, workflow_id: str, spec: Workflow, jobs: dict[str, JobRun]) -> None:
        run = WorkflowRun(
            workflow_id,
            spec,
            store=self._store,
            executors=self._executors,
            slots=self._slots,
            config=self._config,
            jobs=jobs,
        )
        self._runs[workflow_id] = run
        task = asyncio.create_task(self._drive(run), name=f"workflow {workflow_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(self, run: WorkflowRun) -> None:
        try:
            await run.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("workflow %s crashed", run.id)
            await self._store.record(
                Event(
                    run.id,
                    None,
                    EventKind.WORKFLOW_STATE,
                    {"state": "failed", "reason": "internal error; see the daemon log"},
                )
            )
        finally:
            self._runs.pop(run.id, None)

    def cancel(self, workflow_id: str, job: str | None = None) -> None:
        run = self._runs.get(workflow_id)
        if run is None:
            raise Conflict(f"workflow {workflow_id} is not running; nothing to cancel")
        run.cancel(job)

    async def retry(self, workflow_id: str) -> list[str]:
        """Run the failed, timed-out, cancelled and skipped jobs of a finished workflow again."""
        if workflow_id in self._runs:
            raise Conflict(f"workflow {workflow_id} is still running; wait for it or cancel it")
        spec, rows = await self._load(workflow_id)
        again = [r["name"] for r in rows if JobState(r["state"]) in RETRYABLE_JOB_STATES]
        if not again:
            raise Conflict(f"workflow {workflow_id} has no failed, cancelled or skipped jobs")
        jobs = self._job_runs(spec, rows)
        for name in again:
            jr = jobs[name]
            check_transition(jr.state, JobState.PENDING)
            jr.state = JobState.PENDING
            jr.handle = None
            self._store.emit(
                Event(
                    workflow_id,
                    name,
                    EventKind.JOB_STATE,
                    {"state": JobState.PENDING.value, "reason": "retry"},
                )
            )
        await self._store.record(
            Event(workflow_id, None, EventKind.WORKFLOW_STATE, {"state": "running"})
        )
        self._start(workflow_id, spec, jobs)
        return again

    async def recover(self) -> int:
        """Resume every workflow an earlier daemon left unfinished; returns how many."""
        count = 0
        for row in await self._store.unfinished_workflows():
            spec, rows = await self._load(row["id"])
            jobs = self._job_runs(spec, rows)
            adopted = sum(1 for jr in jobs.values() if jr.handle and jr.state in _LAUNCHED)
            waiting = sum(1 for jr in jobs.values() if not jr.state.is_final) - adopted
            # the event log shows each restart and what it picked up
            self._store.emit(
                Event(
                    row["id"],
                    None,
                    EventKind.WORKFLOW_STATE,
                    {
                        "state": "running",
                        "reason": f"resumed by a new daemon: {adopted} launched job(s) "
                        f"followed again, {waiting} still to start or check",
                    },
                )
            )
            self._start(row["id"], spec, jobs)
            count += 1
        return count

    async def _load(self, workflow_id: str) -> tuple[Workflow, list[dict[str, Any]]]:
        raw = await self._store.get_spec(workflow_id)
        if raw is None:
            raise NotFound(f"no workflow {workflow_id}")
        return Workflow.model_validate(raw), await self._store.get_jobs(workflow_id)

    @staticmethod
    def _job_runs(spec: Workflow, rows: list[dict[str, Any]]) -> dict[str, JobRun]:
        by_name = {r["name"]: r for r in rows}
        jobs: dict[str, JobRun] = {}
        for name, job in spec.jobs.items():
            row = by_name[name]
            jobs[name] = JobRun(
                job,
                state=JobState(row["state"]),
                attempt=row["attempt"],
                outputs=dict(row["outputs"]),
                handle=row["handle"],
                started_at=row["started"],
                recovered=True,
            )
        return jobs

    async def close(self) -> None:
        """Stop driving workflows; launched jobs keep running for the next daemon."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runs.clear()
