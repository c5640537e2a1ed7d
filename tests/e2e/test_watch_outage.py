"""`ccctl watch` on a real terminal while a running SSH job's host drops out and returns.

The job's row must come back from `unreachable` as it was: its progress, its message
and an elapsed time counted from the attempt's start (the same attempt ran on while
the host was out of reach).  The daemon runs in the lab's `ctl` namespace, sshd in
`h1`; `ccctl watch` runs in tmux and reaches the daemon over its Unix socket.
"""

from __future__ import annotations

import re
import shlex
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DaemonProc, daemon_in_lab
from tests.e2e.conftest import DEADLINE, Ccctl, Screen, Tmux, rows_of, wait_screen
from tests.netns import NetnsLab

pytestmark = pytest.mark.timeout(4 * DEADLINE)


@pytest.fixture
def gate() -> Iterator[Path]:
    """A file the remote job waits for; its directory readable by the SSH test user."""
    directory = Path(tempfile.mkdtemp(prefix="ccd-gate-"))
    directory.chmod(0o755)
    yield directory / "go"
    (directory / "go").unlink(missing_ok=True)
    directory.rmdir()


def seconds_of(cell: str) -> int:
    """`42s` or `3m05s` as seconds."""
    match = re.fullmatch(r"(?:(\d+)m)?(\d+)s", cell)
    assert match, cell
    return int(match.group(1) or 0) * 60 + int(match.group(2))


def row_of(screen: Screen, job: str) -> str:
    """The job's row of the live table; "" until the table is drawn."""
    if not any(set(row.strip()) == {"─"} for row in screen):
        return ""
    rows = [row for row in rows_of(screen) if row.split()[:1] == [job]]
    return rows[0] if rows else ""


def test_watch_keeps_progress_and_elapsed_across_an_outage(
    ccctl: Ccctl,
    daemon_factory: Callable[..., DaemonProc],
    netns_lab_factory: Callable[[int], NetnsLab],
    tmux: Tmux,
    work: Path,
    gate: Path,
) -> None:
    lab = netns_lab_factory(1)
    d = daemon_in_lab(daemon_factory, lab, work)
    wf = d.submit(
        textwrap.dedent(f"""
        name: outage
        jobs:
          train:
            host: far
            run: |
              echo '::ccd progress=30 msg="epoch 3/10"'
              while [ ! -e {gate} ]; do sleep 0.1; done
    """)
    )
    watch = shlex.join([sys.executable, "-m", "ccd.cli", "watch", wf])
    tmux.new_session(f"{watch}; echo EXIT=$?; exec sleep 600", work, ccctl.env)

    screen = wait_screen(tmux, "train at 30%", lambda s: "epoch 3/10" in row_of(s, "train"))
    started = time.monotonic() - seconds_of(row_of(screen, "train").split()[-3])

    lab.cut(1)
    wait_screen(tmux, "train unreachable", lambda s: " unreachable " in row_of(s, "train"))
    lab.restore(1)
    screen = wait_screen(tmux, "train running again", lambda s: " running " in row_of(s, "train"))

    row = row_of(screen, "train")
    assert re.search(r"\s30%\s+far\s+\S+\s+epoch 3/10$", row), row
    # counted from the attempt's start (−1 s for the cells' whole seconds), not from the return
    assert seconds_of(row.split()[-3]) >= int(time.monotonic() - started) - 1, row

    gate.touch()
    screen = wait_screen(tmux, "the exit status", lambda s: any(r.startswith("EXIT=") for r in s))
    assert screen[-1] == "EXIT=0", "\n".join(screen)
