"""The process tables, /proc and psutil, asked the same questions about real wrappers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccd.platform.procs import ProcessTable, ProcfsTable, PsutilTable

WAIT = 10.0


@pytest.fixture(params=[ProcfsTable, PsutilTable], ids=["procfs", "psutil"])
def table(request: pytest.FixtureRequest) -> ProcessTable:
    made: ProcessTable = request.param()
    return made


@pytest.fixture
def wrapper(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """A wrapper-like ``sh WRAPPER`` leading its own session, with a job subshell of
    the same command line: (the script, the wrapper's pid, the subshell's pid)."""
    script = tmp_path / "wrapper.sh"
    child = tmp_path / "child"
    script.write_text(f"( sh -c 'echo $PPID' > {child}.tmp; mv {child}.tmp {child}; sleep 30 )\n")
    pid = os.posix_spawn("/bin/sh", ["sh", str(script)], dict(os.environ), setsid=True)
    deadline = time.monotonic() + WAIT
    while not child.exists():  # another process's file: no event says when it is written
        assert time.monotonic() < deadline, "the wrapper did not start its subshell"
        time.sleep(0.01)
    yield script, pid, int(child.read_text())
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_the_wrapper_is_found_and_not_its_subshell(
    table: ProcessTable, wrapper: tuple[Path, int, int]
) -> None:
    script, pid, subshell = wrapper
    assert subshell != pid and os.getpgid(subshell) == pid  # same command line, same group
    assert table.wrapper_process(script) == pid
    assert table.wrapper_process(script.with_name("other.sh")) == 0


def test_a_pid_runs_the_wrapper_only_while_it_is_that_process(
    table: ProcessTable, wrapper: tuple[Path, int, int], tmp_path: Path
) -> None:
    script, pid, _ = wrapper
    assert table.runs(pid, script)
    assert not table.runs(pid, tmp_path / "another" / "wrapper.sh")
    assert not table.runs(os.getpid(), script)  # a reused pid: another program
    ended = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 0"], dict(os.environ))
    os.waitpid(ended, 0)
    assert not table.runs(ended, script)


def test_a_zombie_is_told_from_a_live_process(table: ProcessTable) -> None:
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 0"], dict(os.environ))
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not collected
    assert table.zombie(pid)
    os.waitpid(pid, 0)
    assert not table.zombie(pid)  # gone altogether
    assert not table.zombie(os.getpid())
