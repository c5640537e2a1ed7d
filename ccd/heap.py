"""Pausing Python's cyclic garbage collector around big, cycle-free allocations.

Accepting a workflow of 100,000 jobs allocates millions of objects (YAML
values, positions, models, rows, job states) that are not garbage: the
collector only re-scans them as they pile up, a quarter of the time the accept
takes.  Reference counting still frees everything as usual; the collector runs
again when the last pause ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while any caller (in any thread) is inside this block."""
    _pause()
    try:
        yield
    finally:
        _resume()


@contextlib.contextmanager
def gc_paused_for_a_turn() -> Iterator[None]:
    """No cyclic collection until the event loop ran what was ready at the block's
    end: the first step of every task started in it (which is where a new job's
    task makes its events, futures and frames)."""
    loop = asyncio.get_running_loop()
    _pause()
    try:
        yield
    finally:
        # scheduled last, so it runs after the steps of the tasks made in the block
        loop.call_soon(_resume)


def _pause() -> None:
    global _pauses
    with _lock:
        _pauses += 1
        if _pauses == 1:
            gc.disable()


def _resume() -> None:
    global _pauses
    with _lock:
        _pauses -= 1
        if _pauses == 0:
            gc.enable()
