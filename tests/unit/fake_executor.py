"""A scripted executor for in-process engine tests (in the spirit of httpx's MockTransport).

Each job's attempts follow `Script`s: print log lines (markers included), then
exit with a code, or hang until killed or finished by the test, or fail to
launch.  `FakeExecutor` records every call the engine makes (`calls`,
`requests`) and keeps the attempts it started, so a second engine on the same
store can `find` and `adopt` them as a new daemon would.  Nothing here sleeps:
tests wait on the futures it resolves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccd.executors.base import ExitStatus, LaunchError, LaunchRequest
from ccd.spec.model import Job
from ccd.states import JobState

#: seconds `launched` and `adopted` wait before they fail the test
WAIT = 5.0
#: (job name, attempt number): a test that runs several workflows names their jobs apart
Key = tuple[str, int]


@dataclass(frozen=True)
class Script:
    """What one attempt does once the engine launches it."""

    #: written to the attempt's log in order, each as one line, before it exits
    lines: tuple[str, ...] = ()
    #: the exit code; None: the attempt runs until it is killed or `finish`ed
    exit_code: int | None = 0
    #: the whole exit status, where an executor knows more than a code (a batch system)
    status: ExitStatus | None = None
    #: `launch` raises LaunchError with this message and starts nothing
    launch_error: str | None = None
    #: `launch` raises this: a bug in the executor
    crash: Exception | None = None
    #: `launch` starts the attempt, then never returns (a daemon dying mid-launch)
    launch_hangs: bool = False
    #: the state the attempt starts in, then the changes its executor reports
    launched_state: JobState = JobState.RUNNING
    states: tuple[tuple[JobState, str | None], ...] = ()
    enforces_timeout: bool = False


def exits(code: int = 0, *lines: str) -> Script:
    return Script(lines=lines, exit_code=code)


def hangs(*lines: str) -> Script:
    return Script(lines=lines, exit_code=None)


def launch_fails(message: str) -> Script:
    return Script(launch_error=message)


@dataclass(frozen=True)
class Call:
    """One call the engine made: `what` is ready, launch, find, adopt or kill."""

    what: str
    job: str
    attempt: int = 0
    #: kill's grace
    grace: float | None = None


class FakeAttempt:
    """One attempt: its log is an in-memory list, its exit a future the test can settle."""

    def __init__(self, executor: FakeExecutor, key: Key, script: Script) -> None:
        self._executor = executor
        self.key = key
        self.script = script
        self.handle: dict[str, Any] = {"executor": "fake", "job": key[0], "attempt": key[1]}
        self.log_path = Path("/dev/null")
        self.exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self.enforces_timeout = script.enforces_timeout
        self.launched_state = script.launched_state
        self._log: list[bytes] = []
        self._grew = asyncio.Event()
        self._state_listeners: list[Callable[[JobState, str | None], None]] = []
        self._warning_listeners: list[Callable[[str], None]] = []
        self.killed_with: float | None = None

    def play(self) -> None:
        """Run the script; called soon after the launch, once the engine listens."""
        for state, reason in self.script.states:
            self.notify(state, reason)
        for line in self.script.lines:
            self.write(line)
        if self.script.status is not None:
            self.end(self.script.status)
        elif self.script.exit_code is not None:
            self.finish(self.script.exit_code)

    # -- what a test does to a running attempt -----------------------------------------
    def write(self, line: str) -> None:
        self._log.append(line.encode() + b"\n")
        self._wake()

    def finish(self, code: int = 0) -> None:
        self.end(ExitStatus(exit_code=code, ended=time.time()))

    def notify(self, state: JobState, reason: str | None = None) -> None:
        for listener in list(self._state_listeners):
            listener(state, reason)

    def warn(self, message: str) -> None:
        for listener in list(self._warning_listeners):
            listener(message)

    def end(self, status: ExitStatus) -> None:
        """End the attempt with `status` (the first end wins)."""
        if not self.exited.done():
            self.exited.set_result(status)
            self._executor.running.discard(self.key)
            self._wake()

    def _wake(self) -> None:
        self._grew.set()
        self._grew = asyncio.Event()

    # -- the Attempt protocol -----------------------------------------------------------
    async def log_chunks(self) -> AsyncIterator[bytes]:
        # every reader starts at the beginning, as a real one rereads the log file
        read = 0
        while True:
            grew = self._grew
            while read < len(self._log):
                yield self._log[read]
                read += 1
            if self.exited.done():
                return
            await grew.wait()

    async def kill(self, grace: float) -> None:
        self._executor.calls.append(Call("kill", *self.key, grace=grace))
        self.killed_with = grace
        self.end(ExitStatus(exit_code=None, ended=time.time(), reason="killed by SIGTERM"))

    def on_state(self, listener: Callable[[JobState, str | None], None]) -> None:
        self._state_listeners.append(listener)

    def on_warning(self, listener: Callable[[str], None]) -> None:
        self._warning_listeners.append(listener)


class FakeExecutor:
    """Attempts by script: `scripts[job]` is one Script for every attempt, or one per
    attempt (the last repeats); a job without a script exits 0."""

    def __init__(self, scripts: Mapping[str, Script | Sequence[Script]] | None = None) -> None:
        self.scripts: dict[str, list[Script]] = {
            name: [s] if isinstance(s, Script) else list(s) for name, s in (scripts or {}).items()
        }
        self.calls: list[Call] = []
        self.requests: list[LaunchRequest] = []
        #: every attempt started, by (job, attempt): what `find` and `adopt` look in
        self.attempts: dict[Key, FakeAttempt] = {}
        #: attempts launched and not ended, and the most there ever were at once
        self.running: _Counted = _Counted()
        #: `find`'s answer for an attempt, instead of looking in `attempts`: a handle,
        #: None, or a future to wait for (a host that does not answer yet)
        self.find_answers: dict[Key, dict[str, Any] | asyncio.Future[Any] | None] = {}
        #: `ready` waits for this when set (a host not reachable yet)
        self.ready_gate: asyncio.Event | None = None
        self._launched: dict[Key, asyncio.Future[FakeAttempt]] = {}
        self._adopted: dict[Key, asyncio.Future[FakeAttempt]] = {}
        #: never resolved: where a hanging launch waits
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set(self, job: str, *scripts: Script) -> None:
        """Script `job`'s attempts: the first script for attempt 1, and so on."""
        self.scripts[job] = list(scripts)

    def script(self, job: str, attempt: int) -> Script:
        scripts = self.scripts.get(job) or [Script()]
        return scripts[min(attempt, len(scripts)) - 1]

    def calls_of(self, what: str, job: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.what == what and job in (None, c.job)]

    async def launched(self, job: str, attempt: int = 1) -> FakeAttempt:
        """The attempt, once it was started (by this engine or an earlier one)."""
        return await asyncio.wait_for(asyncio.shield(self._launched_future((job, attempt))), WAIT)

    async def adopted(self, job: str, attempt: int = 1) -> FakeAttempt:
        """The attempt, once an engine has adopted it."""
        return await asyncio.wait_for(asyncio.shield(_future(self._adopted, (job, attempt))), WAIT)

    def _launched_future(self, key: Key) -> asyncio.Future[FakeAttempt]:
        return _future(self._launched, key)

    def _start(self, key: Key, script: Script) -> FakeAttempt:
        attempt = FakeAttempt(self, key, script)
        self.attempts[key] = attempt
        self.running.add(key)
        # after the engine has registered its listeners (it does so before it yields)
        asyncio.get_running_loop().call_soon(attempt.play)
        future = self._launched_future(key)
        if not future.done():  # else launched twice: `calls` shows it to the test
            future.set_result(attempt)
        return attempt

    # -- the Executor protocol ----------------------------------------------------------
    async def ready(self, host: str) -> None:
        self.calls.append(Call("ready", host))
        if self.ready_gate is not None:
            await self.ready_gate.wait()

    async def launch(self, request: LaunchRequest) -> FakeAttempt:
        key = (request.job.name, request.attempt)
        self.calls.append(Call("launch", *key))
        self.requests.append(request)
        script = self.script(*key)
        if script.launch_error is not None:
            raise LaunchError(script.launch_error)
        if script.crash is not None:
            raise script.crash
        attempt = self._start(key, script)
        if script.launch_hangs:
            await self._never
        return attempt

    async def find(self, workflow_id: str, job: Job, attempt: int) -> dict[str, Any] | None:
        key = (job.name, attempt)
        self.calls.append(Call("find", *key))
        answer = self.find_answers.get(key, self._found(key))
        if isinstance(answer, asyncio.Future):
            result: dict[str, Any] | None = await answer
            return result
        return answer

    def _found(self, key: Key) -> dict[str, Any] | None:
        attempt = self.attempts.get(key)
        return None if attempt is None else attempt.handle

    async def adopt(self, handle: dict[str, Any]) -> FakeAttempt:
        key = (str(handle["job"]), int(handle["attempt"]))
        self.calls.append(Call("adopt", *key))
        attempt = self.attempts.get(key)
        if attempt is None:
            raise LaunchError(f"no attempt {key[1]} of {key[0]} to adopt")
        future = _future(self._adopted, key)
        if not future.done():
            future.set_result(attempt)
        return attempt

    async def close(self) -> None:
        return None


def _future(
    futures: dict[Key, asyncio.Future[FakeAttempt]], key: Key
) -> asyncio.Future[FakeAttempt]:
    future = futures.get(key)
    if future is None:
        future = futures[key] = asyncio.get_running_loop().create_future()
    return future


@dataclass
class _Counted:
    """A set that remembers its largest size."""

    items: set[Key] = field(default_factory=set)
    peak: int = 0

    def add(self, key: Key) -> None:
        self.items.add(key)
        self.peak = max(self.peak, len(self.items))

    def discard(self, key: Key) -> None:
        self.items.discard(key)
