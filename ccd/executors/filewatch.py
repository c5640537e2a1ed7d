"""Wake readers when local files grow: one inotify instance for every followed log.

Reading a log only when the kernel says it changed keeps hundreds of running
jobs from costing a timer each.  Where inotify is not available (or its watch
limit is reached) a reader falls back to a short periodic wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from asyncinotify import Inotify, Mask, Watch

log = logging.getLogger(__name__)

#: how often a reader without an inotify watch looks at its file
FALLBACK_INTERVAL = 0.25


class FileWatch:
    """A subscription: `changed` is set whenever the file was written or closed."""

    def __init__(self, watcher: FileWatcher, watch: Watch | None) -> None:
        self.changed = asyncio.Event()
        self._watcher = watcher
        self._watch = watch

    @property
    def timeout(self) -> float | None:
        return None if self._watch is not None else FALLBACK_INTERVAL

    async def wait(self) -> None:
        """Wait for a change (or the fallback interval), then re-arm."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), self.timeout)
        self.changed.clear()

    def close(self) -> None:
        if self._watch is not None:
            self._watcher.remove(self._watch)
            self._watch = None


class FileWatcher:
    def __init__(self) -> None:
        self._inotify: Inotify | None = None
        self._subscribers: dict[int, FileWatch] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        try:
            self._inotify = Inotify()
        except OSError as exc:  # e.g. inotify instance limit reached
            log.warning("inotify unavailable (%s); log readers will poll", exc)
            return
        self._task = asyncio.get_running_loop().create_task(self._dispatch(), name="filewatch")

    def watch(self, path: Path) -> FileWatch:
        watch: Watch | None = None
        if self._inotify is not None:
            try:
                watch = self._inotify.add_watch(path, Mask.MODIFY | Mask.CLOSE_WRITE | Mask.CREATE)
            except OSError as exc:
                log.warning("cannot watch %s (%s); polling it", path, exc)
        sub = FileWatch(self, watch)
        if watch is not None:
            self._subscribers[watch.wd] = sub
        return sub

    def remove(self, watch: Watch) -> None:
        self._subscribers.pop(watch.wd, None)
        if self._inotify is not None:
            with contextlib.suppress(OSError, ValueError):
                self._inotify.rm_watch(watch)

    async def _dispatch(self) -> None:
        assert self._inotify is not None
        async for event in self._inotify:
            watch = event.watch
            if watch is None:
                continue
            sub = self._subscribers.get(watch.wd)
            if sub is not None:
                sub.changed.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._subscribers.clear()
