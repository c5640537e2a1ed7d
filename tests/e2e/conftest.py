"""Helpers for end-to-end tests: `ccctl` run exactly as a user types it.

Every command is a real subprocess (`python -m ccd.cli ...`) with the isolated
environment of the `ccd_env` fixture merged into `os.environ`, run in a scratch
working directory.  No helper here ever hides a traceback: every finished
command is checked for one.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

#: how long a test waits for something that normally takes well under a second
DEADLINE = 30.0


@dataclass(frozen=True)
class Result:
    """A finished `ccctl` command."""

    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return (
            f"$ ccctl {' '.join(self.argv)}  (exit {self.code})\n"
            f"--- stdout\n{self.out}--- stderr\n{self.err}"
        )

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err, str(result)
    assert "Traceback" not in result.out, str(result)


class LineReader:
    """Reads a pipe line by line in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):  # the pipe was closed under us
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _next(self, deadline: float) -> str | None:
        """The next line, None at end of stream; AssertionError after `deadline`."""
        if self.ended:
            return None
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("timed out; read so far:\n" + "\n".join(self.lines)) from None
        if line is None:
            self.ended = True
            return None
        self.lines.append(line)
        return line

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = DEADLINE) -> str:
        """Read until a line satisfies `predicate`; return it."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(deadline)
            if line is None:
                raise AssertionError(
                    "the stream ended before the expected line; read:\n" + "\n".join(self.lines)
                )
            if predicate(line):
                return line

    def rest(self, timeout: float = DEADLINE) -> list[str]:
        """Read to the end of the stream; return every line read so far."""
        deadline = time.monotonic() + timeout
        while self._next(deadline) is not None:
            pass
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return self.lines


@dataclass
class Background:
    """A `ccctl` command running in the background, both pipes read in threads."""

    argv: tuple[str, ...]
    proc: subprocess.Popen[str]
    out: LineReader
    err: LineReader

    def finish(self, timeout: float = DEADLINE) -> Result:
        """Wait for the command to exit by itself (it is killed if it does not)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"`ccctl {' '.join(self.argv)}` did not end within {timeout:g}s; output:\n"
                + "\n".join(self.out.lines)
            ) from None
        result = Result(
            self.argv,
            code,
            "".join(line + "\n" for line in self.out.rest()),
            "".join(line + "\n" for line in self.err.rest()),
        )
        assert_no_traceback(result)
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=DEADLINE)


@dataclass
class Ccctl:
    """Runs `ccctl` as a user would: a fresh process, the test's environment, a scratch cwd."""

    env: dict[str, str]
    cwd: Path
    _background: list[Background] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ccd.cli", *args]

    def environ(self, **changes: str | None) -> dict[str, str]:
        """The environment with `changes` applied (None removes a variable)."""
        env = dict(self.env)
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def _popen(self, args: Sequence[str], env: dict[str, str] | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.cwd,
            env=self.env if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,
        )

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = DEADLINE
    ) -> Result:
        """Run `ccctl ARGS...` to completion."""
        return self.many([args], env=env, timeout=timeout)[0]

    def many(
        self,
        commands: Sequence[Sequence[str]],
        env: dict[str, str] | None = None,
        timeout: float = DEADLINE,
    ) -> list[Result]:
        """Run several independent commands at once (they start in parallel) and wait for all."""
        procs = [(tuple(args), self._popen(args, env)) for args in commands]
        results = []
        try:
            for args, proc in procs:
                out, err = proc.communicate(timeout=timeout)
                results.append(Result(args, proc.returncode, out, err))
        finally:
            for _, proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        for result in results:
            assert_no_traceback(result)
        return results

    def start(self, *args: str, env: dict[str, str] | None = None) -> Background:
        """Start `ccctl ARGS...` in the background (stopped at the end of the test)."""
        proc = self._popen(args, env)
        assert proc.stdout is not None and proc.stderr is not None
        bg = Background(tuple(args), proc, LineReader(proc.stdout), LineReader(proc.stderr))
        self._background.append(bg)
        return bg

    def close(self) -> None:
        for bg in self._background:
            bg.kill()
            for pipe in (bg.proc.stdout, bg.proc.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The user's working directory (where workflow files are written)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def ccctl(ccd_env: dict[str, str], work: Path) -> Iterator[Ccctl]:
    runner = Ccctl(env={**os.environ, **ccd_env}, cwd=work)
    yield runner
    runner.close()


def processes_mentioning(text: str) -> list[int]:
    """Pids of this user's processes whose command line contains `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"
            ):
                pids.append(int(entry.name))
    return pids


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def no_daemon_left(ccd_env: dict[str, str]) -> Iterator[Path]:
    """For tests where `ccctl` itself starts a daemon: kill any left on the test's socket.

    A daemon started by `ccctl` runs `ccd.daemon.main run --socket <socket>`, and the
    socket lies in this test's own temporary runtime directory, so the command line
    identifies exactly the daemons this test started.
    """
    socket = Path(ccd_env["XDG_RUNTIME_DIR"]) / "ccd" / "ccd.sock"
    yield socket
    for pid in processes_mentioning(str(socket)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# -- a real terminal: tmux -------------------------------------------------------------

#: the terminal tmux gives `ccctl watch`
WIDTH, HEIGHT = 120, 30
#: how often a test looks at tmux's screen (it is another process's state)
POLL = 0.1

Screen = list[str]


class Tmux:
    """A private tmux server (its own socket) with one session of a fixed size."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.env = env

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=DEADLINE,
            check=True,
        )
        return done.stdout

    def new_session(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        exports = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        self.run(
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "-c",
            str(cwd),
            *exports,
            command,
        )

    def screen(self) -> Screen:
        """The visible screen, one string per row (trailing blank rows dropped)."""
        rows = self.run("capture-pane", "-p", "-t", "e2e").split("\n")
        while rows and not rows[-1].strip():
            rows.pop()
        return rows

    def scrolled(self) -> int:
        """Lines that have scrolled off the top of the screen into tmux's history."""
        return int(self.run("display-message", "-p", "-t", "e2e", "#{history_size}").strip())

    def kill(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.run("kill-server")


@pytest.fixture
def tmux(ccctl: Ccctl, ccd_env: dict[str, str]) -> Iterator[Tmux]:
    # the terminal's size must come from tmux, not from variables of the caller's shell
    env = {k: v for k, v in ccctl.env.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    # the runtime dir is short: a tmux socket path must fit in sun_path
    server = Tmux(Path(ccd_env["XDG_RUNTIME_DIR"]) / "tmux.sock", env)
    try:
        yield server
    finally:
        server.kill()


def wait_screen(tmux: Tmux, what: str, predicate: Callable[[Screen], bool]) -> Screen:
    """Poll tmux's screen until `predicate` holds; every screen seen must fit the terminal."""
    deadline = time.monotonic() + DEADLINE
    while True:
        screen = tmux.screen()
        assert len(screen) <= HEIGHT, "\n".join(screen)
        assert all(len(row) <= WIDTH for row in screen), "\n".join(screen)
        assert "Traceback" not in "\n".join(screen), "\n".join(screen)
        if predicate(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what}; the screen was:\n" + "\n".join(screen))
        time.sleep(POLL)  # polling another process's screen, bounded by the deadline


def rows_of(screen: Screen) -> list[str]:
    """The job rows of the live table (between its header rule and the "… and" line)."""
    rules = [i for i, row in enumerate(screen) if set(row.strip()) == {"─"}]
    assert rules, "\n".join(screen)
    rows = []
    for row in screen[rules[-1] + 1 :]:
        if row.startswith("… and ") or not row.strip():
            break
        rows.append(row)
    return rows
