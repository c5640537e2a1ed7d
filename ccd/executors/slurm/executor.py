"""`SlurmExecutor`: batch jobs on a cluster whose login node is this machine.

The batch script is the job-protocol wrapper with ``#SBATCH`` lines; its output
file is the attempt's ``log`` (append mode), so Slurm's own ``*** JOB … CANCELLED
***`` line lands in the log too.  One `SlurmPoller` per cluster asks ``squeue -t
all`` once per interval for every job of this user, whatever their number, and
tells each attempt what Slurm says; a failing ``squeue`` changes no job's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccd.config import DaemonConfig
from ccd.executors.base import ExitStatus, LaunchError, LaunchRequest
from ccd.executors.follow import PolledAttempt, StateListener
from ccd.executors.slurm.model import (
    SQUEUE_FORMAT,
    DirectiveError,
    QueueEntry,
    directives,
    final_verdict,
    job_name,
    parse_sbatch,
    parse_squeue,
    queue_state,
)
from ccd.executors.wrapper import EXIT, LOG, parse_exit_file, render_wrapper
from ccd.spec.model import Job
from ccd.states import JobState

log = logging.getLogger(__name__)

BATCH = "batch.sh"
#: longest wait between two polls while squeue keeps failing
MAX_POLL_BACKOFF = 60.0
#: seconds to gather cancels into one scancel call
CANCEL_GATHER = 0.05
#: polls a job may be missing from squeue before its exit file alone decides
GRACE_POLLS = 3

#: every job of this user, finished ones too while Slurm remembers them (MinJobAge)
SQUEUE_COMMAND = f"squeue -h -t all --me -o {shlex.quote(SQUEUE_FORMAT)}"


async def run_local(command: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run a shell command on this machine (the cluster's login node)."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


class SlurmAttempt(PolledAttempt):
    enforces_timeout = True

    def __init__(
        self, poller: SlurmPoller, slurm_id: str, run_dir: Path, handle: dict[str, Any]
    ) -> None:
        self.slurm_id = slurm_id
        self.run_dir = run_dir
        super().__init__(run_dir / LOG)
        self.handle = handle
        self._seen: JobState | None = None
        self._reason: str | None = None
        self._missing = 0
        self._poller = poller
        poller.follow(self)

    def on_state(self, listener: StateListener) -> None:
        super().on_state(listener)
        if self._seen is None:
            self._seen, self._reason = JobState.QUEUED, "submitted to Slurm"
        listener(self._seen, self._reason)

    def _tell(self, state: JobState, reason: str | None) -> None:
        self._seen, self._reason = state, reason
        self.tell(state, reason)

    # -- the poller's side ------------------------------------------------------------
    def update(self, entry: QueueEntry | None) -> bool:
        """Apply what squeue said (None: not listed). True once the attempt is final."""
        self.grown()  # the log may have grown: let the reader look
        if entry is not None:
            self._missing = 0
            state = queue_state(entry.state)
            if state is not None:
                reason = (
                    entry.reason if state is JobState.QUEUED and entry.reason != "None" else None
                )
                if (state, reason) != (self._seen, self._reason):
                    self._tell(state, reason)
                return False
            code = self._exit_code()
            verdict = final_verdict(entry.state, code, None)
            if verdict is None:
                log.warning("Slurm job %s in unknown state %s", self.slurm_id, entry.state)
                return False
            if verdict.state is JobState.FAILED and verdict.reason is None and code is None:
                return self._finish(ExitStatus(None, time.time(), reason="failed in Slurm"))
            exit_code = 0 if verdict.state is JobState.SUCCEEDED else code
            return self._finish(
                ExitStatus(exit_code, time.time(), reason=verdict.reason, state=verdict.state)
            )
        # Not in the queue any more (aged out, or Slurm lost it): the exit file decides.
        self._missing += 1
        code = self._exit_code()
        if code is not None:
            return self._finish(ExitStatus(code, time.time()))
        if self._missing >= GRACE_POLLS:
            return self._finish(
                ExitStatus(
                    None, time.time(), reason="lost: not in Slurm's queue and no exit code recorded"
                )
            )
        return False

    def _exit_code(self) -> int | None:
        try:
            return parse_exit_file((self.run_dir / EXIT).read_text())
        except FileNotFoundError:
            return None

    def _finish(self, status: ExitStatus) -> bool:
        if self.settle(status):
            self._poller.unfollow(self)
        return True

    # -- the engine's side -------------------------------------------------------------
    async def kill(self, grace: float) -> None:
        await self._poller.cancel(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), grace + 30)


class SlurmPoller:
    """All of one cluster's jobs: one squeue per interval, batched scancel."""

    def __init__(
        self, interval: float, max_scancel: int, run: Callable[[str], Any] = run_local
    ) -> None:
        self.interval = interval
        self.max_scancel = max_scancel
        self._run = run
        self._attempts: dict[str, SlurmAttempt] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._to_cancel: list[SlurmAttempt] = []
        self._cancel_task: asyncio.Task[None] | None = None

    async def run(self, command: str) -> tuple[int, str, str]:
        result: tuple[int, str, str] = await self._run(command)
        return result

    def follow(self, attempt: SlurmAttempt) -> None:
        self._attempts[attempt.slurm_id] = attempt
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._poll_forever(), name="slurm poll")

    def unfollow(self, attempt: SlurmAttempt) -> None:
        self._attempts.pop(attempt.slurm_id, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll_forever(self) -> None:
        delay = self.interval
        while True:
            if not self._attempts:
                self._changed.clear()
                await self._changed.wait()
                continue
            code, out, err = await self._run(
                f"squeue -h -t all --me -o {shlex.quote(SQUEUE_FORMAT)}"
            )
            if code != 0:
                # the controller or munge is down: that says nothing about the jobs
                if delay == self.interval:  # once per outage, not once per poll
                    message = (
                        f"squeue failed ({code}): {err.strip() or out.strip()}; job "
                        "states are kept and ccd keeps asking"
                    )
                    log.warning("%s", message)
                    for attempt in list(self._attempts.values()):
                        attempt.warn(message)
                delay = min(2 * delay, MAX_POLL_BACKOFF)
            else:
                if delay != self.interval:
                    log.info("squeue answers again")
                delay = self.interval
                entries = parse_squeue(out)
                for slurm_id, attempt in list(self._attempts.items()):
                    attempt.update(entries.get(slurm_id))
            # An external system: asked once per interval for all jobs at once.
            await asyncio.sleep(delay)

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
        await self._scancel(batch)

    async def _scancel(self, attempts: list[SlurmAttempt]) -> None:
        ids = [a.slurm_id for a in attempts]
        for start in range(0, len(ids), self.max_scancel):
            chunk = ids[start : start + self.max_scancel]
            code, _, err = await self._run("scancel " + " ".join(chunk))
            if code != 0:
                raise LaunchError(
                    f"scancel failed ({code}): {err.strip()}; these jobs may "
                    f"still be alive: {', '.join(chunk)}"
                )


class SlurmExecutor:
    def __init__(self, config: DaemonConfig) -> None:
        self._config = config
        self._pollers: dict[str, SlurmPoller] = {}

    def poller(self, host: str) -> SlurmPoller:
        poller = self._pollers.get(host)
        if poller is None:
            if host != "localhost":
                raise LaunchError(
                    f"Slurm over SSH (host '{host}') is not available yet; "
                    "run ccd on the cluster's login node (host: localhost)"
                )
            settings = self._config.host_config(host).slurm
            poller = self._pollers[host] = SlurmPoller(
                settings.poll_interval, settings.max_scancel_batch
            )
        return poller

    async def ready(self, host: str) -> None:
        self.poller(host)

    async def launch(self, request: LaunchRequest) -> SlurmAttempt:
        job = request.job
        run_dir = self._config.runs_dir / request.workflow_id / job.name / str(request.attempt)
        env = {**request.env, "CCD_RUN_DIR": str(run_dir)}
        if job.script is not None:
            env["CCD_SCRIPT"] = job.script
        name = job_name(request.workflow_id, job.name, request.attempt)
        try:
            lines = directives(
                job.resources, timeout=job.timeout, name=name, output=str(run_dir / LOG)
            )
        except DirectiveError as exc:
            raise LaunchError(str(exc)) from exc
        wrapper = render_wrapper(
            run_dir=str(run_dir), workdir=job.workdir, env=env, command=request.command
        )
        script = wrapper.replace("#!/bin/sh\n", "#!/bin/sh\n" + "\n".join(lines) + "\n", 1)
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (run_dir / BATCH).write_text(script)
        poller = self.poller(job.host)
        code, out, err = await poller.run(
            f"cd {shlex.quote(str(run_dir))} && sbatch --parsable {BATCH}"
        )
        slurm_id = parse_sbatch(out) if code == 0 else None
        if slurm_id is None:
            raise LaunchError(f"sbatch refused the job: {err.strip() or out.strip()}")
        handle = {
            "executor": "slurm",
            "host": job.host,
            "run_dir": str(run_dir),
            "slurm_id": slurm_id,
            "name": name,
        }
        return SlurmAttempt(poller, slurm_id, run_dir, handle)

    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        run_dir = self._config.runs_dir / workflow_id / job.name / str(attempt)
        if not (run_dir / BATCH).exists():
            return None
        # the job name encodes the attempt: sbatch may have taken it before we died
        name = job_name(workflow_id, job.name, attempt)
        poller = self.poller(job.host)
        code, out, _ = await poller.run(f"squeue -h -t all --me -n {shlex.quote(name)} -o %i")
        ids = out.split()
        if code != 0 or not ids:
            return None
        return {
            "executor": "slurm",
            "host": job.host,
            "run_dir": str(run_dir),
            "slurm_id": ids[0],
            "name": name,
        }

    async def adopt(self, handle: dict[str, Any]) -> SlurmAttempt:
        poller = self.poller(str(handle["host"]))
        return SlurmAttempt(poller, str(handle["slurm_id"]), Path(handle["run_dir"]), handle)

    async def close(self) -> None:
        for poller in self._pollers.values():
            await poller.close()


__all__ = ["SlurmExecutor"]
