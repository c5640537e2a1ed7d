"""Reading a growing local file to its end: shared by every executor's log stream."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

from ccd.executors.base import ExitStatus
from ccd.states import JobState

#: bytes read per wake-up before yielding to the loop
CHUNK = 256 * 1024


class Waker(Protocol):
    async def wait(self) -> None:
        """Return when the file may have grown (or the writer finished)."""
        ...


class Signal:
    """A `Waker` set by code in this process (e.g. a poller that appended to a mirror)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()


async def follow_file(
    path: Path, waker: Waker, finished: Callable[[], bool], offset: int = 0
) -> AsyncIterator[bytes]:
    """Yield `path`'s bytes from `offset` as they appear, until `finished()` and all read.

    `finished` must become true only after the last write, and the writer must
    wake `waker` after it, so the final read misses nothing.  A file that does not
    exist yet reads as empty: the writer creates it (a reader that created it would
    pay for a new inode in the event loop).
    """
    fd = -1
    try:
        while True:
            done = finished()  # look before reading: no write before `done` is missed
            if fd < 0:
                # opened once it has bytes: most jobs print nothing, and a stat is
                # one system call where open, read and close are three
                fd = _open_if_grown(path, offset)
            data = os.pread(fd, CHUNK, offset) if fd >= 0 else b""
            if data:
                offset += len(data)
                yield data
                continue
            if done:
                return
            await waker.wait()
    finally:
        if fd >= 0:
            os.close(fd)


def _open_if_grown(path: Path, offset: int) -> int:
    """A read-only descriptor of `path` if it holds bytes past `offset`, else -1."""
    try:
        if os.stat(path).st_size <= offset:
            return -1
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return -1


StateListener = Callable[[JobState, str | None], None]
WarningListener = Callable[[str], None]


class PolledAttempt:
    """The half of an attempt that a poller drives (SSH hosts, Slurm clusters).

    The poller appends to the local log (or Slurm writes it) and calls `grown`;
    it ends the attempt with `settle`, and reports states and warnings through
    `tell` and `warn`.  The engine's side (`exited`, `log_chunks`, listeners) is
    the same for every such executor.
    """

    enforces_timeout = False
    launched_state = JobState.RUNNING

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._grown = Signal()
        self._state_listeners: list[StateListener] = []
        self._warning_listeners: list[WarningListener] = []

    def on_state(self, listener: StateListener) -> None:
        self._state_listeners.append(listener)

    def on_warning(self, listener: WarningListener) -> None:
        self._warning_listeners.append(listener)

    def tell(self, state: JobState, reason: str | None) -> None:
        for listener in self._state_listeners:
            listener(state, reason)

    def warn(self, message: str) -> None:
        for listener in self._warning_listeners:
            listener(message)

    def grown(self) -> None:
        self._grown.set()

    def settle(self, status: ExitStatus) -> bool:
        """Resolve `exited` (once); True if this call did."""
        if self.exited.done():
            return False
        self.exited.set_result(status)
        self._grown.set()  # the log reader's final read
        return True

    async def log_chunks(self) -> AsyncIterator[bytes]:
        async for chunk in follow_file(self.log_path, self._grown, self.exited.done):
            yield chunk
