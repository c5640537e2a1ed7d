"""The wrapper, run by a real /bin/sh."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccd.executors.wrapper import parse_exit_file, render_wrapper
from ccd.spec.model import RUN_WORKDIR
from ccd.usage import parse_usage

#: a child of known size: 50 MiB touched, then 0.3 s of CPU; it prints its own figures
KNOWN_CHILD = """\
import resource, time
b = bytearray(50 * 2**20)
t = time.process_time()
while time.process_time() - t < 0.3:
    pass
u = resource.getrusage(resource.RUSAGE_SELF)
print(u.ru_utime + u.ru_stime, u.ru_maxrss)
"""


@pytest.fixture
def known_child(tmp_path: Path) -> str:
    """The shell command that runs KNOWN_CHILD."""
    script = tmp_path / "child.py"
    script.write_text(KNOWN_CHILD)
    return f"{sys.executable} {script}"


def write_wrapper(
    tmp_path: Path,
    command: str,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    self_measure: bool = False,
) -> Path:
    run_dir = tmp_path / "run dir"
    run_dir.mkdir()
    script = render_wrapper(
        run_dir=str(run_dir),
        workdir=str(workdir) if workdir is not None else str(tmp_path),
        env=env or {},
        command=command,
        self_measure=self_measure,
    )
    (run_dir / "wrapper.sh").write_text(script)
    return run_dir


def run_wrapper(
    tmp_path: Path,
    command: str,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    self_measure: bool = False,
    path: str | None = None,
) -> Path:
    run_dir = write_wrapper(tmp_path, command, workdir, env, self_measure)
    run_env = None if path is None else {**os.environ, "PATH": path}
    subprocess.run(["/bin/sh", str(run_dir / "wrapper.sh")], check=False, timeout=30, env=run_env)
    return run_dir

    run_dir = run_wrapper(tmp_path, "echo out; echo err >&2; exit 5")
    assert (run_dir / "exit").read_text() == "5\n"
    assert (run_dir / "log").read_text() == "out\nerr\n"
    assert int((run_dir / "pid").read_text()) > 0


def test_env_values_are_quoted(tmp_path: Path) -> None:
    value = 'it\'s $(echo nope) `x` "q"; ;'
    run_dir = run_wrapper(tmp_path, 'printf "%s" "$V"', env={"V": value})
    assert (run_dir / "log").read_text() == value


def test_missing_workdir_is_reported_in_the_log(tmp_path: Path) -> None:
    run_dir = run_wrapper(tmp_path, "true", workdir=tmp_path / "absent")
    assert (run_dir / "exit").read_text() == "127\n"
    assert "cannot enter the job's workdir" in (run_dir / "log").read_text()


def test_parse_exit_file() -> None:
    assert parse_exit_file("0\n") == 0
    assert parse_exit_file("garbage") is None


def test_syntax_error_fails_the_job_not_the_wrapper(tmp_path: Path) -> None:
    run_dir = run_wrapper(tmp_path, "if then fi (")
    assert (run_dir / "exit").read_text() == "2\n"


def test_command_text_is_not_interpreted_by_the_wrapper(tmp_path: Path) -> None:
    run_dir = run_wrapper(tmp_path, "echo 'it''s' \"$((1+1))\"; exit 0")
    assert (run_dir / "log").read_text() == "its 2\n"
    assert (run_dir / "exit").read_text() == "0\n"


def test_workdir_run_starts_the_job_in_its_run_directory(tmp_path: Path) -> None:
    run_dir = run_wrapper(tmp_path, "pwd", workdir=Path(RUN_WORKDIR))
    assert (run_dir / "log").read_text() == f"{run_dir}\n"
    # a directory that happens to be called run is still a path
    (tmp_path / "run").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    run_dir = run_wrapper(other, "pwd", workdir=tmp_path / "run")
    assert (run_dir / "log").read_text() == f"{tmp_path / 'run'}\n"


# -- what the job cost -------------------------------------------------------------------
def test_a_wrapper_its_parent_reaps_leaves_the_figures_to_it(tmp_path: Path) -> None:
    # the daemon that spawned it reads them with wait4 (ccd.executors.local)
    run_dir = run_wrapper(tmp_path, "exit 3")
    assert (run_dir / "exit").read_text() == "3\n"
    assert not (run_dir / "usage").exists()


def test_a_self_measuring_wrapper_writes_the_jobs_cpu_and_peak_before_the_exit(
    tmp_path: Path, known_child: str
) -> None:
    run_dir = run_wrapper(tmp_path, f"{known_child}; exit 3", self_measure=True)
    assert (run_dir / "exit").read_text() == "3\n"
    usage = parse_usage((run_dir / "usage").read_text())
    assert usage is not None and usage.source == "wrapper"
    cpu, peak = (float(w) for w in (run_dir / "log").read_text().split())
    assert usage.cpu == pytest.approx(cpu, rel=0.1, abs=0.02)
    assert usage.maxrss_kb == pytest.approx(peak, rel=0.1)
    assert usage.maxrss_kb is not None and usage.maxrss_kb > 50 * 1024
    assert usage.node == os.uname().nodename
    assert usage.start == pytest.approx((run_dir / "pid").stat().st_mtime, abs=0.01)
    assert usage.wall is not None and usage.wall >= 0.3
    assert (run_dir / "usage").stat().st_mtime_ns <= (run_dir / "exit").stat().st_mtime_ns


def test_without_python3_the_wrapper_writes_the_cpu_time_alone(tmp_path: Path) -> None:
    # PATH without python3: the sh built-in `times` is all there is
    spin = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"
    run_dir = run_wrapper(tmp_path, f"( {spin} ); exit 4", self_measure=True, path="/nonexistent")
    assert (run_dir / "exit").read_text() == "4\n"
    usage = parse_usage((run_dir / "usage").read_text())
    assert usage is not None and usage.source == "times" and usage.maxrss_kb is None
    assert usage.cpu is not None and usage.cpu > 0


def test_an_orphaned_wrapper_measures_itself(tmp_path: Path, known_child: str) -> None:
    """The daemon that spawned it is gone (a new one will adopt the attempt and cannot
    wait4 it): the wrapper writes its own figures."""
    # the job waits until the wrapper's parent has exited and been reaped
    run_dir = write_wrapper(
        tmp_path, f'while kill -0 "$PPID" 2>/dev/null; do sleep 0.01; done; {known_child}'
    )
    # its parent leaves once the wrapper has started (and written its pid)
    started = f"while [ ! -s '{run_dir / 'pid'}' ]; do sleep 0.01; done"
    outer = subprocess.Popen(["/bin/sh", "-c", f"/bin/sh '{run_dir / 'wrapper.sh'}' & {started}"])
    assert outer.wait(timeout=30) == 0
    deadline = time.monotonic() + 30
    while not (run_dir / "exit").exists():  # another process's file: no event to wait on
        assert time.monotonic() < deadline, (run_dir / "log").read_text()
        time.sleep(0.02)
    assert (run_dir / "exit").read_text() == "0\n"
    usage = parse_usage((run_dir / "usage").read_text())
    assert usage is not None and usage.source == "wrapper"
    peak = float((run_dir / "log").read_text().split()[1])
    assert usage.maxrss_kb == pytest.approx(peak, rel=0.1)
