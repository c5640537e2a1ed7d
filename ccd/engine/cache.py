"""Each job's cache key, and whether an earlier run of it is reused (``--resume``).

Each job gets a cache key (the parts are `ccd.caching`'s): the command it is
launched with, its script's bytes, its inputs' fingerprints (read where it runs),
its parents' keys and outputs. The key and its parts go with the job's launch
event (``running``, or ``queued`` in a batch queue), and the key with its
``succeeded`` one, which makes it a cache entry (`ccd.store.cache`). When the workflow resumes, an
entry with the same key from an earlier workflow of the same name is reused — if
the files it declared as ``outputs_files`` still exist — instead of running the job:
a ``job.cached`` event gives the job that run's outputs, and it succeeds at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Mapping

from ccd.caching import cache_key, canonical, key_parts
from ccd.commands import MissingOutput
from ccd.config import DaemonConfig
from ccd.engine.job import JobEvents, JobRun
from ccd.engine.outcome import Outcome
from ccd.engine.request import launch_request
from ccd.events import EventKind
from ccd.executors.base import LaunchError, LaunchRequest
from ccd.executors.environment import Environment
from ccd.executors.files import FileStates, local_states
from ccd.spec.model import Workflow
from ccd.states import JobState
from ccd.store import Store


class JobCache:
    """Keys and reuse for one workflow run's jobs."""

    def __init__(
        self,
        workflow_id: str,
        spec: Workflow,
        jobs: Mapping[str, JobRun],
        *,
        store: Store,
        events: JobEvents,
        config: DaemonConfig,
        files: FileStates,
    ) -> None:
        self._id = workflow_id
        self._spec = spec
        self._jobs = jobs
        self._store = store
        self._events = events
        self._config = config
        self._files = files

    async def consider(self, jr: JobRun) -> Outcome | None:
        """Before `jr` runs: the outcome of reusing an earlier run of it, or None: run
        it. Only a resuming run looks for one (and so computes the key now); otherwise
        `keep_key` computes it from the launch request, built once either way."""
        jr.cache_key, jr.cache_note, jr.reused = None, None, False
        if jr.spec.cache == "off":
            jr.cache_note = {"off": True}
            return None
        if jr.fresh:
            jr.cache_note = {"miss": "a rerun runs it again"}
        if not self._spec.resume or jr.fresh:
            return None
        try:
            request = launch_request(self._id, self._spec, self._jobs, jr, self._config)
        except MissingOutput:
            return None  # the launch fails with the same message
        keyed = await self._key(jr, request)
        if keyed is None:
            return None
        key, parts = keyed
        note = jr.cache_note = {"key": key, "parts": parts, "resume": True}
        entry = await self._store.cache.find(self._spec.name, key, exclude=self._id)
        if entry is None:
            note["miss"] = "no earlier run has this key"
            return None
        gone = await self._missing_outputs(jr)
        if gone:
            note["miss"] = f"output file {gone[0]} of the earlier run is gone"
            return None
        jr.cache_note = None
        jr.reused = True
        jr.outputs.update(entry.outputs)
        reason = (
            f"cached from {entry.origin_workflow} "
            f"({entry.origin_job} attempt {entry.origin_attempt})"
        )
        self._events.emit(
            jr.name,
            EventKind.JOB_CACHED,
            key=key,
            parts=parts,
            origin=entry.origin,
            outputs=entry.outputs,
            reason=reason,
        )
        return Outcome(JobState.SUCCEEDED, reason=reason)

    async def keep_key(self, jr: JobRun, request: LaunchRequest) -> None:
        """Give `jr` its key from the request it is launched with (not resuming)."""
        keyed = await self._key(jr, request)
        if keyed is not None:
            key, parts = keyed
            jr.cache_note = {**(jr.cache_note or {}), "key": key, "parts": parts, "resume": False}

    async def _key(self, jr: JobRun, request: LaunchRequest) -> tuple[str, dict[str, str]] | None:
        """Set `jr`'s cache key; the key and its parts (None: it has none, and was warned)."""
        try:
            parts = await self._parts(jr, request)
        except LaunchError as exc:
            self._events.warn(jr, f"no cache key: {exc}; the job runs")
            return None
        jr.cache_key = key = cache_key(parts)
        return key, parts

    async def _parts(self, jr: JobRun, request: LaunchRequest) -> dict[str, str]:
        job = jr.spec
        script = None
        if job.script is not None:
            # a remote job's script is uploaded from here: its bytes are read here too
            script = (await asyncio.to_thread(local_states, [job.script], True))[job.script]
            if script is None:
                raise LaunchError(f"script {job.script} is gone")
        inputs = (
            await self._files(job.host, job.inputs, job.cache == "content") if job.inputs else {}
        )
        parents = {name: self._parent(name) for name in job.needs}
        return key_parts(
            command=request.command,
            script_digest=script,
            environment=environment_text(request.environment),
            host=job.host,
            executor=job.executor.value,
            workdir=job.workdir,
            exports=request.exports,
            variables=request.env,
            params=self._spec.params,
            inputs=inputs,
            parents=parents,
        )

    def _parent(self, name: str) -> tuple[str | None, Mapping[str, str]]:
        parent = self._jobs[name]
        return parent.cache_key, parent.outputs

    async def _missing_outputs(self, jr: JobRun) -> list[str]:
        if not jr.spec.outputs_files:
            return []
        try:
            states = await self._files(jr.spec.host, jr.spec.outputs_files, False)
        except LaunchError as exc:
            self._events.warn(jr, f"could not check the earlier run's output files: {exc}")
            return list(jr.spec.outputs_files)
        return [path for path, state in states.items() if state is None]


@functools.lru_cache(maxsize=64)
def environment_text(environment: Environment) -> str:
    """An environment as canonical text, once per distinct one (most jobs share one)."""
    return canonical(dataclasses.asdict(environment))
