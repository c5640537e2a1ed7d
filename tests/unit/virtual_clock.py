"""An event loop with a virtual clock, for timing tests that cannot flake.

`loop.time()` is a number that moves only when the loop would otherwise block,
by exactly the time it would have waited: ``await asyncio.sleep(0.25)`` takes
no real time and exactly 0.25 loop seconds.  Work is modelled as sleeps of known
length, so the times at which things happen can be compared with ``==``
(choose binary fractions: 0.25, 0.5, 1.0).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: the loop time at start: not 0, so that code measuring from its own start shows it
START = 100.0


class _NeverBlocks(selectors.DefaultSelector):
    """Looks at the sockets without waiting; the time it would have waited passes."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("deadlock: the loop has nothing to wait for")
            self._loop.now += timeout
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = START
        super().__init__(_NeverBlocks(self))

    def time(self) -> float:
        return self.now


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` to its end on a fresh virtual-clock loop."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
