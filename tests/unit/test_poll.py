"""`poll`: ticks on the grid ``start + n * interval``, missed ticks skipped.

The tests run on an event loop with a virtual clock (`tests.unit.virtual_clock`):
`loop.time()` moves only when the loop would otherwise block, by exactly the
time it would have waited.  "Work" is an ``asyncio.sleep`` of a known part of
the interval, so every tick's time is exact (intervals and work are binary
fractions) and is compared with its deadline using ``==``: nothing depends on
the machine's speed or load, and the tests take milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from ccd.executors.poll import poll
from tests.unit.virtual_clock import START, run


async def tick_times(
    interval: float, work: Callable[[int], Awaitable[None]], n: int
) -> list[float]:
    """The loop time of each of `n` ticks (from START), with `work(i)` after tick i."""
    loop = asyncio.get_running_loop()
    times: list[float] = []
    async for due in poll(interval):
        assert loop.time() == due  # a tick comes when it is due, not later
        times.append(loop.time() - START)
        if len(times) == n:
            break
        await work(len(times) - 1)
    return times


def takes(seconds: float) -> Callable[[int], Awaitable[None]]:
    async def work(_: int) -> None:
        await asyncio.sleep(seconds)

    return work


def test_the_first_tick_is_at_once_and_the_work_does_not_push_the_grid() -> None:
    # a quarter of the interval of work: a sleep-after-work loop would tick at
    # 0, 1.25, 2.5, ...; the grid keeps 0, 1, 2, ...
    assert run(lambda: tick_times(1.0, takes(0.25), 6)) == [0, 1, 2, 3, 4, 5]


def test_a_minute_of_polls_is_sixty_polls() -> None:
    # the numbers: a 1 s interval and ~0.1 s per squeue gave 54 a minute
    calls = 0

    async def squeue() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.125)

    async def on_the_grid() -> None:
        async for _ in poll(1.0):
            await squeue()

    async def sleeping_after_the_work() -> None:  # the loop `poll` replaced
        while True:
            await squeue()
            await asyncio.sleep(1.0)

    async def one_minute(poller: Callable[[], Coroutine[Any, Any, None]]) -> int:
        nonlocal calls
        calls = 0
        task = asyncio.ensure_future(poller())
        await asyncio.sleep(60.0 - 1 / 64)  # just under a minute: 60 ticks, 0 to 59
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return calls

    assert run(lambda: one_minute(on_the_grid)) == 60
    assert run(lambda: one_minute(sleeping_after_the_work)) == 54


def test_ticks_missed_by_slow_work_are_skipped_not_bunched() -> None:
    async def slow_second(i: int) -> None:
        await asyncio.sleep(2.5 if i == 1 else 0.5)

    # tick 1's work ends at 3.5: ticks 2 and 3 are gone, the next is 4, then 5
    assert run(lambda: tick_times(1.0, slow_second, 4)) == [0, 1, 4, 5]


def test_a_tick_due_the_moment_the_work_ends_comes_at_once() -> None:
    assert run(lambda: tick_times(0.5, takes(0.5), 4)) == [0, 0.5, 1.0, 1.5]


def test_time_spent_waiting_outside_the_work_counts_the_same() -> None:
    # a poller that waits for a connection (or for jobs) between ticks
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        reconnected = asyncio.Event()
        loop.call_at(START + 2.75, reconnected.set)
        times: list[float] = []
        async for _ in poll(1.0):
            times.append(loop.time() - START)
            if len(times) == 4:
                return times
            await reconnected.wait()
        raise AssertionError("unreachable")

    assert run(main) == [0, 3, 4, 5]  # ticks 1 and 2 passed during the wait


def test_an_interval_must_be_positive() -> None:
    async def main() -> None:
        async for _ in poll(0):
            pass

    with pytest.raises(ValueError, match="positive"):
        run(main)
