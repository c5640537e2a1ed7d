"""The daemon killed while SSH jobs are being launched and while they run: after the
restarts every job ran exactly once (a ledger on the remote host says so)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DaemonProc
from tests.integration.test_ssh import host_yaml, remote_daemon
from tests.sshd import SshHost, SshUser

JOBS = 30


def test_daemon_killed_while_launching_and_running_ssh_jobs_repeats_nothing(
    daemon_factory: Callable[..., DaemonProc],
    tmp_path: Path,
    ssh_host: SshHost,
    ssh_user: SshUser,
) -> None:
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host, max_jobs=10))
    ledger = ssh_user.home / f"ledger-{tmp_path.name}"
    ledger.unlink(missing_ok=True)
    jobs = "\n".join(
        f"  j{i}: {{host: remote, run: 'echo \"$CCD_JOB $CCD_ATTEMPT\" >> {ledger}; sleep 1'}}"
        for i in range(JOBS)
    )
    wf = d.submit(f"name: ssh-crash\njobs:\n{jobs}\n")
    # while the first jobs are being launched
    d.wait_for_event(wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running")
    d.stop(signal.SIGKILL)
    d.start()
    # while a later batch runs (10 at a time on the host: j10 and up are the second)
    d.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state" and e["data"]["state"] == "running" and int(e["job"][1:]) >= 10
        ),
    )
    d.stop(signal.SIGKILL)
    d.start()
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", [
        (j["name"], j["state"], j["reason"]) for j in status["jobs"] if j["state"] != "succeeded"
    ]
    lines = ledger.read_text().splitlines()
    assert sorted(lines) == sorted(f"j{i} 1" for i in range(JOBS))  # once each
    assert all(j["attempt"] == 1 for j in status["jobs"])
    ledger.unlink()
