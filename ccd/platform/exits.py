"""Noticing that a wrapper exited, for processes the daemon started or adopted.

One `ExitWatcher` per daemon, of the kind `ccd.platform.choose` named:

* `PidfdExits` (Linux): a pidfd per process, registered with the event loop;
  no thread and no timer per job.
* `KqueueExits` (macOS, BSD): one kqueue for every process (``EVFILT_PROC`` with
  ``NOTE_EXIT``), its descriptor registered with the event loop.  It cannot run
  on Linux: it takes the kqueue API as a parameter, and the tests drive its
  event translation with a fake one.
* `PolledExits` (anything else, or forced): a bounded poll.  A child is asked
  with ``waitpid(WNOHANG)`` (a zombie is alive to ``kill(pid, 0)``); an adopted
  process with ``kill(pid, 0)`` and its exit file (its parent may be slow to reap
  it).  A new process is looked at after 1, 2, 4 … ms, so a short job is noticed
  within a few ms; from `SWEEP_INTERVAL` on it joins one sweep over all long
  runners, which costs one system call per process per sweep.

`on_exit` gets the wait status of a child and its resource usage from wait4 (the
wrapper's and its reaped descendants' CPU time and largest peak RSS; both None
for an adopted process) and is called once, from the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import select
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

#: called once the process is gone: its wait status and rusage if it was our child
ExitCallback = Callable[[int | None, "resource.struct_rusage | None"], None]
#: what reaping an exited process leaves: (wait status, rusage), None for one not ours
Reaped = tuple[int | None, "resource.struct_rusage | None"]
_NOT_OURS: Reaped = (None, None)

#: the poll's first look after a process started (then doubled)
FIRST_LOOK = 0.001
#: how often the poll looks at processes that have outlived the doubling looks
SWEEP_INTERVAL = 0.1
#: kqueue events taken per read
KQUEUE_BATCH = 64


class ExitWatcher(Protocol):
    name: str

    def watch(self, pid: int, *, child: bool, exit_file: Path, on_exit: ExitCallback) -> None:
        """Call `on_exit` when `pid` has exited (at once if it already has).

        `exit_file` is the wrapper's: a poller that cannot tell a zombie from a
        live process takes its existence as the end of an adopted wrapper."""
        ...

    def close(self) -> None: ...


def exit_watcher(kind: str) -> ExitWatcher:
    """The watcher `ccd.platform.Mechanisms.exits` names."""
    if kind == "pidfd":
        return PidfdExits()
    if kind == "kqueue":
        return KqueueExits()
    if kind == "poll":
        return PolledExits()
    raise ValueError(f"no exit watcher {kind!r}")


def reap(pid: int, child: bool) -> Reaped:
    """The wait status and rusage of an exited child (collected: it leaves no zombie)."""
    if not child:
        return _NOT_OURS
    try:
        _, status, rusage = os.wait4(pid, 0)  # it has exited: this does not block
    except ChildProcessError:
        return _NOT_OURS
    return status, rusage


class PidfdExits:
    name = "pidfd"

    def watch(self, pid: int, *, child: bool, exit_file: Path, on_exit: ExitCallback) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            on_exit(*reap(pid, child))
            return
        asyncio.get_running_loop().add_reader(pidfd, _pidfd_ready, pidfd, pid, child, on_exit)

    def close(self) -> None:
        return None  # each pidfd is closed when its process exits


def _pidfd_ready(pidfd: int, pid: int, child: bool, on_exit: ExitCallback) -> None:
    asyncio.get_running_loop().remove_reader(pidfd)
    os.close(pidfd)
    on_exit(*reap(pid, child))


class KqueueExits:
    """``EVFILT_PROC``/``NOTE_EXIT`` on one kqueue; `api` is the `select` module."""

    name = "kqueue"

    def __init__(self, api: Any = select) -> None:
        self._api = api
        self._queue: Any = None
        self._waiting: dict[int, tuple[bool, ExitCallback]] = {}

    def _kqueue(self) -> Any:
        if self._queue is None:
            self._queue = self._api.kqueue()
            asyncio.get_running_loop().add_reader(self._queue.fileno(), self._drain)
        return self._queue

    def watch(self, pid: int, *, child: bool, exit_file: Path, on_exit: ExitCallback) -> None:
        api = self._api
        change = api.kevent(
            pid,
            filter=api.KQ_FILTER_PROC,
            flags=api.KQ_EV_ADD | api.KQ_EV_ONESHOT,
            fflags=api.KQ_NOTE_EXIT,
        )
        try:
            self._kqueue().control([change], 0, 0)
        except ProcessLookupError:  # gone before it could be watched
            on_exit(*reap(pid, child))
            return
        self._waiting[pid] = (child, on_exit)

    def _drain(self) -> None:
        api = self._api
        for event in self._queue.control(None, KQUEUE_BATCH, 0):
            if event.filter != api.KQ_FILTER_PROC or not event.fflags & api.KQ_NOTE_EXIT:
                continue
            waiting = self._waiting.pop(event.ident, None)
            if waiting is not None:
                child, on_exit = waiting
                on_exit(*reap(event.ident, child))

    def close(self) -> None:
        if self._queue is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                asyncio.get_running_loop().remove_reader(self._queue.fileno())
            self._queue.close()
            self._queue = None
        self._waiting.clear()


class _Polled:
    __slots__ = ("child", "exit_file", "on_exit", "pid", "timer")

    def __init__(self, pid: int, child: bool, exit_file: Path, on_exit: ExitCallback) -> None:
        self.pid = pid
        self.child = child
        self.exit_file = exit_file
        self.on_exit = on_exit
        self.timer: asyncio.TimerHandle | None = None


class PolledExits:
    name = "poll"

    def __init__(self) -> None:
        self._young: dict[_Polled, None] = {}
        self._settled: dict[_Polled, None] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def watch(self, pid: int, *, child: bool, exit_file: Path, on_exit: ExitCallback) -> None:
        self._look(_Polled(pid, child, exit_file, on_exit), FIRST_LOOK)

    def _look(self, watched: _Polled, delay: float) -> None:
        self._young.pop(watched, None)
        if _ended(watched):
            return
        if delay >= SWEEP_INTERVAL:
            self._settled[watched] = None
            self._arm()
            return
        loop = asyncio.get_running_loop()
        watched.timer = loop.call_later(delay, self._look, watched, 2 * delay)
        self._young[watched] = None

    def _arm(self) -> None:
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(SWEEP_INTERVAL, self._sweep_all)

    def _sweep_all(self) -> None:
        self._sweep = None
        ended = [watched for watched in self._settled if _ended(watched)]
        for watched in ended:
            del self._settled[watched]
        if self._settled:
            self._arm()

    def close(self) -> None:
        for watched in self._young:
            if watched.timer is not None:
                watched.timer.cancel()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._young.clear()
        self._settled.clear()


def _ended(watched: _Polled) -> bool:
    """Whether the process is gone; if so, `on_exit` has been called."""
    if watched.child:
        try:
            pid, status, rusage = os.wait4(watched.pid, os.WNOHANG)
        except ChildProcessError:
            watched.on_exit(None, None)
            return True
        if pid == 0:
            return False
        watched.on_exit(status, rusage)
        return True
    if watched.exit_file.exists() or not _exists(watched.pid):
        watched.on_exit(None, None)
        return True
    return False


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: it exists
        return True
    return True
