"""Reading a growing local file to its end: shared by every executor's log stream."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

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
    wake `waker` after it, so the final read misses nothing.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        while True:
            done = finished()  # look before reading: no write before `done` is missed
            data = os.pread(fd, CHUNK, offset)
            if data:
                offset += len(data)
                yield data
                continue
            if done:
                return
            await waker.wait()
    finally:
        os.close(fd)
