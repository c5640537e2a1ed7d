"""A real local job that fails says why: its exit code and its log's last line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT, WAIT, DaemonProc


def test_an_exit_code_failure_shows_the_last_log_line(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: fails
        jobs:
          bad:
            run: |
              echo "loading data"
              echo "::ccd progress=10"
              echo "FileNotFoundError: data.csv" >&2
              echo "::ccd progress=20"
              echo
              exit 3
    """)
    )
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert (job["state"], job["exit_code"], job["reason"]) == (
        "failed",
        3,
        "exit 3: FileNotFoundError: data.csv",
    )
    # the status table's Reason column, as a user sees it
    shown = subprocess.run(
        [sys.executable, "-m", "ccd.cli", "status", wf],
        env={**os.environ, **daemon.env, "COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    ).stdout
    [row] = [line for line in shown.splitlines() if line.startswith("bad ")]
    assert row.rstrip().endswith("exit 3: FileNotFoundError: data.csv"), shown
