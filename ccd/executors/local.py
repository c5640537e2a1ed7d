"""The local executor: the job protocol on this machine.

The wrapper is spawned with ``posix_spawn`` in its own session (so its pid is
the process group that cancel kills), and its exit is noticed by the platform's
exit watcher (`ccd.platform.exits`: a pidfd registered with the event loop on
Linux, no thread and no timer per job).  An attempt of an earlier daemon is
adopted by pid (the same watcher) and its ``exit`` file; the process table
(`ccd.platform.procs`) says whether that pid still runs its wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ccd.executors.base import ExitStatus, LaunchError, LaunchRequest
from ccd.executors.filewatch import FileWatch, FileWatcher
from ccd.executors.follow import follow_file
from ccd.executors.poll import poll
from ccd.executors.wrapper import (
    EXIT,
    LOG,
    PID,
    WRAPPER,
    attempt_dir,
    parse_exit_file,
    render_wrapper,
)
from ccd.platform import Mechanisms, choose
from ccd.platform.exits import ExitWatcher, exit_watcher
from ccd.platform.procs import ProcessTable, process_table
from ccd.spec.model import Job
from ccd.states import JobState
from ccd.usage import USAGE, Usage, parse_usage

#: how long a log reader waits for a new job to end before it asks inotify to watch
FIRST_WAIT = 0.05
#: how long `find` waits for a just-spawned wrapper to write its pid
FIND_PID_WAIT = 1.0
#: how often `find` looks for that pid meanwhile
FIND_PID_INTERVAL = 0.05
#: while waiting for a process group to empty after TERM
GROUP_CHECK_INTERVAL = 0.05
#: how long launches may hold the event loop back to back (a burst of 500 held it 1.5 s)
LAUNCH_SLICE = 0.02
#: what the daemon's memory may grow by between reading its peak RSS and a spawn
INHERITED_SLACK_KB = 4096
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)  # Python ignores these; jobs must not
_STDIO_TO_DEVNULL = [
    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
    (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
    (os.POSIX_SPAWN_DUP2, 1, 2),
]


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
    try:
        fd = os.open(run_dir / EXIT, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        code = parse_exit_file(os.read(fd, 64).decode(errors="replace"))
        mtime = os.fstat(fd).st_mtime
    finally:
        os.close(fd)
    return None if code is None else (code, mtime)


def _kernel_usage(rusage: resource.struct_rusage, inherited_kb: int) -> Usage:
    """The wrapper's figures from wait4: its CPU time and its reaped descendants', and
    the largest peak RSS among them -- the wrapper's own included, which is the
    daemon's: posix_spawn's child shares the daemon's memory until it execs, and the
    kernel keeps that memory's high-water mark as the new program's peak.  So a peak
    no larger than the daemon's at the spawn (`inherited_kb`) says only "at most"."""
    peak = rusage.ru_maxrss  # KiB on Linux
    return Usage(
        cpu_user=round(rusage.ru_utime, 3),
        cpu_sys=round(rusage.ru_stime, 3),
        maxrss_kb=peak,
        maxrss_bound=True if peak <= inherited_kb + INHERITED_SLACK_KB else None,
        source="kernel",
    )


def _read_usage(run_dir: Path) -> Usage | None:
    """The figures an orphaned wrapper wrote (after the exit file: it writes them first)."""
    try:
        return parse_usage((run_dir / USAGE).read_text(errors="replace"))
    except OSError:
        return None


class _LazyWatch:
    """Wake a log reader when the run directory changes, watching only if needed.

    Most short jobs end within `FIRST_WAIT`; an inotify watch (two syscalls and a
    dispatch) is added only for a job that outlives it.  The directory is watched,
    not the log: the wrapper creates the log, and the exit file's creation wakes
    the reader as well.
    """

    def __init__(
        self, watcher: FileWatcher, run_dir: Path, exited: asyncio.Future[ExitStatus]
    ) -> None:
        self._watcher = watcher
        self._run_dir = run_dir
        self.exited = exited
        self._watch: FileWatch | None = None

    async def wait(self) -> None:
        if self._watch is not None:
            await self._watch.wait()
            return
        await asyncio.wait([self.exited], timeout=FIRST_WAIT)
        if not self.exited.done():
            # from now on the kernel says when the log grows; the caller reads once
            # more first, so output written before the watch existed is not missed
            self._watch = self._watcher.watch(self._run_dir)

    def wake(self) -> None:
        if self._watch is not None:
            self._watch.changed.set()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()


class LocalAttempt:
    def __init__(
        self,
        run_dir: Path,
        pid: int,
        watcher: FileWatcher,
        exits: ExitWatcher,
        *,
        child: bool,
        alive: bool = True,
        inherited_kb: int = 0,
    ) -> None:
        self.run_dir = run_dir
        self.pid = pid
        #: the daemon's peak RSS when it spawned the wrapper (see `_kernel_usage`)
        self._inherited_kb = inherited_kb
        self.log_path = run_dir / LOG
        self.handle: dict[str, Any] = {"executor": "local", "run_dir": str(run_dir), "pid": pid}
        self.exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._log_watch = _LazyWatch(watcher, run_dir, self.exited)
        if alive:
            exits.watch(pid, child=child, exit_file=run_dir / EXIT, on_exit=self._exited)
        else:
            self._finish(None)

    # -- exit detection -------------------------------------------------------------
    def _exited(self, wait_status: int | None, rusage: resource.struct_rusage | None) -> None:
        # wait4's figures (our child): the wrapper's and its reaped descendants' CPU
        # time and largest peak RSS, from the kernel, for the price of the wait
        usage = None if rusage is None else _kernel_usage(rusage, self._inherited_kb)
        self._finish(wait_status, usage)

    def _finish(self, wait_status: int | None, usage: Usage | None = None) -> None:
        if self.exited.done():
            return
        recorded = _read_exit(self.run_dir)
        if usage is None:
            # not our child (adopted): the wrapper measured itself, if it was orphaned
            usage = _read_usage(self.run_dir)
        if recorded is not None:
            code, ended = recorded
            result = ExitStatus(exit_code=code, ended=ended, usage=usage)
        elif wait_status is not None and os.WIFSIGNALED(wait_status):
            sig = signal.Signals(os.WTERMSIG(wait_status)).name
            result = ExitStatus(
                exit_code=None, ended=time.time(), reason=f"killed by {sig}", usage=usage
            )
        else:
            # The wrapper is gone without recording an exit code: killed while the
            # daemon was away, or the machine rebooted.
            result = ExitStatus(exit_code=None, ended=time.time(), reason="lost")
        self.exited.set_result(result)
        self._log_watch.wake()  # let the log reader do its final read

    # -- log ------------------------------------------------------------------------
    async def log_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in follow_file(self.log_path, self._log_watch, self.exited.done):
                yield chunk
        finally:
            self._log_watch.close()

    enforces_timeout = False
    launched_state = JobState.RUNNING

    def on_warning(self, listener: Callable[[str], None]) -> None:
        return None  # nothing to warn about that is not a state or a log line

    def on_state(self, listener: Callable[[JobState, str | None], None]) -> None:
        return None  # a local job runs from launch to exit, and this machine is reachable

    # -- kill -----------------------------------------------------------------------
    async def kill(self, grace: float) -> None:
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.exited), grace)
        # The wrapper may be gone while grandchildren that ignore TERM live on.
        # No event tells when a process group empties: look, briefly, while the grace runs.
        async for _ in poll(GROUP_CHECK_INTERVAL):
            if not _group_alive(self.pid) or time.monotonic() >= deadline:
                break
        _signal_group(self.pid, signal.SIGKILL)
        await asyncio.shield(self.exited)


class _LaunchSlices:
    """Spread a burst of launches over the event loop's rounds.

    A launch is system calls only (0.2-3 ms) and runs in the loop's thread, so a
    burst of hundreds would hold the loop for seconds: no API request, exit or
    commit in between.  Launches go ahead back to back for LAUNCH_SLICE; later ones
    wait until the loop has been round once (and served its sockets).
    """

    def __init__(self) -> None:
        #: when the current slice began; None until a launch after the loop's last round
        self._started: float | None = None
        self._next_round = asyncio.Event()

    async def turn(self) -> None:
        while self._started is not None and time.monotonic() - self._started >= LAUNCH_SLICE:
            await self._next_round.wait()
        if self._started is None:
            self._started = time.monotonic()
            # call_soon from inside a round runs in the next one, after the loop's poll
            asyncio.get_running_loop().call_soon(self._round_done)

    def _round_done(self) -> None:
        self._started = None
        self._next_round.set()
        self._next_round = asyncio.Event()


class LocalExecutor:
    def __init__(
        self, runs_root: Path, watcher: FileWatcher, mechanisms: Mechanisms | None = None
    ) -> None:
        self.runs_root = runs_root
        self._watcher = watcher
        mechanisms = mechanisms or choose()
        self._exits = exit_watcher(mechanisms.exits)
        self._processes: ProcessTable = process_table(mechanisms.processes)
        # the daemon's environment, converted once rather than at every spawn
        self._env = dict(os.environ)
        self._slices = _LaunchSlices()

    async def ready(self, host: str) -> None:
        return None

    async def launch(self, request: LaunchRequest) -> LocalAttempt:
        job = request.job
        run_dir = attempt_dir(self.runs_root, request.workflow_id, job.name, request.attempt)
        env = {**request.env, "CCD_RUN_DIR": str(run_dir)}
        if job.script is not None:
            env["CCD_SCRIPT"] = job.script
        script = render_wrapper(
            run_dir=str(run_dir),
            workdir=job.workdir,
            env=env,
            command=request.command,
            environment=request.environment,
            exports=request.exports,
            script=job.script,
        )
        # In the loop's thread: from a worker thread, each of these system calls
        # handed the GIL back and forth with the loop (~120 futex calls per job
        # against ~5, ~12% of a trivial job's CPU on two cores).  The loop waits
        # instead: ~0.2 ms for the spawn plus the kernel's time for three new inodes.
        await self._slices.turn()
        # the peak a wrapper inherits from this process (`_kernel_usage`): ~1 us to ask
        inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            pid = _prepare_and_spawn(run_dir, script, self._env)
        except OSError as exc:
            raise LaunchError(f"cannot start the job on localhost: {exc}") from exc
        return LocalAttempt(
            run_dir, pid, self._watcher, self._exits, child=True, inherited_kb=inherited
        )

    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        run_dir = attempt_dir(self.runs_root, workflow_id, job.name, attempt)
        if not (run_dir / WRAPPER).exists():
            return None
        # the wrapper writes its pid first thing: give one that was just spawned a moment
        deadline = time.monotonic() + FIND_PID_WAIT
        # another process's file: no event says when it is written, so look again shortly
        async for _ in poll(FIND_PID_INTERVAL):
            pid = _read_pid(run_dir)
            if not pid:
                # On a loaded machine a spawned wrapper may not have written its pid
                # even after FIND_PID_WAIT; a timeout alone would launch the attempt a
                # second time.  A process running this very wrapper settles it.
                pid = await asyncio.to_thread(self._processes.wrapper_process, run_dir / WRAPPER)
            if pid:
                return {"executor": "local", "run_dir": str(run_dir), "pid": pid}
            if time.monotonic() > deadline:
                break
        return None  # prepared, never started

    async def adopt(self, handle: dict[str, Any]) -> LocalAttempt:
        run_dir = Path(handle["run_dir"])
        pid = int(handle["pid"])
        # after a reboot the pid may be another program's
        # once the job ended, an orphaned wrapper is ``python3 … <run dir> <code>``
        # writing its figures and exit code (`ccd.executors.wrapper`): still it
        table = self._processes
        alive = _read_exit(run_dir) is None and (
            table.runs(pid, run_dir / WRAPPER) or table.runs(pid, run_dir)
        )
        return LocalAttempt(run_dir, pid, self._watcher, self._exits, child=False, alive=alive)

    async def close(self) -> None:
        self._exits.close()


def _prepare_and_spawn(run_dir: Path, script: str, env: dict[str, str]) -> int:
    """Write the run directory and start its wrapper in a new session; the wrapper's pid.

    Only the directory and `wrapper.sh` are created here; the wrapper creates its
    log, pid and exit files itself (a new inode costs 0.05-0.8 ms of kernel time on
    the development VM: see docs/benchmarks.md).
    """
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    wrapper = str(run_dir / WRAPPER)
    fd = os.open(wrapper, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, script.encode())
    finally:
        os.close(fd)
    return os.posix_spawn(
        "/bin/sh",
        ["sh", wrapper],
        env,
        file_actions=_STDIO_TO_DEVNULL,
        setsid=True,
        setsigdef=_DEFAULT_SIGNALS,
        setsigmask=(),  # whatever the calling thread blocks, the job must not
    )


def _read_pid(run_dir: Path) -> int:
    """The pid the wrapper recorded; 0 while none is written."""
    try:
        return int((run_dir / PID).read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0
