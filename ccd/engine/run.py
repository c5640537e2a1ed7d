"""The DAG bookkeeping of one workflow run: which jobs are ready, final, cancelled or skipped.

A job gets its task only when its last parent finishes: a 100,000-job workflow
holds tasks for the jobs that can run, not for every job waiting its turn (each
task is ~1 KB, and a shutdown cancels each one).  A job's task runs its
attempts (`Attempts`) and retries them; this module decides what its children
do once it is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from ccd.config import DaemonConfig
from ccd.engine import fanout
from ccd.engine.attempt import Attempts
from ccd.engine.cache import JobCache
from ccd.engine.job import LAUNCHED, JobEvents, JobRun
from ccd.engine.outcome import Outcome, retry_delay, retry_reason
from ccd.engine.request import Outputs, array_elements
from ccd.engine.slots import Slots
from ccd.errors import Conflict, NotFound
from ccd.events import Event, EventKind
from ccd.executors.base import Executor
from ccd.executors.files import FileStates
from ccd.heap import gc_paused_for_a_turn
from ccd.spec.model import HOOK_RULES, ExecutorKind, Job, Workflow
from ccd.states import FINAL_JOB_STATES, JobState, workflow_state
from ccd.store import Store

log = logging.getLogger(__name__)

#: jobs started together from this many on are started with the collector paused
BURST = 256


class WorkflowRun:
    """The tasks and in-memory job states of one workflow while the daemon drives it."""

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
        files: FileStates,
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
        self._slots = slots
        self._events = JobEvents(store, workflow_id)
        self._cache = JobCache(
            workflow_id,
            spec,
            jobs,
            store=store,
            events=self._events,
            config=config,
            files=files,
        )
        self._attempts = Attempts(
            workflow_id,
            spec,
            jobs,
            events=self._events,
            executors=executors,
            slots=slots,
            config=config,
            cache=self._cache,
        )
        self._closing = False
        #: whether `_count_parents` ran (a cancel can come before `run` does)
        self._counted = False

    # -- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        """Run every non-final job; record the workflow's final state."""
        if not self._counted:
            self._count_parents()
        # a job cancelled before this may have started its children already
        ready = [jr for jr in self.jobs.values() if not jr.done and jr.blocking == 0]
        self._start_many([jr for jr in ready if jr.task is None])
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
        # cleanup and alerting jobs (when: always / failure) do not decide the outcome
        decisive = [jr.state for jr in self.jobs.values() if jr.spec.when not in HOOK_RULES]
        states = decisive or [jr.state for jr in self.jobs.values()]
        final = workflow_state(states, self.cancelled)
        await self._store.record(
            Event(self.id, None, EventKind.WORKFLOW_STATE, {"state": final.value})
        )

    @property
    def finishing(self) -> bool:
        """Every job is final: the run is recording its end and takes no more jobs."""
        return self._all_final.is_set() or (self._counted and self._unfinished == 0)

    def add(self, jobs: Mapping[str, Job]) -> list[JobRun]:
        """Put new jobs in the DAG, waiting for their unfinished parents."""
        if not self._counted:
            self._count_parents()
        self.spec.jobs.update(jobs)
        runs = []
        for name, job in jobs.items():
            runs.append(jr := JobRun(job))
            self.jobs[name] = jr
            for parent in job.needs:
                if not self.jobs[parent].done:
                    jr.blocking += 1
                    self._children.setdefault(parent, []).append(jr)
        self._unfinished += len(runs)
        return runs

    def current_parents(self, jobs: Mapping[str, Job]) -> dict[str, Job]:
        """`jobs` with each parent that fanned out since they were checked (a foreach
        job) replaced by its elements; Conflict if a parent is gone otherwise."""
        result: dict[str, Job] = {}
        for name, job in jobs.items():
            needs: list[str] = []
            for parent in job.needs:
                if parent in self.jobs or parent in jobs:
                    needs.append(parent)
                elif (members := array_elements(self.spec, parent)) is not None:
                    needs.extend(members)
                else:
                    raise Conflict(
                        f"job {name!r} needs {parent!r}, which workflow {self.id} no longer "
                        "has; check the jobs again and add them"
                    )
            result[name] = job if needs == job.needs else job.model_copy(update={"needs": needs})
        return result

    def start_ready(self, runs: list[JobRun]) -> None:
        """Start those of `runs` whose parents are all final (and not settled since)."""
        self._start_many(
            [jr for jr in runs if jr.blocking == 0 and not jr.done and jr.task is None]
            if not self.cancelled
            else []
        )

    def _count_parents(self) -> None:
        """Mark the final jobs done; link every other job to its unfinished parents."""
        self._counted = True
        for jr in self.jobs.values():
            jr.done = jr.state in FINAL_JOB_STATES
        for jr in self.jobs.values():
            if jr.done:
                continue
            self._unfinished += 1
            for parent in jr.spec.needs:
                if not self.jobs[parent].done:
                    jr.blocking += 1
                    self._children.setdefault(parent, []).append(jr)

    def cancel(self, job: str | None = None) -> None:
        if not self._counted:
            # submitted in this same round of the loop: `run` has not begun, and
            # settling a job counts on its children's and the run's counters
            self._count_parents()
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
            self._events.set_state(jr, JobState.CANCELLED, reason=reason)
            self._finished(jr)

    def _start_many(self, runs: list[JobRun]) -> None:
        """Start jobs; many at once without the cyclic garbage collector re-scanning
        the tasks, frames and events they make (none garbage) until each task took its
        first step: for 10,000 jobs that was two thirds of the CPU of starting them."""
        pause = gc_paused_for_a_turn() if len(runs) >= BURST else contextlib.nullcontext()
        with pause:
            for jr in runs:
                self._start_job(jr)

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
        self._events.set_state(jr, JobState.CANCELLED, reason=jr.cancel_reason or "cancelled")
        self._finished(jr)

    def _finished(self, jr: JobRun) -> None:
        """`jr` is final: start the children it was the last unfinished parent of."""
        jr.done = True
        jr.task = None
        self._slots.forget(self.id, jr.spec)
        ready = []
        for child in self._children.pop(jr.name, ()):
            child.blocking -= 1
            # a workflow cancel settles every waiting job itself, in its own loop
            if child.blocking == 0 and not child.done and not self.cancelled:
                ready.append(child)
        self._start_many(ready)
        self._unfinished -= 1
        if self._unfinished == 0:
            self._all_final.set()

    # -- one job --------------------------------------------------------------------
    async def _job_main(self, jr: JobRun) -> None:
        try:
            outcome = await self._job_body(jr)
            if outcome is None:  # a foreach job, replaced by its elements
                return
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
            # `ended`: when the attempt ended, which a new daemon may learn long after
            # a success with a key is a cache entry; a reused run's entry is its job.cached
            key = jr.cache_key if outcome.state is JobState.SUCCEEDED and not jr.reused else None
            self._events.set_state(
                jr,
                outcome.state,
                reason=outcome.reason,
                exit_code=outcome.exit_code,
                ended=outcome.ended,
                cache_key=key,
            )
        self._finished(jr)

    async def _job_body(self, jr: JobRun) -> Outcome | None:
        """The job's attempts, retried as its spec says; the last one's outcome (None:
        a foreach job that its elements replaced)."""
        if jr.handle is not None and jr.state in LAUNCHED:
            outcome = await self._attempts.adopt(jr)
        else:
            blocked = self._blocked_by_parents(jr)
            if blocked is not None:
                return blocked
            if jr.spec.foreach is not None:
                return await self._fan_out(jr)
            reused = await self._cache.consider(jr)
            if reused is not None:
                return reused
            outcome = await self._attempts.run(jr)
        while (delay := retry_delay(jr.spec, jr.attempt, outcome)) is not None:
            self._events.set_state(
                jr,
                JobState.QUEUED,
                reason=retry_reason(jr.spec, jr.attempt, outcome, delay),
                exit_code=outcome.exit_code,
                forget_handle=True,
            )
            await asyncio.sleep(delay)
            outcome = await self._attempts.run(jr)
        return outcome

    def _blocked_by_parents(self, jr: JobRun) -> Outcome | None:
        """Why `jr` cannot run, now that its parents are final; None if it can."""
        rule = jr.spec.when
        if rule == "always":  # cleanup: after its parents, whatever they did
            return None
        parents = [self.jobs[parent] for parent in jr.spec.needs]
        if rule == "failure":  # alerting: only when something it needs failed
            if any(self._failed_upstream(pr) for pr in parents):
                return None
            return Outcome(JobState.SKIPPED, reason="no parent failed (when: failure)")
        if rule == "any":
            if not parents or any(pr.state is JobState.SUCCEEDED for pr in parents):
                return None
            return Outcome(JobState.SKIPPED, reason="no parent succeeded (when: any)")
        return self._all_succeeded(jr)

    def _failed_upstream(self, pr: JobRun) -> bool:
        """`pr` failed or timed out, or was skipped because an ancestor of it did."""
        failed = (JobState.FAILED, JobState.TIMED_OUT)
        if pr.state in failed:
            return True
        cause = self.jobs.get(pr.root_cause) if pr.root_cause else None
        return pr.state is JobState.SKIPPED and cause is not None and cause.state in failed

    def _all_succeeded(self, jr: JobRun) -> Outcome | None:
        """``when: success``: the outcome that stops `jr` if a parent did not succeed."""
        for parent in jr.spec.needs:
            pr = self.jobs[parent]
            if pr.state is JobState.SUCCEEDED:
                continue
            root = pr.root_cause or parent
            jr.root_cause = root
            if pr.state is JobState.CANCELLED:
                return Outcome(JobState.CANCELLED, reason=f"ancestor '{root}' was cancelled")
            cause = self.jobs.get(root)
            if cause is not None and cause.state is JobState.SKIPPED:
                what = f"was skipped ({cause.reason})"  # an empty foreach list
            elif cause is not None and cause.state is JobState.TIMED_OUT:
                what = "timed out"
            else:
                what = "failed"
            return Outcome(JobState.SKIPPED, reason=f"ancestor '{root}' {what}")
        return None

    # -- foreach --------------------------------------------------------------------
    async def _fan_out(self, jr: JobRun) -> Outcome | None:
        """Replace the foreach job `jr` by its elements; its outcome if it has none."""
        try:
            values = fanout.items(
                jr.spec, Outputs(self.jobs), lambda name: array_elements(self.spec, name)
            )
        except fanout.ForeachFailed as exc:
            return Outcome(JobState.FAILED, reason=str(exc))
        if not values:
            return Outcome(JobState.SKIPPED, reason="foreach list is empty")
        texts = [fanout.item_text(value) for value in values]
        made = fanout.elements(jr.spec, texts)
        children = fanout.rewired(
            (other.spec for other in self.jobs.values() if jr.name in other.spec.needs),
            jr.name,
            list(made),
        )
        data = {
            "items": texts,
            "needs": {name: job.needs for name, job in children.items()},
            "reason": f"foreach: {len(made)} item(s)",
        }
        committed = self._store.emit(Event(self.id, jr.name, EventKind.WORKFLOW_JOBS_ADDED, data))
        runs = self._replace(jr, made, children)
        # written before any element starts: a restart sees the elements or the
        # foreach job, and runs each element exactly once either way
        await committed
        self._start_many([er for er in runs if not er.done and not self.cancelled])
        return None

    def _replace(
        self, jr: JobRun, made: Mapping[str, Job], children: Mapping[str, Job]
    ) -> list[JobRun]:
        """Put `made` in the DAG instead of `jr`; its waiting children wait for all."""
        # the run's spec is the live DAG: launches read ancestors and arrays from it
        del self.jobs[jr.name], self.spec.jobs[jr.name]
        self.spec.jobs.update(made)
        self.spec.jobs.update(children)
        for name, child in children.items():
            self.jobs[name].spec = child
        waiting = self._children.pop(jr.name, [])
        runs = []
        for name, job in made.items():
            runs.append(er := JobRun(job))
            self.jobs[name] = er
            if waiting:
                self._children[name] = list(waiting)
        for child_run in waiting:
            child_run.blocking += len(made) - 1
        self._unfinished += len(made) - 1
        jr.done = True
        return runs
