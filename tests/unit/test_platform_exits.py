"""The exit watchers: pidfd and the poll with real processes, kqueue with a fake one.

kqueue exists only on macOS and the BSDs, so `KqueueExits` is driven here by a
fake of the `select` module's kqueue API: it records the registrations and
delivers the events a kernel would, through a real pipe the event loop watches.
What is checked is ccd's half: what it registers, how it reads events back, and
that it collects a child's wait status once the process is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ccd.platform import exits
from ccd.platform.exits import ExitWatcher, KqueueExits, PidfdExits, PolledExits

WAIT = 10.0


def spawn(script: str) -> int:
    """A child of this process running `script` (not reaped: the watcher does that)."""
    return os.posix_spawn("/bin/sh", ["sh", "-c", script], dict(os.environ))


def collected(pid: int) -> bool:
    """Whether `pid` was waited for already (no zombie of ours left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


async def exited(pid: int) -> None:
    """Until our child `pid` has exited, leaving it to be collected."""
    await asyncio.to_thread(os.waitid, os.P_PID, pid, os.WEXITED | os.WNOWAIT)


async def reaped(pid: int) -> None:
    await asyncio.to_thread(os.waitpid, pid, 0)


class Seen:
    """What `on_exit` was called with, awaitable."""

    def __init__(self) -> None:
        self.calls: list[int | None] = []
        #: whether each call came with wait4's rusage (only a child's does)
        self.with_usage: list[bool] = []
        self._done = asyncio.Event()

    def __call__(self, status: int | None, rusage: object = None) -> None:
        self.calls.append(status)
        self.with_usage.append(rusage is not None)
        self._done.set()

    async def status(self) -> int | None:
        await asyncio.wait_for(self._done.wait(), WAIT)
        await asyncio.sleep(0.02)  # a second call would show by now
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


def real_watchers() -> list[Callable[[], ExitWatcher]]:
    made: list[Callable[[], ExitWatcher]] = [PolledExits]
    if hasattr(os, "pidfd_open"):
        made.append(PidfdExits)
    return made


@pytest.fixture(params=real_watchers(), ids=lambda make: make().name)
def watcher(request: pytest.FixtureRequest) -> ExitWatcher:
    made: ExitWatcher = request.param()
    return made


async def test_a_child_s_exit_code_is_collected(watcher: ExitWatcher, tmp_path: Path) -> None:
    seen = Seen()
    watcher.watch(spawn("exit 3"), child=True, exit_file=tmp_path / "exit", on_exit=seen)
    status = await seen.status()
    assert status is not None and os.waitstatus_to_exitcode(status) == 3
    assert seen.with_usage == [True]  # wait4's figures, for the run report


async def test_a_long_running_child_killed_by_a_signal(
    watcher: ExitWatcher, tmp_path: Path
) -> None:
    pid = spawn("sleep 30")
    seen = Seen()
    watcher.watch(pid, child=True, exit_file=tmp_path / "exit", on_exit=seen)
    await asyncio.sleep(3 * exits.SWEEP_INTERVAL)  # past the poll's first looks
    assert seen.calls == []
    os.kill(pid, signal.SIGKILL)
    status = await seen.status()
    assert status is not None and os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL
    assert collected(pid)  # no zombie left


async def test_an_adopted_process_that_ends_is_noticed(
    watcher: ExitWatcher, tmp_path: Path
) -> None:
    # not our child as far as the watcher knows: its parent (a thread here) reaps it
    pid = spawn("sleep 0.3")
    reaper = threading.Thread(target=os.waitpid, args=(pid, 0))
    reaper.start()
    seen = Seen()
    watcher.watch(pid, child=False, exit_file=tmp_path / "exit", on_exit=seen)
    assert await seen.status() is None
    await asyncio.to_thread(reaper.join)


async def test_a_process_gone_before_it_is_watched(watcher: ExitWatcher, tmp_path: Path) -> None:
    pid = spawn("true")
    await reaped(pid)
    seen = Seen()
    watcher.watch(pid, child=False, exit_file=tmp_path / "exit", on_exit=seen)
    assert await seen.status() is None


async def test_the_poll_ends_an_adopted_zombie_by_its_exit_file(tmp_path: Path) -> None:
    """A wrapper whose parent does not reap it stays alive to kill(pid, 0); the exit
    file it wrote says it is done (pidfd sees the exit itself)."""
    exit_file = tmp_path / "exit"
    pid = spawn(f"echo 0 > {exit_file}")
    seen = Seen()
    PolledExits().watch(pid, child=False, exit_file=exit_file, on_exit=seen)
    assert await seen.status() is None
    await reaped(pid)


async def test_the_poll_is_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Long runners cost one look each per sweep, not a timer each at a short interval."""
    looks = 0
    wait4 = os.wait4

    def counted(pid: int, options: int) -> tuple[int, int, Any]:
        nonlocal looks
        looks += 1
        return wait4(pid, options)

    pids = [spawn("sleep 30") for _ in range(20)]
    watcher = PolledExits()
    seen = [Seen() for _ in pids]
    for pid, on_exit in zip(pids, seen, strict=True):
        watcher.watch(pid, child=True, exit_file=tmp_path / "exit", on_exit=on_exit)
    await asyncio.sleep(2 * exits.SWEEP_INTERVAL)  # every one is in the sweep now
    monkeypatch.setattr(os, "wait4", counted)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(10 * exits.SWEEP_INTERVAL)
    sweeps = (loop.time() - start) / exits.SWEEP_INTERVAL
    assert 0 < looks <= len(pids) * (sweeps + 1)
    monkeypatch.setattr(os, "wait4", wait4)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert all([await s.status() is not None for s in seen])
    watcher.close()


async def test_closing_the_poll_stops_its_looks(tmp_path: Path) -> None:
    pid = spawn("sleep 30")
    watcher, seen = PolledExits(), Seen()
    watcher.watch(pid, child=True, exit_file=tmp_path / "exit", on_exit=seen)
    watcher.close()
    os.kill(pid, signal.SIGKILL)
    await reaped(pid)
    await asyncio.sleep(3 * exits.SWEEP_INTERVAL)
    assert seen.calls == []


# -- kqueue, with a fake of select's kqueue API ----------------------------------------
@dataclass(frozen=True)
class FakeKevent:
    ident: int
    filter: int = 0
    flags: int = 0
    fflags: int = 0


class FakeKqueue:
    """Registrations in `changes`; `deliver` queues events and makes the fd readable."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self.changes: list[FakeKevent] = []
        self.pending: list[FakeKevent] = []
        self.gone: set[int] = set()
        self.closed = False

    def fileno(self) -> int:
        return self._read

    def control(self, changes: list[FakeKevent] | None, max_events: int, timeout: float) -> Any:
        for change in changes or []:
            if change.ident in self.gone:
                raise ProcessLookupError(3, "No such process")  # as kevent() says ESRCH
            self.changes.append(change)
        taken, self.pending = self.pending[:max_events], self.pending[max_events:]
        if taken and not self.pending:
            os.read(self._read, 4096)  # all read: the descriptor is no longer readable
        return taken

    def deliver(self, *events: FakeKevent) -> None:
        self.pending.extend(events)
        os.write(self._write, b"!")

    def close(self) -> None:
        self.closed = True
        os.close(self._read)
        os.close(self._write)


class FakeKqueueApi:
    """The part of `select` that `KqueueExits` uses (values as on macOS)."""

    KQ_FILTER_READ = -1
    KQ_FILTER_PROC = -5
    KQ_EV_ADD = 0x1
    KQ_EV_ONESHOT = 0x10
    KQ_NOTE_EXIT = 0x80000000
    KQ_NOTE_FORK = 0x40000000

    def __init__(self) -> None:
        self.queue = FakeKqueue()

    def kqueue(self) -> FakeKqueue:
        return self.queue

    kevent = FakeKevent


async def test_kqueue_registers_a_one_shot_exit_filter_per_process(tmp_path: Path) -> None:
    api = FakeKqueueApi()
    watcher = KqueueExits(api)
    pid = spawn("exit 5")
    seen = Seen()
    watcher.watch(pid, child=True, exit_file=tmp_path / "exit", on_exit=seen)
    assert api.queue.changes == [
        FakeKevent(pid, api.KQ_FILTER_PROC, api.KQ_EV_ADD | api.KQ_EV_ONESHOT, api.KQ_NOTE_EXIT)
    ]
    await exited(pid)
    api.queue.deliver(FakeKevent(pid, api.KQ_FILTER_PROC, fflags=api.KQ_NOTE_EXIT))
    status = await seen.status()
    assert status is not None and os.waitstatus_to_exitcode(status) == 5
    watcher.close()
    assert api.queue.closed


async def test_kqueue_reads_a_batch_and_ignores_other_events(tmp_path: Path) -> None:
    api = FakeKqueueApi()
    watcher = KqueueExits(api)
    seen = {pid: Seen() for pid in (101, 102, 103)}
    for pid, on_exit in seen.items():
        watcher.watch(pid, child=False, exit_file=tmp_path / "exit", on_exit=on_exit)
    api.queue.deliver(
        FakeKevent(101, api.KQ_FILTER_PROC, fflags=api.KQ_NOTE_FORK),  # not an exit
        FakeKevent(7, api.KQ_FILTER_READ),  # another filter
        # more than one read takes: the descriptor stays readable until all are read
        *(FakeKevent(i, api.KQ_FILTER_PROC, fflags=api.KQ_NOTE_EXIT) for i in range(102, 200)),
        FakeKevent(102, api.KQ_FILTER_PROC, fflags=api.KQ_NOTE_EXIT),  # a second one: once
    )
    assert await seen[102].status() is None and await seen[103].status() is None
    assert seen[101].calls == []
    api.queue.deliver(FakeKevent(101, api.KQ_FILTER_PROC, fflags=api.KQ_NOTE_EXIT))
    assert await seen[101].status() is None
    watcher.close()


async def test_kqueue_a_process_gone_before_it_is_watched(tmp_path: Path) -> None:
    api = FakeKqueueApi()
    api.queue.gone.add(4242)
    seen = Seen()
    KqueueExits(api).watch(4242, child=False, exit_file=tmp_path / "exit", on_exit=seen)
    assert seen.calls == [None]  # at once, not through the queue
