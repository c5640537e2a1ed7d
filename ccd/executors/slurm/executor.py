"""`SlurmExecutor`: batch jobs on a cluster, from its login node or over SSH.

Each attempt's run directory on the cluster holds the job-protocol wrapper and a
``batch.sh`` with the ``#SBATCH`` lines that runs it; Slurm's output file is the
attempt's ``log`` (append mode), so Slurm's own ``*** JOB … CANCELLED ***`` line
lands there too.  Everything for a submission goes to the cluster as one shell
script (`scripts`) on one command, locally or on one SSH channel.  This module
stages and submits, finds and adopts attempts; one `SlurmPoller` per cluster
follows them (`poller`), and each `SlurmAttempt` reads its own outcome (`attempt`).

Array elements of a workflow (``array:``) that start together share one
``sbatch --array``: task ``t`` runs the element linked at ``<array dir>/t``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ccd.config import DaemonConfig
from ccd.executors.base import LaunchError, LaunchRequest
from ccd.executors.slurm.access import Cluster, LocalCluster, RunFiles, SshCluster
from ccd.executors.slurm.attempt import SlurmAttempt
from ccd.executors.slurm.model import (
    DirectiveError,
    directives,
    job_name,
    parse_sbatch,
    task_ranges,
)
from ccd.executors.slurm.poller import SlurmPoller
from ccd.executors.slurm.scripts import (
    Element,
    array_submit_script,
    parse_probe,
    probe_command,
    submit_script,
)
from ccd.executors.ssh.link import HostLink
from ccd.executors.wrapper import LOG, attempt_dir, render_wrapper
from ccd.spec.model import Job

#: seconds to gather array elements that become ready together into one sbatch
ARRAY_GATHER = 0.2


@dataclass(slots=True)
class Staged:
    """One attempt's files, to be written on the cluster."""

    request: LaunchRequest
    run_dir: str
    local_dir: Path
    wrapper: str
    name: str


@dataclass(slots=True)
class _ArrayBatch:
    members: list[tuple[LaunchRequest, asyncio.Future[SlurmAttempt]]] = field(default_factory=list)
    size: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)


def _handle(host: str, run_dir: str, local_dir: Path, slurm_id: str, name: str) -> dict[str, Any]:
    """What the engine stores to adopt the attempt again."""
    return {
        "executor": "slurm",
        "host": host,
        "run_dir": run_dir,
        "local_dir": str(local_dir),
        "slurm_id": slurm_id,
        "name": name,
        "submitted": time.time(),
    }


def _directives(job: Job, *, name: str, output: str, array: str | None = None) -> list[str]:
    try:
        return directives(job.resources, timeout=job.timeout, name=name, output=output, array=array)
    except DirectiveError as exc:
        raise LaunchError(str(exc)) from exc


class SlurmExecutor:
    def __init__(self, config: DaemonConfig, links: Callable[[str], HostLink]) -> None:
        self._config = config
        self._links = links
        self._pollers: dict[str, SlurmPoller] = {}
        self._arrays: dict[tuple[str, str], _ArrayBatch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def poller(self, host: str) -> SlurmPoller:
        poller = self._pollers.get(host)
        if poller is None:
            cluster: Cluster = (
                LocalCluster(self._config.runs_dir)
                if host == "localhost"
                else SshCluster(self._links(host))
            )
            settings = self._config.host_config(host).slurm
            poller = self._pollers[host] = SlurmPoller(cluster, settings)
        return poller

    async def ready(self, host: str) -> None:
        await self.poller(host).cluster.root()

    def _local_dir(self, workflow_id: str, job: str, attempt: int) -> Path:
        return attempt_dir(self._config.runs_dir, workflow_id, job, attempt)

    async def _run_dir(self, cluster: Cluster, workflow_id: str, job: str, attempt: int) -> str:
        return str(attempt_dir(PurePosixPath(await cluster.root()), workflow_id, job, attempt))

    async def _stage(self, request: LaunchRequest) -> Staged:
        job = request.job
        cluster = self.poller(job.host).cluster
        run_dir = await self._run_dir(cluster, request.workflow_id, job.name, request.attempt)
        env = {**request.env, "CCD_RUN_DIR": run_dir}
        if job.script is not None:
            env["CCD_SCRIPT"] = await self._place_script(cluster, job, run_dir)
        wrapper = render_wrapper(
            run_dir=run_dir,
            workdir=job.workdir,
            env=env,
            command=request.command,
            environment=request.environment,
            exports=request.exports,
            script=env.get("CCD_SCRIPT"),
            self_measure=True,  # slurmstepd reaps it: it writes its own usage file
        )
        name = job_name(request.workflow_id, job.name, request.attempt)
        local_dir = self._local_dir(request.workflow_id, job.name, request.attempt)
        return Staged(request, run_dir, local_dir, wrapper, name)

    async def _place_script(self, cluster: Cluster, job: Job, run_dir: str) -> str:
        """Where the job's script is on the cluster (uploaded into `run_dir` if remote)."""
        assert job.script is not None
        if isinstance(cluster, LocalCluster):
            return job.script
        remote = f"{run_dir}/{PurePosixPath(job.script).name}"
        try:
            await cluster.upload(job.script, remote)
        except Exception as exc:  # OSError or SFTPError: the job cannot start
            raise LaunchError(f"cannot upload {job.script} to '{job.host}': {exc}") from exc
        return remote

    async def _sbatch(self, poller: SlurmPoller, script: str, where: str) -> str:
        """Run the staging script (ends with sbatch); the new job id."""
        code, out, err = await poller.run("sh -s", stdin=script)
        slurm_id = parse_sbatch(out) if code == 0 else None
        if slurm_id is None:
            raise LaunchError(f"sbatch refused the job on '{where}': {err.strip() or out.strip()}")
        return slurm_id

    async def launch(self, request: LaunchRequest) -> SlurmAttempt:
        if request.job.array is not None and request.attempt == 1:
            return await self._join_array(request)
        staged = await self._stage(request)
        job = request.job
        lines = _directives(job, name=staged.name, output=f"{staged.run_dir}/{LOG}")
        poller = self.poller(job.host)
        script = submit_script(staged.run_dir, staged.wrapper, lines)
        slurm_id = await self._sbatch(poller, script, job.host)
        handle = _handle(job.host, staged.run_dir, staged.local_dir, slurm_id, staged.name)
        return self._attempt(poller, handle)

    def _attempt(self, poller: SlurmPoller, handle: dict[str, Any]) -> SlurmAttempt:
        cluster = poller.cluster
        run_dir, local_dir = (
            str(handle["run_dir"]),
            Path(handle.get("local_dir", handle["run_dir"])),
        )

        def files(attempt: SlurmAttempt) -> RunFiles:
            return cluster.files(run_dir, local_dir, attempt.grown, attempt.running, attempt.warn)

        return SlurmAttempt(poller, str(handle["slurm_id"]), files, handle)

    # -- arrays ---------------------------------------------------------------------------
    async def _join_array(self, request: LaunchRequest) -> SlurmAttempt:
        """Wait for the other elements that start now; one sbatch --array for all."""
        element = request.job.array
        assert element is not None
        key = (request.workflow_id, element.group)
        batch = self._arrays.get(key)
        if batch is None:
            batch = self._arrays[key] = _ArrayBatch(size=element.size)
            task = asyncio.create_task(self._submit_array(key, batch), name="sbatch --array")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        future: asyncio.Future[SlurmAttempt] = asyncio.get_running_loop().create_future()
        batch.members.append((request, future))
        if len(batch.members) >= batch.size:
            batch.full.set()
        return await future

    async def _submit_array(self, key: tuple[str, str], batch: _ArrayBatch) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(batch.full.wait(), ARRAY_GATHER)
        del self._arrays[key]  # later elements (slots freed up) start a new batch
        members = batch.members
        try:
            poller = self.poller(members[0][0].job.host)
            chunk = await poller.max_array_size()
            for start in range(0, len(members), chunk):
                part = members[start : start + chunk]
                attempts = await self._sbatch_array(poller, [r for r, _ in part])
                for (_, future), attempt in zip(part, attempts, strict=True):
                    future.set_result(attempt)
        except Exception as exc:  # every waiting element learns why
            error = exc if isinstance(exc, LaunchError) else LaunchError(str(exc))
            for _, future in members:
                if not future.done():
                    future.set_exception(error)

    async def _sbatch_array(
        self, poller: SlurmPoller, requests: Sequence[LaunchRequest]
    ) -> list[SlurmAttempt]:
        staged = [await self._stage(request) for request in requests]
        first = requests[0]
        element = first.job.array
        assert element is not None
        lowest = min(r.job.array.index for r in requests if r.job.array is not None)
        # one name for the whole submission: finds it again after a crash
        name = job_name(first.workflow_id, f"{element.group}@{lowest}", first.attempt)
        array_dir = await self._run_dir(
            poller.cluster, first.workflow_id, f"{element.group}@array", lowest
        )
        lines = _directives(
            first.job,
            name=name,
            output=f"{array_dir}/%a/{LOG}",
            array=task_ranges(range(len(staged))),
        )
        elements = [Element(item.run_dir, item.wrapper) for item in staged]
        script = array_submit_script(array_dir, name, elements, lines)
        array_id = await self._sbatch(poller, script, first.job.host)
        attempts = []
        for task, item in enumerate(staged):
            host, slurm_id = item.request.job.host, f"{array_id}_{task}"
            handle = _handle(host, item.run_dir, item.local_dir, slurm_id, name)
            attempts.append(self._attempt(poller, {**handle, "task": task}))
        return attempts

    # -- recovery -------------------------------------------------------------------------
    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        poller = self.poller(job.host)
        run_dir = await self._run_dir(poller.cluster, workflow_id, job.name, attempt)
        _, out, _ = await poller.run(probe_command(run_dir))
        probe = parse_probe(out)
        if not probe.staged:
            return None
        name, task = probe.array_task or (job_name(workflow_id, job.name, attempt), None)
        # Slurm cannot say while its controller is down: this waits (the engine shows
        # the job as `unknown` meanwhile), since guessing "no" would submit it twice
        ids = await poller.ids_named(name)
        if task is not None:
            ids = [i for i in ids if i.endswith(f"_{task}")]
        if not ids and not probe.started:
            return None  # staged but never submitted (or forgotten by Slurm unstarted)
        # started but forgotten by Slurm: its exit file (or its absence) decides
        slurm_id = ids[0] if ids else f"unknown:{run_dir}"
        local_dir = self._local_dir(workflow_id, job.name, attempt)
        return _handle(job.host, run_dir, local_dir, slurm_id, name)

    async def adopt(self, handle: dict[str, Any]) -> SlurmAttempt:
        return self._attempt(self.poller(str(handle["host"])), handle)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for poller in self._pollers.values():
            await poller.close()


__all__ = ["SlurmExecutor"]
