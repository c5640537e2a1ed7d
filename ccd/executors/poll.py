"""Ticks on a fixed grid, for loops that ask an external system every interval.

A loop that sleeps `interval` after its work runs every ``interval + work``: with
a 1 s interval and squeue taking 0.1 s that is 54 questions a minute, not 60.
`poll` puts tick ``n`` at ``start + n * interval`` on the loop's monotonic clock
instead, so the work's duration does not add up.  A tick whose time has already
passed while the work ran (or the loop waited on something else) is skipped, not
made up: a slow answer is never followed by a burst of calls.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator


async def poll(interval: float) -> AsyncIterator[float]:
    """Yield now, then at each later point of the grid ``start + n * interval``.

    Each value is the loop time the tick was due at.  The caller's work runs
    between two ticks; the generator never ends, so leave it with ``break``.
    """
    if interval <= 0:
        raise ValueError(f"poll interval must be positive, not {interval}")
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    while True:
        yield start + tick * interval
        now = loop.time()
        # the first grid point not yet past: ticks missed during the work are dropped
        tick = max(tick + 1, math.ceil((now - start) / interval))
        await asyncio.sleep(start + tick * interval - now)
