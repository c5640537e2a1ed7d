"""`SlurmExecutor`: batch jobs on a cluster, from its login node or over SSH.

Each attempt's run directory on the cluster holds the job-protocol wrapper and a
``batch.sh`` with the ``#SBATCH`` lines that runs it; Slurm's output file is the
attempt's ``log`` (append mode), so Slurm's own ``*** JOB … CANCELLED ***`` line
lands there too.  Everything for a submission (directories, scripts, ``sbatch``)
goes to the cluster as one shell script on one command, locally or on one SSH
channel.  One `SlurmPoller` per cluster asks ``squeue -t all`` once per interval
for every job of this user, whatever their number, and ``sacct`` once for the
jobs that have left the queue; a failing squeue changes no job's state.

Array elements of a workflow (``array:``) that start together share one
``sbatch --array``: task ``t`` runs the element linked at ``<array dir>/t``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ccd.config import DaemonConfig, SlurmSettings
from ccd.executors.base import ExitStatus, LaunchError, LaunchRequest
from ccd.executors.follow import PolledAttempt, StateListener
from ccd.executors.slurm.access import Cluster, LocalCluster, RunFiles, SshCluster
from ccd.executors.slurm.model import (
    SQUEUE_FORMAT,
    Accounting,
    DirectiveError,
    QueueEntry,
    directives,
    expand_job_ids,
    final_verdict,
    job_name,
    memory_exceeded,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    queue_state,
    sacct_command,
    slurm_notice,
    task_ranges,
)
from ccd.executors.ssh.link import HostLink
from ccd.executors.wrapper import EXIT, LOG, PID, WRAPPER, attempt_dir, render_wrapper
from ccd.spec.model import Job
from ccd.states import JobState

log = logging.getLogger(__name__)

BATCH = "batch.sh"
#: in an array element's run directory: the array's job name and the element's task id
ARRAY_TASK = "array_task"
#: longest wait between two polls while squeue keeps failing
MAX_POLL_BACKOFF = 60.0
#: seconds to gather cancels into one scancel call
CANCEL_GATHER = 0.05
#: seconds to gather array elements that become ready together into one sbatch
ARRAY_GATHER = 0.2
#: polls a job may be missing from squeue before its exit file alone decides
GRACE_POLLS = 3
#: polls a cancelled job's log may be waited on for Slurm's notice line
NOTICE_POLLS = 2
#: Slurm's default MaxArraySize, used when the cluster does not say
DEFAULT_MAX_ARRAY_SIZE = 1001

#: every job of this user, finished ones too while Slurm remembers them (MinJobAge)
SQUEUE_COMMAND = f"squeue -h -t all --me -o {shlex.quote(SQUEUE_FORMAT)}"


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
            state = queue_state(entry.state)
            if state is not None:
                # a requeued job (node failure, preemption, `scontrol requeue`) is
                # PENDING again under the same id: queued, nothing resubmitted
                reason = (
                    entry.reason if state is JobState.QUEUED and entry.reason != "None" else None
                )
                if (state, reason) != (self._seen, self._reason):
                    self._tell(state, reason)
                if state is JobState.RUNNING:
                    await self.files.sync()
                return
            await self._conclude(entry.state, None, None)
            return
        if record is not None and queue_state(record.state) is None:
            await self._conclude(record.state, record.exit_code, record.signal)
            return
        # Not in the queue any more (aged out, or Slurm lost it), no accounting:
        # the wrapper's exit file decides, else Slurm's notice in the log.  Only after
        # a few polls: squeue can miss a job for one look (seen while a requeued job
        # waited for its BeginTime), and a requeued job's killed first run left an
        # exit file that its next run has not reset yet.  If accounting still says
        # PENDING/RUNNING, it has not got the end yet, or never will (a "runaway job").
        self._missing += 1
        if self._missing < GRACE_POLLS:
            return
        code = await self.files.exit_code()
        if code is not None:
            await self._finish(ExitStatus(code, time.time()))
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

    async def _conclude(self, slurm_state: str, code: int | None, signal: int | None) -> None:
        """A terminal Slurm state: the exit file gives the job's own exit code."""
        wrapper_code = await self.files.exit_code()
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
        await self._finish(ExitStatus(exit_code, time.time(), reason=reason, state=verdict.state))

    async def _finish(self, status: ExitStatus) -> None:
        if self.exited.done():
            return
        self._poller.unfollow(self)
        with contextlib.suppress(Exception):  # the log copy is best effort at the end
            await asyncio.wait_for(self.files.sync(), 30)
        self.settle(status)
        await self.files.close(status.exit_code)

    # -- the engine's side -------------------------------------------------------------
    async def kill(self, grace: float) -> None:
        """scancel (batched with others), and wait for Slurm to end the job.

        A failing scancel (controller down) is retried every poll interval until
        ``grace`` + 30 s have passed; the user is told which jobs may still be alive.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + 30
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
                await asyncio.wait({self.exited}, timeout=self._poller.interval)
                continue
            await asyncio.wait({self.exited}, timeout=max(0.0, deadline - loop.time()))
            return


class SlurmPoller:
    """All of one cluster's jobs: one squeue per interval, batched sacct and scancel."""

    def __init__(self, cluster: Cluster, settings: SlurmSettings) -> None:
        self.cluster = cluster
        self.interval = settings.poll_interval
        self.max_scancel = settings.max_scancel_batch
        #: None: not known yet (``auto`` finds out on first use)
        self.sacct: bool | None = {"yes": True, "no": False}.get(settings.sacct)
        self._sacct_required = settings.sacct == "yes"
        self._attempts: dict[str, SlurmAttempt] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._to_cancel: list[SlurmAttempt] = []
        self._cancel_task: asyncio.Task[None] | None = None
        self._max_array: int | None = None

    async def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        return await self.cluster.run(command, stdin)

    def follow(self, attempt: SlurmAttempt) -> None:
        self._attempts[attempt.slurm_id] = attempt
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(
                self._poll_forever(), name=f"slurm poll {self.cluster.name}"
            )

    def unfollow(self, attempt: SlurmAttempt) -> None:
        self._attempts.pop(attempt.slurm_id, None)

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._cancel_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._cancel_task = None

    async def max_array_size(self) -> int:
        """The cluster's MaxArraySize (task ids must stay below it), asked once."""
        if self._max_array is None:
            code, out, _ = await self.run("scontrol show config")
            found = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.M) if code == 0 else None
            self._max_array = int(found.group(1)) if found else DEFAULT_MAX_ARRAY_SIZE
        return self._max_array

    async def _poll_forever(self) -> None:
        delay = self.interval
        while True:
            if not self._attempts:
                self._changed.clear()
                await self._changed.wait()
                continue
            # a job submitted while squeue runs is not in its answer, yet not missing
            asked = list(self._attempts.values())
            code, out, err = await self.run(SQUEUE_COMMAND)
            if code != 0:
                # the controller or munge is down: that says nothing about the jobs
                if delay == self.interval:  # once per outage, not once per poll
                    self._warn_all(
                        f"squeue failed ({code}): {err.strip() or out.strip()}; job "
                        "states are kept and ccd keeps asking"
                    )
                delay = min(2 * delay, MAX_POLL_BACKOFF)
            else:
                if delay != self.interval:
                    log.info("squeue on %s answers again", self.cluster.name)
                delay = self.interval
                await self._apply(parse_squeue(out), asked)
            # An external system: asked once per interval for all jobs at once.
            await asyncio.sleep(delay)

    def _warn_all(self, message: str) -> None:
        log.warning("%s: %s", self.cluster.name, message)
        for attempt in list(self._attempts.values()):
            attempt.warn(message)

    async def _apply(
        self, entries: dict[str, QueueEntry], attempts: Sequence[SlurmAttempt]
    ) -> None:
        missing = [a for a in attempts if a.slurm_id not in entries]
        records = await self._accounting(missing) if missing else {}
        results = await asyncio.gather(
            *(a.update(entries.get(a.slurm_id), records.get(a.slurm_id)) for a in attempts),
            return_exceptions=True,
        )
        for attempt, result in zip(attempts, results, strict=True):
            if isinstance(result, Exception):
                log.warning("%s: updating %r failed: %r", self.cluster.name, attempt, result)

    async def _accounting(self, attempts: Sequence[SlurmAttempt]) -> dict[str, Accounting]:
        """One sacct for every job that left the queue (when the cluster has accounting)."""
        ids = [a.slurm_id for a in attempts if a.slurm_id[:1].isdigit()]
        if self.sacct is False or not ids:
            return {}
        # an explicit window: sacct's default is "since midnight"
        since = min(a.submitted for a in attempts) - 3600
        code, out, err = await self.run(sacct_command(ids, since))
        if code == 0:
            self.sacct = True
            return parse_sacct(out)
        no_accounting = code == 127 or "accounting storage is disabled" in err.lower()
        if self.sacct is None and not self._sacct_required and no_accounting:
            self.sacct = False
            log.info(
                "%s: sacct not usable (%s); finished jobs are read from their exit files",
                self.cluster.name,
                err.strip(),
            )
        else:
            self._warn_all(f"sacct failed ({code}): {err.strip()}; ccd keeps asking")
        return {}

    # -- cancelling ---------------------------------------------------------------------
    async def cancel(self, attempt: SlurmAttempt) -> None:
        """scancel, batched: cancels asked for in the same moment share one call."""
        self._to_cancel.append(attempt)
        if self._cancel_task is None:
            self._cancel_task = asyncio.create_task(self._flush_cancels(), name="scancel")
        await asyncio.shield(self._cancel_task)

    async def _flush_cancels(self) -> None:
        # a workflow cancel wakes every job's monitor at once: let them all join
        await asyncio.sleep(CANCEL_GATHER)
        batch, self._to_cancel = self._to_cancel, []
        self._cancel_task = None
        await self._scancel([a.slurm_id for a in batch if a.slurm_id[:1].isdigit()])

    async def _scancel(self, ids: list[str]) -> None:
        failed: list[str] = []
        errors: list[str] = []
        for start in range(0, len(ids), self.max_scancel):
            chunk = ids[start : start + self.max_scancel]
            code, _, err = await self.run("scancel " + " ".join(chunk))
            if code != 0:
                failed.extend(chunk)
                errors.append(err.strip())
        if failed:
            raise LaunchError(
                f"scancel failed ({'; '.join(errors)}); these Slurm jobs may still be "
                f"alive: {', '.join(failed)}"
            )

    # -- finding jobs by name -------------------------------------------------------------
    async def ids_named(self, name: str) -> list[str] | None:
        """Ids of this user's jobs called `name` (array elements one by one); None:
        squeue could not be asked."""
        code, out, _ = await self.run(f"squeue -h -t all --me -n {shlex.quote(name)} -o %i")
        if code != 0:
            return None
        return [job_id for text in out.split() for job_id in expand_job_ids(text)]


# -- submission ---------------------------------------------------------------------------
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


def heredoc(path: str, text: str) -> str:
    """Shell text that writes `text` to `path` verbatim."""
    while True:
        delimiter = f"CCD_EOF_{secrets.token_hex(8)}"
        if delimiter not in text:
            break
    body = text if text.endswith("\n") else text + "\n"
    return f"cat > {shlex.quote(path)} <<'{delimiter}'\n{body}{delimiter}\n"


def batch_script(lines: Sequence[str], run_dir: str) -> str:
    """The script sbatch runs: reset the exit file (a requeued job runs again), then
    the wrapper."""
    d = shlex.quote(run_dir)
    return (
        "#!/bin/sh\n"
        + "".join(f"{line}\n" for line in lines)
        + (f": > {d}/{EXIT}\nexec sh {d}/{WRAPPER}\n")
    )


def array_script(lines: Sequence[str], array_dir: str) -> str:
    d = shlex.quote(array_dir)
    return (
        "#!/bin/sh\n"
        + "".join(f"{line}\n" for line in lines)
        + (f't="$SLURM_ARRAY_TASK_ID"\n: > {d}/"$t"/{EXIT}\nexec sh {d}/"$t"/{WRAPPER}\n')
    )


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
            if isinstance(cluster, LocalCluster):
                env["CCD_SCRIPT"] = job.script
            else:
                env["CCD_SCRIPT"] = f"{run_dir}/{PurePosixPath(job.script).name}"
                try:
                    await cluster.upload(job.script, env["CCD_SCRIPT"])
                except Exception as exc:  # OSError or SFTPError: the job cannot start
                    raise LaunchError(f"cannot upload {job.script} to '{job.host}': {exc}") from exc
        wrapper = render_wrapper(
            run_dir=run_dir,
            workdir=job.workdir,
            env=env,
            command=request.command,
            setup=self._config.host_config(job.host).setup,
        )
        name = job_name(request.workflow_id, job.name, request.attempt)
        local_dir = self._local_dir(request.workflow_id, job.name, request.attempt)
        return Staged(request, run_dir, local_dir, wrapper, name)

    def _handle(self, staged: Staged, slurm_id: str, name: str) -> dict[str, Any]:
        return {
            "executor": "slurm",
            "host": staged.request.job.host,
            "run_dir": staged.run_dir,
            "local_dir": str(staged.local_dir),
            "slurm_id": slurm_id,
            "name": name,
            "submitted": time.time(),
        }

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
        try:
            lines = directives(
                job.resources,
                timeout=job.timeout,
                name=staged.name,
                output=f"{staged.run_dir}/{LOG}",
            )
        except DirectiveError as exc:
            raise LaunchError(str(exc)) from exc
        d = shlex.quote(staged.run_dir)
        script = (
            f"set -e\nmkdir -p {d}\n"
            + heredoc(f"{staged.run_dir}/{WRAPPER}", staged.wrapper)
            + heredoc(f"{staged.run_dir}/{BATCH}", batch_script(lines, staged.run_dir))
            + f"cd {d}\nsbatch --parsable {BATCH}\n"
        )
        poller = self.poller(job.host)
        slurm_id = await self._sbatch(poller, script, job.host)
        return self._attempt(poller, self._handle(staged, slurm_id, staged.name))

    def _attempt(self, poller: SlurmPoller, handle: dict[str, Any]) -> SlurmAttempt:
        cluster = poller.cluster
        run_dir, local_dir = (
            str(handle["run_dir"]),
            Path(handle.get("local_dir", handle["run_dir"])),
        )

        def files(attempt: SlurmAttempt) -> RunFiles:
            return cluster.files(run_dir, local_dir, attempt.grown, attempt.running)

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
        self, poller: SlurmPoller, requests: list[LaunchRequest]
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
        try:
            lines = directives(
                first.job.resources,
                timeout=first.job.timeout,
                name=name,
                output=f"{array_dir}/%a/{LOG}",
                array=task_ranges(range(len(staged))),
            )
        except DirectiveError as exc:
            raise LaunchError(str(exc)) from exc
        a = shlex.quote(array_dir)
        parts = [f"set -e\nmkdir -p {a}\n"]
        for task, item in enumerate(staged):
            d = shlex.quote(item.run_dir)
            parts.append(
                f"mkdir -p {d}\n"
                + heredoc(f"{item.run_dir}/{WRAPPER}", item.wrapper)
                + f"printf '%s\\n' {shlex.quote(name)} {task} > {d}/{ARRAY_TASK}\n"
                + f"ln -sfn {d} {a}/{task}\n"
            )
        parts.append(heredoc(f"{array_dir}/{BATCH}", array_script(lines, array_dir)))
        parts.append(f"cd {a}\nsbatch --parsable {BATCH}\n")
        array_id = await self._sbatch(poller, "".join(parts), first.job.host)
        return [
            self._attempt(poller, {**self._handle(item, f"{array_id}_{task}", name), "task": task})
            for task, item in enumerate(staged)
        ]

    # -- recovery -------------------------------------------------------------------------
    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        poller = self.poller(job.host)
        run_dir = await self._run_dir(poller.cluster, workflow_id, job.name, attempt)
        d = shlex.quote(run_dir)
        # what the run directory shows: staged at all, an array task, started
        _, out, _ = await poller.run(
            f"test -e {d}/{WRAPPER} && echo staged; cat {d}/{ARRAY_TASK} 2>/dev/null; "
            f"test -e {d}/{PID} && echo started; true"
        )
        lines = out.split()
        if "staged" not in lines:
            return None
        name, task = job_name(workflow_id, job.name, attempt), None
        if len(lines) >= 3 and lines[2].isdigit():
            name, task = lines[1], int(lines[2])
        ids = await poller.ids_named(name)
        delay = poller.interval
        while ids is None:
            # Slurm cannot say (controller down): guessing "no" would submit it twice,
            # so wait (the engine shows the job as `unknown` meanwhile)
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_POLL_BACKOFF)
            ids = await poller.ids_named(name)
        if task is not None:
            ids = [i for i in ids if i.endswith(f"_{task}")]
        if not ids and "started" not in lines:
            return None  # staged but never submitted (or forgotten by Slurm unstarted)
        local_dir = self._local_dir(workflow_id, job.name, attempt)
        # started but forgotten by Slurm: its exit file (or its absence) decides
        slurm_id = ids[0] if ids else f"unknown:{run_dir}"
        return {
            "executor": "slurm",
            "host": job.host,
            "run_dir": run_dir,
            "local_dir": str(local_dir),
            "slurm_id": slurm_id,
            "name": name,
            "submitted": time.time(),
        }

    async def adopt(self, handle: dict[str, Any]) -> SlurmAttempt:
        return self._attempt(self.poller(str(handle["host"])), handle)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for poller in self._pollers.values():
            await poller.close()


__all__ = ["SlurmExecutor"]
