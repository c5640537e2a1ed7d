"""`workdir: run`: each attempt starts in its own run directory, so an array's
elements (and a retry's attempts) never write over each other's files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ccd.cli.client import ApiError, path_of
from tests.conftest import ROOT, WAIT, DaemonProc


def test_array_elements_in_workdir_run_keep_their_own_files(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: sweep
        jobs:
          train:
            array: [0.1, 0.2, 0.3]
            workdir: run
            # the same relative file name in every element, and the place it was written
            run: 'echo "$CCD_ARRAY_VALUE" > model.txt && pwd && echo "$CCD_RUN_DIR"'
    """)
    )
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    runs = daemon.state_dir / "runs" / status["id"]
    for index, value in enumerate(["0.1", "0.2", "0.3"]):
        job = f"train[{index}]"
        run_dir = runs / job / "1"
        assert (run_dir / "model.txt").read_text() == f"{value}\n"
        cwd, announced = daemon.log_of(wf, job).split()
        assert cwd == announced == str(run_dir)


def test_status_of_one_job_says_where_its_files_are(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: one
        jobs:
          train:
            workdir: run
            run: 'echo "::ccd output acc=0.9"; echo done > model.txt; exit 2'
    """)
    )
    daemon.wait_final(wf)
    detail = daemon.client.call("GET", path_of("workflows", wf, "jobs", "train"))
    run_dir = daemon.state_dir / "runs" / detail["workflow_id"] / "train" / "1"
    assert (detail["state"], detail["exit_code"], detail["workdir"]) == ("failed", 2, "run")
    assert (detail["run_dir"], detail["log"]) == (str(run_dir), str(run_dir / "log"))
    assert (run_dir / "model.txt").read_text() == "done\n"

    shown = subprocess.run(
        [sys.executable, "-m", "ccd.cli", "status", wf, "train"],
        env={**os.environ, **daemon.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "train"
    facts = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[1:] if line.strip()}
    assert facts["state"] == "failed (attempt 1)"
    assert facts["workdir"] == f"run ({run_dir})"
    assert facts["log"] == str(run_dir / "log")
    assert facts["outputs"] == "acc=0.9"
    with pytest.raises(ApiError, match="has no job 'nope'"):
        daemon.client.call("GET", path_of("workflows", wf, "jobs", "nope"))
