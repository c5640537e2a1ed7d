"""The local executor: the job protocol on this machine.

The wrapper is spawned with ``posix_spawn`` in its own session (so its pid is
the process group that cancel kills), and its exit is noticed through a pidfd
registered with the event loop: no thread and no timer per job.  An attempt of
an earlier daemon is adopted by pid (pidfd again) and its ``exit`` file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ccd.executors.base import ExitStatus, LaunchError, LaunchRequest
from ccd.executors.filewatch import FileWatcher
from ccd.executors.follow import follow_file
from ccd.executors.wrapper import EXIT, LOG, WRAPPER, parse_exit_file, render_wrapper

#: while waiting for a process group to empty after TERM
GROUP_CHECK_INTERVAL = 0.05
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)  # Python ignores these; jobs must not


def run_dir_for(root: Path, workflow_id: str, job: str, attempt: int) -> Path:
    return root / workflow_id / job / str(attempt)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _read_exit(run_dir: Path) -> tuple[int, float] | None:
    """(exit code, mtime) of the exit file, or None while none is written."""
    path = run_dir / EXIT
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    code = parse_exit_file(text)
    return None if code is None else (code, mtime)


class LocalAttempt:
    def __init__(
        self, run_dir: Path, pid: int, watcher: FileWatcher, *, child: bool, alive: bool = True
    ) -> None:
        self.run_dir = run_dir
        self.pid = pid
        self.log_path = run_dir / LOG
        self.handle: dict[str, Any] = {"executor": "local", "run_dir": str(run_dir), "pid": pid}
        self._child = child
        self._exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        # the directory, not the log: the wrapper creates the log, and the exit
        # file's creation wakes the reader as well
        self._log_watch = watcher.watch(run_dir)
        if alive:
            self._watch_exit()
        else:
            self._finish(None)

    # -- exit detection -------------------------------------------------------------
    def _watch_exit(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._finish(None)
            return
        loop.add_reader(pidfd, self._on_pidfd, pidfd)

    def _on_pidfd(self, pidfd: int) -> None:
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
        status: int | None = None
        if self._child:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self.pid, 0)
        self._finish(status)

    def _finish(self, wait_status: int | None) -> None:
        if self._exited.done():
            return
        recorded = _read_exit(self.run_dir)
        if recorded is not None:
            code, ended = recorded
            result = ExitStatus(exit_code=code, ended=ended)
        elif wait_status is not None and os.WIFSIGNALED(wait_status):
            sig = signal.Signals(os.WTERMSIG(wait_status)).name
            result = ExitStatus(exit_code=None, ended=time.time(), reason=f"killed by {sig}")
        else:
            # The wrapper is gone without recording an exit code: killed while the
            # daemon was away, or the machine rebooted.
            result = ExitStatus(exit_code=None, ended=time.time(), reason="lost")
        self._exited.set_result(result)
        self._log_watch.changed.set()  # let the log reader do its final read

    async def wait(self) -> ExitStatus:
        return await asyncio.shield(self._exited)

    # -- log ------------------------------------------------------------------------
    async def log_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in follow_file(self.log_path, self._log_watch, self._exited.done):
                yield chunk
        finally:
            self._log_watch.close()

    def on_reachability(self, listener: Callable[[bool, str | None], None]) -> None:
        return None  # this machine is always reachable

    # -- kill -----------------------------------------------------------------------
    async def kill(self, grace: float) -> None:
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exited), grace)
        # The wrapper may be gone while grandchildren that ignore TERM live on.
        # No event tells when a process group empties: look, briefly, while the grace runs.
        while _group_alive(self.pid) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(GROUP_CHECK_INTERVAL)
        _signal_group(self.pid, signal.SIGKILL)
        await asyncio.shield(self._exited)


class LocalExecutor:
    def __init__(self, runs_root: Path, watcher: FileWatcher) -> None:
        self.runs_root = runs_root
        self._watcher = watcher

    async def ready(self, host: str) -> None:
        return None

    async def launch(self, request: LaunchRequest) -> LocalAttempt:
        job = request.job
        run_dir = run_dir_for(self.runs_root, request.workflow_id, job.name, request.attempt)
        env = {**request.env, "CCD_RUN_DIR": str(run_dir)}
        if job.script is not None:
            env["CCD_SCRIPT"] = job.script
        script = render_wrapper(
            run_dir=str(run_dir), workdir=job.workdir, env=env, command=request.command
        )
        try:
            # Creating directories and files can take a millisecond on a busy disk:
            # a worker thread does it while the loop serves other jobs.
            wrapper = await asyncio.to_thread(_prepare, run_dir, script)
            # posix_spawn (vfork + exec) returns in well under a millisecond: doing it
            # in the loop is cheaper than a thread hop.
            pid = os.posix_spawn(  # noqa: ASYNC221
                "/bin/sh",
                ["sh", str(wrapper)],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                setsid=True,
                setsigdef=_DEFAULT_SIGNALS,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start the job on localhost: {exc}") from exc
        return LocalAttempt(run_dir, pid, self._watcher, child=True)

    async def adopt(self, handle: dict[str, Any]) -> LocalAttempt:
        run_dir = Path(handle["run_dir"])
        pid = int(handle["pid"])
        alive = _read_exit(run_dir) is None and _runs_wrapper(pid, run_dir / WRAPPER)
        return LocalAttempt(run_dir, pid, self._watcher, child=False, alive=alive)

    async def close(self) -> None:
        return None


def _prepare(run_dir: Path, script: str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    wrapper = run_dir / WRAPPER
    fd = os.open(wrapper, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, script.encode())
    finally:
        os.close(fd)
    return wrapper


def _runs_wrapper(pid: int, wrapper: Path) -> bool:
    """Whether `pid` is still our wrapper (after a reboot the pid may be another program's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return str(wrapper).encode() in cmdline.split(b"\0")
