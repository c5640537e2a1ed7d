"""The wrapper, run by a real /bin/sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ccd.executors.wrapper import parse_exit_file, render_wrapper
from ccd.spec.model import RUN_WORKDIR


def run_wrapper(
    tmp_path: Path, command: str, workdir: Path | None = None, env: dict[str, str] | None = None
) -> Path:
    run_dir = tmp_path / "run dir"
    run_dir.mkdir()
    script = render_wrapper(
        run_dir=str(run_dir),
        workdir=str(workdir) if workdir is not None else str(tmp_path),
        env=env or {},
        command=command,
    )
    (run_dir / "wrapper.sh").write_text(script)
    subprocess.run(["sh", str(run_dir / "wrapper.sh")], check=False, timeout=30)
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
