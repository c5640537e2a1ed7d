"""Daemon crashes: nothing is launched twice, nothing is lost."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import textwrap
from pathlib import Path

from tests.conftest import WAIT, DaemonProc, proc_alive


def test_attempt_started_but_not_recorded_is_adopted_not_relaunched(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    ledger, gate = tmp_path / "ledger", tmp_path / "gate"
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: once
        jobs:
          only:
            run: 'echo "start $CCD_ATTEMPT" >> {ledger}; while [ ! -e {gate} ]; do sleep 0.05; done'
    """)
    )
    running = daemon.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running"
    )
    pid = running["data"]["handle"]["pid"]
    daemon.stop(signal.SIGKILL)
    # The crash window: the job was spawned, its running event never committed.
    db = sqlite3.connect(daemon.state_dir / "ccd.db")
    with db:
        db.execute("DELETE FROM events WHERE seq >= ?", (running["seq"],))
        db.execute(
            "UPDATE jobs SET state='queued', attempt=0, handle=NULL, started=NULL "
            "WHERE workflow_id=? AND name='only'",
            (wf,),
        )
    db.close()
    assert proc_alive(pid)
    daemon.start()
    adopted = daemon.wait_for_event(wf, lambda e: e["kind"] == "job.warning")
    assert "adopted it instead of starting it again" in adopted["data"]["message"]
    gate.touch()
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert (job["state"], job["attempt"], job["handle"]["pid"]) == ("succeeded", 1, pid)
    assert ledger.read_text() == "start 1\n"


def killed_while_first_waits(daemon: DaemonProc, gate: Path, then_run: str) -> str:
    """Submit `first` (waits for `gate`) -> `then` (runs `then_run`); kill -9 the daemon
    once `first` runs, so `then` is launched by the next daemon.  The workflow id."""
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: gated
        jobs:
          first: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}
          then: {{needs: [first], run: {then_run!r}}}
    """)
    )
    daemon.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state" and e["job"] == "first" and e["data"]["state"] == "running"
        ),
    )
    daemon.stop(signal.SIGKILL)
    return wf


def test_prepared_but_never_started_attempt_is_launched(daemon: DaemonProc, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wf = killed_while_first_waits(daemon, gate, "echo ran")
    # a run directory with a wrapper but no pid: a daemon that died before the spawn
    run_dir = daemon.state_dir / "runs" / wf / "then" / "1"
    run_dir.mkdir(parents=True)
    (run_dir / "wrapper.sh").write_text("#!/bin/sh\nexit 99\n")
    daemon.start()
    gate.touch()
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "succeeded", status
    assert (jobs["then"]["attempt"], jobs["then"]["exit_code"]) == (1, 0)
    assert daemon.log_of(wf, "then") == "ran\n"


def test_spawned_wrapper_slow_to_write_its_pid_is_adopted_not_relaunched(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    """A wrapper that runs but has not written `pid` yet (a loaded machine) is found."""
    ledger, gate, slow = tmp_path / "ledger", tmp_path / "gate", tmp_path / "slow"
    wf = killed_while_first_waits(daemon, gate, f'echo "then $CCD_ATTEMPT" >> {ledger}')
    # The crash window: `then`'s wrapper was spawned by the dead daemon but is held
    # before its first line (as a starved process would be), so it has no pid file.
    run_dir = daemon.state_dir / "runs" / wf / "then" / "1"
    run_dir.mkdir(parents=True)
    wrapper = run_dir / "wrapper.sh"
    wrapper.write_text(
        f"while [ ! -e {slow} ]; do sleep 0.05; done\n"
        f'echo $$ > {run_dir}/pid\necho "then 1" >> {ledger}\necho 0 > {run_dir}/exit\n'
    )
    held = subprocess.Popen(["sh", str(wrapper)], start_new_session=True)
    try:
        daemon.start()
        gate.touch()
        adopted = daemon.wait_for_event(wf, lambda e: e["kind"] == "job.warning")
        assert "adopted it instead of starting it again" in adopted["data"]["message"]
        slow.touch()
        status = daemon.wait_final(wf)
    finally:
        held.kill()
        held.wait()
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "succeeded", status
    assert (jobs["then"]["attempt"], jobs["then"]["handle"]["pid"]) == (1, held.pid)
    assert ledger.read_text() == "then 1\n"


def test_a_job_that_ended_while_no_daemon_ran_ended_when_its_exit_file_says(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wf = daemon.submit(f"jobs:\n  j: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n")
    running = daemon.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running"
    )
    daemon.stop(signal.SIGKILL)
    # the job ends while no daemon runs: its wrapper writes the exit file, then exits
    pidfd = os.pidfd_open(running["data"]["handle"]["pid"])
    try:
        gate.touch()
        assert select.select([pidfd], [], [], WAIT)[0], "the job did not end"
    finally:
        os.close(pidfd)
    exit_file = daemon.state_dir / "runs" / wf / "j" / "1" / "exit"
    exited_at = exit_file.stat().st_mtime
    daemon.start()
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert (job["state"], job["exit_code"]) == ("succeeded", 0)
    [final] = [
        e
        for e in daemon.events(wf)
        if e["kind"] == "job.state" and e["data"]["state"] == "succeeded"
    ]
    # the new daemon recorded the end later; the job's end is the exit file's time
    assert abs(job["ended"] - exited_at) < 0.01 < final["time"] - exited_at
