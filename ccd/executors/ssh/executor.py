"""`SshExecutor` and `SshAttempt`: launch detached, follow by byte offset, kill the group.

A remote attempt lives in ``<remote root>/<workflow>/<job>/<attempt>/`` on the
host (the same wrapper as local jobs) and is mirrored into the same path under
the daemon's local runs directory.  The local mirror's size *is* the offset the
host's follower streams the log from, so a dropped connection or a daemon
restart resumes exactly where the mirror ends: no line lost, none repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import asyncssh

from ccd.config import DaemonConfig
from ccd.executors.base import ExitStatus, LaunchError, LaunchRequest
from ccd.executors.follow import PolledAttempt
from ccd.executors.ssh.link import HostLink
from ccd.executors.ssh.mirror import RemoteRunDir
from ccd.executors.wrapper import PID, attempt_dir, parse_exit_file, render_wrapper
from ccd.spec.model import Job
from ccd.states import JobState
from ccd.usage import Usage

log = logging.getLogger(__name__)

#: how often (in polls) the SFTP poller checks that a wrapper with no exit file still lives
LIVENESS_EVERY = 10
#: seconds the end of an attempt may wait to read its usage file
USAGE_WAIT = 10.0


def exit_status(code: int | None, ended: float, missing: str) -> ExitStatus:
    """The one place an SSH attempt's end becomes an `ExitStatus`: the exit file's
    code (from the follower's exit frame or an SFTP read), or why there is none."""
    return ExitStatus(exit_code=code, ended=ended, reason=None if code is not None else missing)


class SshAttempt(PolledAttempt):
    shared = False  # the wrapper runs on the host the follower watches

    def __init__(
        self, link: HostLink, remote_dir: str, local_dir: Path, pid: int, handle: dict[str, Any]
    ) -> None:
        self.link = link
        self.remote_dir = remote_dir
        self.local_dir = local_dir
        self.pid = pid
        self.handle = handle
        self.files = RemoteRunDir(link, remote_dir, local_dir, self.grown)
        super().__init__(self.files.log_path)
        #: the end is being recorded (its usage file read): a second sighting is ignored
        self._ending = False
        self._polls = 0
        self._poll_lock = asyncio.Lock()
        self._killed = False
        link.follow(remote_dir, self)

    def __repr__(self) -> str:
        return f"<ssh attempt {self.link.name}:{self.remote_dir}>"

    # -- what the host's follower tells ---------------------------------------------------
    def reachability(self, reachable: bool, reason: str | None) -> None:
        self.tell(JobState.RUNNING if reachable else JobState.UNREACHABLE, reason)

    def exit_seen(self, text: bytes, mtime: float) -> None:
        self._end(parse_exit_file(text.decode(errors="replace")), mtime)

    def vanished(self) -> None:
        self._end(None, time.time())

    # -- the SFTP fallback ------------------------------------------------------------------
    async def poll(self, sftp: asyncssh.SFTPClient) -> None:
        if self.exited.done():
            return
        async with self._poll_lock:
            # the exit file first: log bytes written before it are then all readable
            code, ended = await self.files.read_exit(sftp)
            await self.files.drain(sftp)
            if code is not None:
                self._end(code, ended)
                return
            self._polls += 1
            if self._polls % LIVENESS_EVERY == 0 and not await self._wrapper_alive():
                # gone without an exit file (killed, host rebooted): one last look
                code, ended = await self.files.read_exit(sftp)
                await self.files.drain(sftp)
                self._end(code, ended)

    async def refresh(self, sftp: asyncssh.SFTPClient) -> None:
        async with self._poll_lock:
            code, ended = await self.files.read_exit(sftp)
            await self.files.drain(sftp)
        if code is not None:
            self._end(code, ended)

    async def _usage(self) -> Usage | None:
        """What the job cost, from the ``usage`` file its wrapper wrote before ``exit``:
        the one read of it, at the attempt's end (best effort: a host that drops now
        leaves the attempt without figures, not without its end)."""
        try:
            _, sftp = await asyncio.wait_for(self.link.ready(fail_fast=False), USAGE_WAIT)
            return await asyncio.wait_for(self.files.read_usage(sftp), USAGE_WAIT)
        except (TimeoutError, OSError, asyncssh.Error, LaunchError):
            return None

    async def _wrapper_alive(self) -> bool:
        result = await self.link.run(f"kill -0 {self.pid} 2>/dev/null && echo alive")
        return "alive" in str(result.stdout)

    def _end(self, code: int | None, ended: float) -> None:
        if self.exited.done() or self._ending:
            return
        self._ending = True
        self.link.unfollow(self.remote_dir)
        missing = "killed by SIGKILL" if self._killed else "lost"
        status = exit_status(code, ended, missing)
        if status.exit_code is None:
            self._settle(status, None)
            return
        # the wrapper wrote its usage file before the exit file: one read, owned by
        # the link (a shutdown cancels it, and the attempt still ends, without figures)
        self.link.spawn(self._end_with_usage(status), f"usage of {self.remote_dir}")

    async def _end_with_usage(self, status: ExitStatus) -> None:
        usage = None
        try:
            usage = await self._usage()
        finally:
            self._settle(status, usage)

    def _settle(self, status: ExitStatus, usage: Usage | None) -> None:
        if not self.exited.done():
            self.settle(status if usage is None else replace(status, usage=usage))
        self.files.close(status.exit_code)

    # -- the engine's side -------------------------------------------------------------
    async def kill(self, grace: float) -> None:
        if self.exited.done():
            return
        await self.link.signal(self.pid, "TERM")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), grace)
        if self.exited.done():
            return
        self._killed = True
        await self.link.signal(self.pid, "KILL")
        # the exit file if the wrapper still wrote one, and the log's last bytes
        await self.link.sync(self.remote_dir)
        self._end(None, time.time())


def _auth_method(conn: asyncssh.SSHClientConnection) -> str | None:
    # asyncssh keeps the method that succeeded first in its list of methods to try;
    # it has no public accessor, so read it defensively.
    methods = getattr(conn, "_auth_methods", None)
    if isinstance(methods, list) and methods and isinstance(methods[0], bytes):
        return methods[0].decode()
    return None


class SshExecutor:
    def __init__(self, config: DaemonConfig) -> None:
        self._config = config
        self._links: dict[str, HostLink] = {}

    def link(self, host: str) -> HostLink:
        link = self._links.get(host)
        if link is None:
            link = self._links[host] = HostLink(
                host, self._config.host_config(host), self._config.ssh_config_path()
            )
        return link

    def _remote_dir(self, link: HostLink, workflow_id: str, job: str, attempt: int) -> str:
        return str(attempt_dir(PurePosixPath(link.runs_root()), workflow_id, job, attempt))

    def _handle(
        self, host: str, remote_dir: str, workflow_id: str, job: str, attempt: int, pid: int
    ) -> dict[str, Any]:
        """What the engine stores to adopt the attempt again: where it runs, its pid."""
        local_dir = attempt_dir(self._config.runs_dir, workflow_id, job, attempt)
        return {
            "executor": "ssh",
            "host": host,
            "run_dir": remote_dir,
            "local_dir": str(local_dir),
            "pid": pid,
        }

    async def ready(self, host: str) -> None:
        await self.link(host).ready(fail_fast=True)

    async def launch(self, request: LaunchRequest) -> SshAttempt:
        job = request.job
        link = self.link(job.host)
        await link.ready(fail_fast=True)
        remote_dir = self._remote_dir(link, request.workflow_id, job.name, request.attempt)
        env = {**request.env, "CCD_RUN_DIR": remote_dir}
        if job.script is not None:
            env["CCD_SCRIPT"] = f"{remote_dir}/{PurePosixPath(job.script).name}"
            await self._upload(link, job.script, remote_dir, env["CCD_SCRIPT"])
        script = render_wrapper(
            run_dir=remote_dir,
            workdir=job.workdir,
            env=env,
            command=request.command,
            environment=request.environment,
            exports=request.exports,
            script=env.get("CCD_SCRIPT"),
            self_measure=True,  # no daemon reaps it: it writes its own usage file
        )
        # with the other jobs that start in the same moment: one exec channel for all
        pid = await link.launch(remote_dir, script)
        handle = self._handle(
            job.host, remote_dir, request.workflow_id, job.name, request.attempt, pid
        )
        return await self.adopt(handle)  # the attempt a restarted daemon would adopt

    async def _upload(self, link: HostLink, local: str, remote_dir: str, remote: str) -> None:
        _, sftp = await link.ready(fail_fast=True)
        try:
            await sftp.makedirs(remote_dir, exist_ok=True)
            await sftp.put(local, remote)
        except (OSError, asyncssh.SFTPError) as exc:
            raise LaunchError(f"cannot upload {local} to '{link.name}': {exc}") from exc

    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        link = self.link(job.host)
        await link.ready(fail_fast=False)
        remote_dir = self._remote_dir(link, workflow_id, job.name, attempt)
        result = await link.run(f"cat {shlex.quote(remote_dir)}/{PID} 2>/dev/null; true")
        pid = str(result.stdout).strip()
        if not pid.isdigit():
            return None
        return self._handle(job.host, remote_dir, workflow_id, job.name, attempt, int(pid))

    async def adopt(self, handle: dict[str, Any]) -> SshAttempt:
        link = self.link(str(handle["host"]))
        return SshAttempt(
            link, str(handle["run_dir"]), Path(handle["local_dir"]), int(handle["pid"]), handle
        )

    async def check(self, host: str) -> dict[str, Any]:
        """What `ccctl hosts check` reports; raises LaunchError if the host is unusable."""
        link = self.link(host)
        started = time.perf_counter()
        conn, sftp = await asyncio.wait_for(
            link.ready(fail_fast=True), link.cfg.connect_timeout + 5
        )
        probe = await link.run(
            "python3 --version 2>&1; command -v sbatch >/dev/null && echo sbatch=yes; "
            "command -v squeue >/dev/null && echo squeue=yes; true"
        )
        rtt = time.perf_counter() - started
        root = link.runs_root()
        try:
            await sftp.makedirs(root, exist_ok=True)
            probe_file = f"{root}/.ccd-write-test"
            async with sftp.open(probe_file, "w") as fh:
                await fh.write("ok")
            await sftp.remove(probe_file)
            writable = True
        except (OSError, asyncssh.SFTPError):
            writable = False
        out = str(probe.stdout)
        return {
            "host": host,
            "rtt_ms": round(rtt * 1000, 1),
            "user": conn.get_extra_info("username"),
            "auth": _auth_method(conn),
            "workdir": root,
            "workdir_writable": writable,
            "python": out.splitlines()[0] if out.startswith("Python") else None,
            "sbatch": "sbatch=yes" in out,
            "squeue": "squeue=yes" in out,
        }

    def link_stats(self, host: str) -> dict[str, Any] | None:
        """The state and counters of `host`'s link; None if ccd has not used it."""
        link = self._links.get(host)
        return None if link is None else link.stats()

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self._links.values()))
        self._links.clear()

    async def remove_runs(self, host: str, paths: list[str]) -> None:
        """Delete run directories on `host` (``ccctl gc``); LaunchError if `rm` fails.

        Waits while the host is unreachable: the caller bounds the wait.
        """
        link = self.link(host)
        for start in range(0, len(paths), 100):  # keep each command line short
            quoted = " ".join(shlex.quote(p) for p in paths[start : start + 100])
            result = await link.run(f"rm -rf -- {quoted}", fail_fast=True)
            if result.exit_status != 0:
                raise LaunchError(
                    f"cannot remove run directories on '{host}': "
                    f"{str(result.stderr).strip() or f'exit status {result.exit_status}'}"
                )


__all__ = ["SshAttempt", "SshExecutor"]
