"""`Engine`: the daemon's workflows while they run (submit, retry, recover, cancel, close).

The engine owns one `WorkflowRun` per running workflow and the slot pools they
share.  It loads what a run needs from the store (a retry or a new daemon's
recovery) and records the workflow-level events; each run does the rest.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from ccd.config import DaemonConfig
from ccd.engine import fanout
from ccd.engine.job import LAUNCHED, JobRun
from ccd.engine.pool import check_workflow
from ccd.engine.request import rerun_targets
from ccd.engine.run import WorkflowRun
from ccd.engine.slots import Slots
from ccd.errors import Conflict, NotFound
from ccd.events import Event, EventKind
from ccd.executors.base import Executor
from ccd.executors.files import FileStates, HostFiles
from ccd.fold import EncodedJSON
from ccd.spec.model import ExecutorKind, Job, Workflow
from ccd.states import RETRYABLE_JOB_STATES, JobState, check_transition
from ccd.store import Store

log = logging.getLogger(__name__)


def new_workflow_id() -> str:
    return secrets.token_hex(4)


class Engine:
    def __init__(
        self,
        store: Store,
        config: DaemonConfig,
        executors: Mapping[ExecutorKind, Executor],
        files: FileStates | None = None,
    ) -> None:
        self._store = store
        #: reads jobs' input and output files where they run (cache keys)
        self._files = files or HostFiles()
        self._config = config
        self._executors = executors
        self._slots = Slots(config)
        self._runs: dict[str, WorkflowRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def is_running(self, workflow_id: str) -> bool:
        return workflow_id in self._runs

    def live_spec(self, workflow_id: str) -> Workflow:
        """The DAG a running workflow has now (grown by foreach and added jobs), to
        check jobs to add against; Conflict once it has ended."""
        return self._open_run(workflow_id).spec

    def _open_run(self, workflow_id: str) -> WorkflowRun:
        """The run of a workflow that still takes jobs; Conflict saying what to do if not."""
        run = self._runs.get(workflow_id)
        if run is None or run.finishing:
            raise Conflict(
                f"workflow {workflow_id} has ended, so no jobs can join it: submit them "
                f"as a workflow of their own, or 'ccctl retry {workflow_id}' to run its "
                "failed, cancelled and skipped jobs again"
            )
        return run

    async def submit(self, spec: Workflow) -> str:
        # a local job asking for more GPUs, CPUs or memory than the host has would wait
        # for ever: refused here (a 400), before anything is recorded
        check_workflow(spec, self._slots.resources)
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
            files=self._files,
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

    async def add_jobs(self, workflow_id: str, jobs: Mapping[str, Job]) -> list[str]:
        """Add checked `jobs` to a running workflow; they start when their parents
        are final (at once if they are). The names added, in order."""
        run = self._open_run(workflow_id)
        jobs = run.current_parents(jobs)
        check_workflow(run.spec.model_copy(update={"jobs": dict(jobs)}), self._slots.resources)
        # after every position a job has had (a foreach's elements take fractions of its)
        first = len(run.spec.jobs)
        data = {
            "jobs": {name: job.model_dump(mode="json") for name, job in jobs.items()},
            "positions": {name: first + i for i, name in enumerate(jobs)},
            "reason": "added by a user",
        }
        committed = self._store.emit(Event(workflow_id, None, EventKind.WORKFLOW_JOBS_ADDED, data))
        runs = run.add(jobs)  # counted now, so the run cannot end before they do
        await committed  # recorded before any starts: a restart runs each exactly once
        run.start_ready(runs)
        return list(jobs)

    def cancel(self, workflow_id: str, job: str | None = None) -> None:
        run = self._runs.get(workflow_id)
        if run is None:
            raise Conflict(f"workflow {workflow_id} is not running; nothing to cancel")
        run.cancel(job)

    async def retry(self, workflow_id: str) -> list[str]:
        """Run the failed, timed-out, cancelled and skipped jobs of a finished workflow again."""
        self._not_running(workflow_id)
        spec, rows = await self._load(workflow_id)
        again = [r["name"] for r in rows if JobState(r["state"]) in RETRYABLE_JOB_STATES]
        if not again:
            raise Conflict(f"workflow {workflow_id} has no failed, cancelled or skipped jobs")
        await self._run_again(workflow_id, spec, rows, again, "retry")
        return again

    async def rerun(self, workflow_id: str, job: str, downstream: bool = False) -> list[str]:
        """Run `job` of a finished workflow again, even if it succeeded (an array or
        foreach job: all its elements), and with `downstream` every job that needs
        it; the rest keep their outcome. The jobs run again, in spec order."""
        self._not_running(workflow_id)
        spec, rows = await self._load(workflow_id)
        again = rerun_targets(spec, job, downstream)
        if not again:
            raise NotFound(f"workflow {workflow_id} has no job '{job}'")
        await self._run_again(workflow_id, spec, rows, again, "rerun")
        return again

    def _not_running(self, workflow_id: str) -> None:
        if workflow_id in self._runs:
            raise Conflict(f"workflow {workflow_id} is still running; wait for it or cancel it")

    async def _run_again(
        self,
        workflow_id: str,
        spec: Workflow,
        rows: list[dict[str, Any]],
        again: list[str],
        reason: str,
    ) -> None:
        jobs = self._job_runs(spec, rows, await self._store.cache.keys_of(workflow_id))
        for name in again:
            jr = jobs[name]
            check_transition(jr.state, JobState.PENDING)
            jr.state = JobState.PENDING
            jr.handle = None
            jr.fresh = reason == "rerun"  # asked to run again, not to be reused
            self._store.emit(
                Event(
                    workflow_id,
                    name,
                    EventKind.JOB_STATE,
                    {"state": JobState.PENDING.value, "reason": reason},
                )
            )
        await self._store.record(
            Event(workflow_id, None, EventKind.WORKFLOW_STATE, {"state": "running"})
        )
        self._start(workflow_id, spec, jobs)

    async def recover(self) -> int:
        """Resume every workflow an earlier daemon left unfinished; returns how many."""
        loaded: list[tuple[str, Workflow, dict[str, JobRun]]] = []
        for row in await self._store.unfinished_workflows():
            spec, rows = await self._load(row["id"])
            keys = await self._store.cache.keys_of(row["id"], recovering=True)
            jobs = self._job_runs(spec, rows, keys)
            self._claim(row["id"], jobs)
            loaded.append((row["id"], spec, jobs))
        # every running attempt holds its GPUs (and CPUs, memory) again before any
        # workflow starts, so no job started now can take the devices one of them uses
        for workflow_id, spec, jobs in loaded:
            adopted = sum(1 for jr in jobs.values() if jr.handle and jr.state in LAUNCHED)
            waiting = sum(1 for jr in jobs.values() if not jr.state.is_final) - adopted
            # the event log shows each restart and what it picked up
            self._store.emit(
                Event(
                    workflow_id,
                    None,
                    EventKind.WORKFLOW_STATE,
                    {
                        "state": "running",
                        "reason": f"resumed by a new daemon: {adopted} launched job(s) "
                        f"followed again, {waiting} still to start or check",
                    },
                )
            )
            self._start(workflow_id, spec, jobs)
        return len(loaded)

    def _claim(self, workflow_id: str, jobs: Mapping[str, JobRun]) -> None:
        """Hold what each launched attempt of a recovered workflow holds."""
        for jr in jobs.values():
            if jr.handle and jr.state in LAUNCHED:
                self._slots.claim(workflow_id, jr.spec, jr.handle)

    async def _load(self, workflow_id: str) -> tuple[Workflow, list[dict[str, Any]]]:
        raw = await self._store.get_spec(workflow_id)
        if raw is None:
            raise NotFound(f"no workflow {workflow_id}")
        # foreach jobs that fanned out run as their elements again
        spec = fanout.expanded(Workflow.model_validate(raw))
        return spec, await self._store.get_jobs(workflow_id)

    @staticmethod
    def _job_runs(
        spec: Workflow, rows: list[dict[str, Any]], keys: Mapping[str, str]
    ) -> dict[str, JobRun]:
        """The jobs of a stored workflow; `keys`: the cache keys of those that have one
        (their children's keys hold them; an adopted attempt succeeds with it)."""
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
                cache_key=keys.get(name),
            )
        return jobs

    async def close(self) -> None:
        """Stop driving workflows; launched jobs keep running for the next daemon."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runs.clear()
