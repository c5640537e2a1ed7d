"""Wake readers when local files grow: one inotify instance for every followed log.

Reading a log only when the kernel says it changed keeps hundreds of running
jobs from costing a timer each.  Where inotify is not available (not Linux, its
watch limit reached, or the ``files`` fallback forced: `ccd.platform`) a reader
falls back to a timed re-read every `FALLBACK_INTERVAL`: one timer wakes every
such reader at once (a timeout per reader and wake-up cost 17% of a core with
500 jobs running, see docs/benchmarks.md).  `asyncinotify` is imported only
when inotify is used: it does not import elsewhere.

One directory often has several readers (the engine's marker scan and each
`ccctl logs -f` of the job), but the kernel gives one inotify instance a single
watch per path: every subscriber of it is woken, and the watch is removed only
when the last one leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ccd.platform import choose

if TYPE_CHECKING:
    from asyncinotify import Event, Inotify, Mask, Watch

log = logging.getLogger(__name__)

#: how often a reader without an inotify watch looks at its file
FALLBACK_INTERVAL = 0.25
#: the pause after each read of the inotify queue.  A job writing its log in 8 KiB
#: pieces makes ~30,000 events a second; read as they come, each cost the loop a
#: wake-up (one core for a 1 GB flood).  Left in the queue for a moment, the
#: kernel merges each file's repeated events into one, so a flood costs at most
#: 1/DISPATCH_PAUSE wake-ups a second, for the price of that much latency.
DISPATCH_PAUSE = 0.005
#: events taken from the kernel per read
EVENTS_PER_READ = 256


class FileWatch:
    """A subscription: `changed` is set whenever the file was written or closed."""

    def __init__(self, watcher: FileWatcher, watch: Watch | None) -> None:
        self.changed = asyncio.Event()
        self._watcher = watcher
        self._watch = watch
        self._polled = watch is None

    @property
    def timeout(self) -> float | None:
        """None with inotify; else the re-read interval (`changed` is set that often)."""
        return FALLBACK_INTERVAL if self._polled else None

    async def wait(self) -> None:
        """Wait for a change (or the re-read's tick), then re-arm."""
        await self.changed.wait()
        self.changed.clear()

    def close(self) -> None:
        if self._watch is not None:
            self._watcher.remove(self, self._watch)
            self._watch = None
        elif self._polled:
            self._watcher.unpoll(self)
            self._polled = False


class FileWatcher:
    def __init__(self, inotify: bool | None = None) -> None:
        """`inotify`: whether to use it (default: as `ccd.platform.choose` says)."""
        self._use_inotify = choose().files == "inotify" if inotify is None else inotify
        self._inotify: Inotify | None = None
        self._mask: Mask | None = None  # set with `_inotify`
        # by watch descriptor: every subscriber of that path (insertion-ordered set)
        self._subscribers: dict[int, dict[FileWatch, None]] = {}
        self._task: asyncio.Task[None] | None = None
        #: readers without an inotify watch, and the timer that wakes them all
        self._polled: dict[FileWatch, None] = {}
        self._tick: asyncio.TimerHandle | None = None

    @property
    def mechanism(self) -> str:
        """What wakes readers: ``inotify``, or ``re-read`` where it is not used."""
        return "inotify" if self._inotify is not None else "re-read"

    def start(self) -> None:
        if not self._use_inotify:
            return
        try:
            from asyncinotify import Inotify, Mask

            # sync_timeout 0: `sync_get` returns None instead of waiting
            self._inotify = Inotify(cache_size=EVENTS_PER_READ, sync_timeout=0)
        except (OSError, ImportError) as exc:  # e.g. inotify instance limit reached
            log.warning("inotify unavailable (%s); log readers will poll", exc)
            return
        self._mask = Mask.MODIFY | Mask.CLOSE_WRITE | Mask.CREATE
        self._task = asyncio.get_running_loop().create_task(self._dispatch(), name="filewatch")

    def watch(self, path: Path) -> FileWatch:
        watch: Watch | None = None
        if self._inotify is not None and self._mask is not None:
            try:
                watch = self._inotify.add_watch(path, self._mask)
            except OSError as exc:
                log.warning("cannot watch %s (%s); polling it", path, exc)
        sub = FileWatch(self, watch)
        if watch is not None:
            self._subscribers.setdefault(watch.wd, {})[sub] = None
        else:
            self._polled[sub] = None
            self._arm()
        return sub

    def unpoll(self, sub: FileWatch) -> None:
        self._polled.pop(sub, None)

    def _arm(self) -> None:
        if self._tick is None:
            loop = asyncio.get_running_loop()
            self._tick = loop.call_later(FALLBACK_INTERVAL, self._wake_polled)

    def _wake_polled(self) -> None:
        self._tick = None
        for sub in self._polled:
            sub.changed.set()
        if self._polled:
            self._arm()

    def remove(self, sub: FileWatch, watch: Watch) -> None:
        subs = self._subscribers.get(watch.wd)
        if subs is None:
            return
        subs.pop(sub, None)
        if subs:
            return  # others still follow this path
        del self._subscribers[watch.wd]
        if self._inotify is not None:
            with contextlib.suppress(OSError, ValueError):
                self._inotify.rm_watch(watch)

    async def _dispatch(self) -> None:
        inotify = self._inotify
        assert inotify is not None
        while True:
            event: Event | None = await inotify.get()
            while event is not None:  # everything queued so far, without waiting
                self._wake(event)
                event = inotify.sync_get()
            await asyncio.sleep(DISPATCH_PAUSE)

    def _wake(self, event: Event) -> None:
        if event.watch is not None:
            for sub in self._subscribers.get(event.watch.wd, ()):
                sub.changed.set()

    async def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._polled.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._subscribers.clear()
