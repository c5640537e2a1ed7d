"""Launches and signals, batched: what is asked for in the same moment shares one exec.

A workflow that starts 200 jobs at once asks for 200 launches within a few
milliseconds; one exec channel each would queue them on sshd's ``MaxSessions``
and pay a session (fork, login shell) per job.  `Batcher` gathers what arrives
within `WINDOW` and runs it as one command: `launch_script` writes each
attempt's wrapper and starts it detached, and reports each one's pid; kills of
the same signal become one ``kill`` of every process group.

The script keeps the job protocol as it is (same wrapper, run directory, pid),
and is safe to run twice (a command retried after a dropped connection): a
wrapper already written is not started again if it wrote its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ccd.executors.base import LaunchError
from ccd.executors.wrapper import PID, WRAPPER

#: seconds a batch waits for more of the same after its first item
WINDOW = 0.005
#: items in one batch at most (a launch script of ~1 KB a job stays well below 1 MB)
LIMIT = 256

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Batch(Generic[T, R]):
    items: list[tuple[T, asyncio.Future[R]]] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)


class Batcher(Generic[T, R]):
    """Gathers items asked for within `WINDOW` into one call of `run`.

    `run` gets the items and a `deliver(index, result)` to answer each one as
    soon as it is known (a result, or an exception for that item); an item it
    leaves unanswered fails, and an exception it raises goes to every item not
    answered yet.  The batch runs in a task of its own, so a caller that stops
    waiting does not stop it (a launch half done would leave a job nobody knows).
    """

    def __init__(
        self,
        run: Callable[[list[T], Callable[[int, R | Exception], None]], Awaitable[None]],
        *,
        window: float = WINDOW,
        limit: int = LIMIT,
    ) -> None:
        self._run = run
        self._window = window
        self._limit = limit
        self._open: _Batch[T, R] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            task = asyncio.create_task(self._flush(batch), name="ssh batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        batch.items.append((item, future))
        if len(batch.items) >= self._limit:
            batch.full.set()
            self._open = None  # later items start the next batch
        return await asyncio.shield(future)

    async def _flush(self, batch: _Batch[T, R]) -> None:
        def deliver(index: int, result: R | Exception) -> None:
            future = batch.items[index][1]
            if future.done():
                return
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.full.wait(), self._window)
            if self._open is batch:
                self._open = None
            await self._run([item for item, _ in batch.items], deliver)
            failure: Exception = LaunchError("the host's command gave no answer for it")
        except asyncio.CancelledError:  # the link closes: nobody waits for ever
            failure = LaunchError("ccd is closing this host's connection")
            raise
        except Exception as exc:  # every item not answered yet learns why
            failure = exc
        finally:
            for index in range(len(batch.items)):
                deliver(index, failure)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class Start:
    """One attempt to start: its run directory on the host and its wrapper's text."""

    run_dir: str
    wrapper: str


#: the script's head: `w DIR INDEX TEXT` writes one wrapper (never over one that
#: already started: ``set -C``) and starts it in its own session
_LAUNCH_HEAD = f"""cd / || exit 1
set -C
w() {{
  if printf '%s' "$3" > "$1/{WRAPPER}"; then :
  elif [ -s "$1/{PID}" ]; then read -r p < "$1/{PID}"; echo "$2 $p"; return
  elif ! printf '%s' "$3" >| "$1/{WRAPPER}"; then echo "$2 !"; return
  fi
  setsid sh "$1/{WRAPPER}" < /dev/null > /dev/null 2>&1 &
  echo "$2 $!"
}}
"""


def launch_script(starts: Sequence[Start]) -> str:
    """The sh script that starts every attempt of `starts`; prints ``INDEX PID`` (or
    ``INDEX !`` where it could not) a line."""
    dirs = " ".join(shlex.quote(s.run_dir) for s in starts)
    lines = [_LAUNCH_HEAD, f"mkdir -p -- {dirs}\n"]
    lines += [
        f"w {shlex.quote(s.run_dir)} {i} {shlex.quote(s.wrapper)}\n" for i, s in enumerate(starts)
    ]
    return "".join(lines)


def launch_answer(line: str) -> tuple[int, int | None] | None:
    """A line of the launch script's output: (index, pid), pid None where it could
    not start the wrapper; None for a line that is not an answer."""
    index, _, pid = line.strip().partition(" ")
    if not index.isdigit():
        return None
    return int(index), int(pid) if pid.isdigit() else None


def kill_command(pids: Sequence[int], signal: str) -> str:
    """One `kill` of every attempt's process group (a group already gone is no error)."""
    groups = " ".join(f"-{pid}" for pid in sorted(set(pids)))
    return f"kill -{signal} -- {groups} 2>/dev/null; true"
