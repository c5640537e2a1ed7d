"""`unknown`: a recovered job whose launch cannot be checked because its host is down.

The daemon dies in the crash window (the SSH job was started, its `running` event
never committed) and, while it is down, the host's sshd goes away too.  The next
daemon cannot tell whether attempt 1 started: the job must show `unknown` — not
`queued`, not `failed`, and not be launched again — across yet another daemon
crash, until sshd is back; then the running attempt is adopted, exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import WAIT, DaemonProc, proc_alive
from tests.integration.test_ssh import host_yaml, remote_daemon
from tests.sshd import SshHost


def wait_event_within(
    d: DaemonProc, wf: str, predicate: Callable[[dict[str, Any]], bool], seconds: float = WAIT
) -> dict[str, Any]:
    """`d.wait_for_event`, failing after `seconds` instead of waiting for ever."""
    found: list[dict[str, Any]] = []
    thread = threading.Thread(
        target=lambda: found.append(d.wait_for_event(wf, predicate)), daemon=True
    )
    thread.start()
    thread.join(seconds)
    assert found, f"no such event within {seconds:g}s: {[e['data'] for e in d.events(wf)]}"
    return found[0]


def rewind_to_before(d: DaemonProc, wf: str, job: str, seq: int) -> None:
    """Forget everything from event `seq` on: the daemon died before committing it."""
    db = sqlite3.connect(d.state_dir / "ccd.db")
    with db:
        db.execute("DELETE FROM events WHERE seq >= ?", (seq,))
        db.execute(
            "UPDATE jobs SET state='queued', attempt=0, handle=NULL, started=NULL "
            "WHERE workflow_id=? AND name=?",
            (wf, job),
        )
    db.close()


def is_state(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["kind"] == "job.state" and e["data"]["state"] == state


def test_recovered_job_on_a_down_host_is_unknown_until_it_can_be_checked(
    daemon_factory: Any, tmp_path: Path, ssh_host: SshHost
) -> None:
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host))
    gate = Path(f"/tmp/ccd-test-gate-{os.getpid()}-{tmp_path.name}")
    wf = d.submit(
        textwrap.dedent(f"""
        name: uncertain
        jobs:
          only:
            host: remote
            run: 'echo "start $CCD_ATTEMPT"; while [ ! -e {gate} ]; do sleep 0.05; done'
    """)
    )
    try:
        running = wait_event_within(d, wf, is_state("running"))
        pid = running["data"]["handle"]["pid"]
        d.stop(signal.SIGKILL)
        ssh_host.stop()
        ssh_host.kill_sessions()
        rewind_to_before(d, wf, "only", running["seq"])
        assert proc_alive(pid)  # the job itself runs on

        d.start()
        unknown = wait_event_within(d, wf, is_state("unknown"))
        assert "attempt 1" in unknown["data"]["reason"]
        assert "remote" in unknown["data"]["reason"]
        job = d.jobs(wf)["only"]
        # the last attempt known to have started is still 0; nothing was launched
        assert (job["state"], job["attempt"], job["handle"]) == ("unknown", 0, None)
        shown = ccctl(d, "status", wf)
        assert shown.returncode == 0 and "unknown" in shown.stdout, shown

        # another crash while unknown: the next daemon resumes in `unknown`, same attempt
        d.stop(signal.SIGKILL)
        d.start()
        job = d.jobs(wf)["only"]
        assert (job["state"], job["attempt"]) == ("unknown", 0)

        ssh_host.start()
        adopted = wait_event_within(d, wf, lambda e: e["kind"] == "job.warning")
        assert "adopted it instead of starting it again" in adopted["data"]["message"]
        gate.touch()
        status = d.wait_final(wf)
    finally:
        gate.unlink(missing_ok=True)
    job = status["jobs"][0]
    assert status["state"] == "succeeded", status
    assert (job["state"], job["attempt"], job["handle"]["pid"]) == ("succeeded", 1, pid)
    assert d.log_of(wf, "only") == "start 1\n"
    states = [e["data"]["state"] for e in d.events(wf) if e["kind"] == "job.state"]
    # never queued again, failed or relaunched while its host was down
    assert states == ["queued", "unknown", "running", "succeeded"], states


def ccctl(d: DaemonProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccd.cli", *args],
        env={**os.environ, **d.env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
