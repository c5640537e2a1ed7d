"""`ccctl watch` on a real terminal: tmux runs it and the test reads tmux's screen.

The live view must fit the terminal (30 rows here) however many jobs the workflow
has, show progress bars for running jobs, summarise the rest in one "… and N more"
line, update as jobs progress, and leave the final summary and a meaningful exit
status on the screen when the workflow ends.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import DaemonProc
from tests.e2e.conftest import DEADLINE, Ccctl, Screen, Tmux, rows_of, wait_screen

pytestmark = [
    pytest.mark.timeout(4 * DEADLINE),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

JOBS = 200
#: jobs that run until the test lets them go; the others finish at once (fewer than
#: the daemon's default slots for localhost, 8, so the quick ones keep flowing)
LONG = [f"j{i:03d}" for i in range(0, JOBS, 50)]
#: the one long job that fails, so the workflow fails and `watch` must exit 1
FAILS = LONG[-1]


def more_count(screen: Screen) -> int | None:
    """N of the "… and N more (...)" line, if there is one."""
    for row in screen:
        match = re.match(r"… and (\d+) more \(", row)
        if match:
            return int(match.group(1))
    return None


def long_rows(screen: Screen, marker: str) -> list[str]:
    return [row for row in rows_of(screen) if row.split()[0] in LONG and marker in row]


def workflow_file(work: Path, gate_a: Path, gate_b: Path) -> Path:
    lines = ["name: big", "concurrency: 20", "jobs:"]
    for i in range(JOBS):
        name = f"j{i:03d}"
        if name not in LONG:
            lines.append(f"  {name}: {{run: 'true'}}")
            continue
        lines += [
            f"  {name}:",
            "    run: |",
            "      echo '::ccd progress=30 msg=\"stage one\"'",
            f"      while [ ! -e {gate_a} ]; do sleep 0.05; done",
            "      echo '::ccd progress=80 msg=\"stage two\"'",
            f"      while [ ! -e {gate_b} ]; do sleep 0.05; done",
            f"      exit {7 if name == FAILS else 0}",
        ]
    path = work / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_watch_live_table_in_tmux(
    ccctl: Ccctl, daemon: DaemonProc, work: Path, tmux: Tmux, ccd_env: dict[str, str]
) -> None:
    gate_a, gate_b = work / "gate-a", work / "gate-b"
    submitted = ccctl("submit", str(workflow_file(work, gate_a, gate_b)), "--json")
    assert submitted.code == 0, str(submitted)
    wf = submitted.json()["id"]

    watch = shlex.join([sys.executable, "-m", "ccd.cli", "watch", wf])
    # keep the shell (and so the pane) alive after `watch` ends, to read its exit status
    tmux.new_session(f"{watch}; echo EXIT=$?; exec sleep 600", work, ccd_env)

    # stage one: every long job runs at 30%, the quick ones are summarised
    screen = wait_screen(
        tmux,
        "all long jobs running at 30% and the '… and N more' line",
        lambda s: (
            len(s) > 3 and len(long_rows(s, "stage one")) == len(LONG) and more_count(s) is not None
        ),
    )
    assert re.match(rf"big \({wf}\) running — \d+ running", screen[0]), screen[0]
    assert screen[1].split() == ["Job", "State", "Progress", "%", "Host", "Elapsed", "Message"]
    for row in long_rows(screen, "stage one"):
        assert re.search(r"running\s+━+.*\s30%\s+localhost\s+\d+s\s+stage one", row), row
    # the running jobs come first: the long ones, and any quick one caught running
    rows = rows_of(screen)
    leading = itertools.takewhile(lambda row: row.split()[1] == "running", rows)
    assert set(LONG) <= {row.split()[0] for row in leading}, "\n".join(rows)
    assert more_count(screen) == JOBS - len(rows_of(screen))
    assert tmux.scrolled() == 0, "the live view must never scroll the terminal"

    # stage two: the view follows the jobs' progress
    gate_a.touch()
    # the whole table, its '… and N more' line too (a capture may come mid-repaint)
    screen = wait_screen(
        tmux,
        "all long jobs at 80% and the '… and N more' line",
        lambda s: len(long_rows(s, "stage two")) == len(LONG) and more_count(s) is not None,
    )
    for row in long_rows(screen, "stage two"):
        assert re.search(r"running\s+━+.*\s80%\s+localhost", row), row
    assert more_count(screen) == JOBS - len(rows_of(screen))
    assert tmux.scrolled() == 0, "the live view must never scroll the terminal"

    # the end: the final summary and watch's exit status (1: one job failed)
    gate_b.touch()
    screen = wait_screen(
        tmux, "the exit status", lambda s: any(row.startswith("EXIT=") for row in s)
    )
    text = "\n".join(screen)
    assert screen[-1] == "EXIT=1", text
    assert screen[-2] == f"big ({wf}) failed — {JOBS - 1} succeeded, 1 failed", text
    failed = [row for row in screen if row.split()[:2] == [FAILS, "failed"]]
    assert failed and "exit=7" in failed[0], text
    assert not [row for row in screen if " running " in row], text
    # the last frame of the live view shows the final states, and was not printed twice
    assert any(re.fullmatch(r"… and (\d+) more \(\1 succeeded\)", row) for row in screen), text
    assert tmux.scrolled() <= 2, "only the summary and EXIT lines may push the view up"
    status = ccctl("status", wf, "--json").json()
    assert status["state"] == "failed"
