"""SIGTERM while 50 jobs run: the daemon leaves quickly, the jobs do not notice."""

from __future__ import annotations

import collections
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from ccd.cli.client import path_of
from tests.conftest import DaemonProc, proc_alive

JOBS = 50
#: the issue's bound for a graceful stop
STOP_WITHIN = 5.0


def gated_workflow(ledger: Path, gate: Path) -> str:
    lines = ["name: fifty", "jobs:"]
    command = (
        f'echo "$CCD_JOB $CCD_ATTEMPT" >> {ledger}; while [ ! -e {gate} ]; do sleep 0.05; done'
    )
    lines += [f"  j{i:02d}: {{run: '{command}'}}" for i in range(JOBS)]
    return "\n".join(lines) + "\n"


def wait_all_running(d: DaemonProc, wf: str) -> None:
    running: set[str] = set()
    d.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state"
            and e["data"]["state"] == "running"
            and (running.add(e["job"]) or len(running) == JOBS)
        ),
    )


def follow_events(d: DaemonProc, wf: str, errors: list[BaseException]) -> threading.Thread:
    """A client watching the workflow (as `ccctl watch` would) while the daemon stops."""

    def read() -> None:
        try:
            for _ in d.client.stream_lines(path_of("workflows", wf, "events"), {"follow": True}):
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_sigterm_with_50_running_jobs_leaves_them_running_and_adopts_them(
    daemon_factory: Any, tmp_path: Path
) -> None:
    ledger, gate = tmp_path / "ledger", tmp_path / "gate"
    d: DaemonProc = daemon_factory(f"hosts:\n  localhost: {{max_jobs: {JOBS}}}\n")
    d.start()
    wf = d.submit(gated_workflow(ledger, gate))
    wait_all_running(d, wf)
    pids = {name: job["handle"]["pid"] for name, job in d.jobs(wf).items()}
    errors: list[BaseException] = []
    watcher = follow_events(d, wf, errors)
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    try:
        code = d.proc.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the daemon did not exit within {STOP_WITHIN}s of SIGTERM") from None
    d.proc = None
    assert code == 0, d.log.read_text()[-3000:]
    # the watching client's stream ended cleanly (not cut off mid-body)
    watcher.join(STOP_WITHIN)
    assert not watcher.is_alive() and errors == []
    assert [name for name, pid in pids.items() if not proc_alive(pid)] == []
    d.start()
    gate.touch()
    status = d.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    failed = [(j["name"], j["reason"]) for j in status["jobs"] if j["state"] != "succeeded"]
    assert status["state"] == "succeeded", failed
    # the same processes, adopted: same pid, first attempt, exit code from their exit file
    assert {n: (j["attempt"], j["handle"]["pid"], j["exit_code"]) for n, j in jobs.items()} == {
        n: (1, pid, 0) for n, pid in pids.items()
    }
    counts = collections.Counter(ledger.read_text().splitlines())
    assert counts == collections.Counter(f"{name} 1" for name in pids)
