"""The per-host follower against a real sshd: logs and exits streamed, not polled.

Counts come from the daemon's own link (``GET /v1/hosts/NAME/link``): SFTP
requests, exec channels, launches, followers started.  Each test with its own
runs directory on the host, so parallel tests never share a follower's files.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProc
from tests.integration.test_ssh import host_yaml, remote_daemon
from tests.sshd import SshHost, SshUser, kill_pids

MakeDaemon = Callable[..., DaemonProc]


@pytest.fixture
def workdir(ssh_user: SshUser) -> Iterator[Path]:
    """A runs directory of the test user's own for this test (removed after it).

    Made unique by mkdtemp: tmp_path's name is not (xdist workers each count from 0,
    and a parallel run of the suite shares the test user's home)."""
    path = Path(tempfile.mkdtemp(prefix="runs-", dir=ssh_user.home))
    os.chown(path, ssh_user.uid, ssh_user.gid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def stream_daemon(
    daemon_factory: MakeDaemon, tmp_path: Path, host: SshHost, workdir: Path, **extra: object
) -> DaemonProc:
    fields: dict[str, object] = {"max_jobs": 250, "workdir": str(workdir), **extra}
    return remote_daemon(daemon_factory, tmp_path, host_yaml("remote", host, **fields))


def link_of(d: DaemonProc) -> dict[str, Any]:
    result: dict[str, Any] = d.client.call("GET", "/v1/hosts/remote/link")
    return result


def counter_job(lines: int, pause: float) -> str:
    return f'i=1; while [ $i -le {lines} ]; do echo "line $i"; i=$((i+1)); sleep {pause}; done'


def numbered(lines: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, lines + 1))


def wait_log(d: DaemonProc, wf: str, job: str, text: str) -> None:
    """Follow the job's log until `text` is in it."""
    seen = ""
    for chunk in d.client.stream(f"/v1/workflows/{wf}/jobs/{job}/log", {"follow": True}):
        seen += chunk.decode()
        if text in seen:
            return
    raise AssertionError(f"{text!r} never appeared in the log: {seen!r}")


#: SFTP requests of the one read of an attempt's usage file, at its end
USAGE_READ = 4


@pytest.mark.parametrize("follower", ["python3", "sh"])
def test_log_bytes_and_the_exit_arrive_without_an_sftp_read(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost, workdir: Path, follower: str
) -> None:
    d = stream_daemon(daemon_factory, tmp_path, ssh_host, workdir, follower=follower)
    wf = d.submit(
        textwrap.dedent(f"""
        name: streamed
        jobs:
          counter:
            host: remote
            run: '{counter_job(30, 0.05)}; echo "::ccd progress=100"; exit 3'
    """)
    )
    wait_log(d, wf, "counter", "line 1\n")
    before = link_of(d)
    assert before["follower"] == follower, before
    status = d.wait_final(wf)
    job = status["jobs"][0]
    assert (job["state"], job["exit_code"], job["progress"]) == ("failed", 3, 100)
    log = numbered(30) + "::ccd progress=100\n"
    assert d.log_of(wf, "counter") == log
    after = link_of(d)
    # no stat and no log read while it ran; the one read after its exit is the
    # wrapper's usage file (the run report's figures): open, stat, read, close
    assert after["sftp"] - before["sftp"] == USAGE_READ, (before, after)
    assert after["streamed"] == len(log)  # every byte came through the follower
    assert after["followers"] == 1


@pytest.mark.parametrize("follower", ["python3", "sh"])
@pytest.mark.parametrize("cut", ["follower", "connection", "daemon"])
def test_offsets_resume_exactly_after_the_follower_or_the_connection_dies(
    daemon_factory: MakeDaemon,
    tmp_path: Path,
    ssh_host: SshHost,
    workdir: Path,
    follower: str,
    cut: str,
) -> None:
    d = stream_daemon(daemon_factory, tmp_path, ssh_host, workdir, follower=follower)
    gate = workdir / "gate"
    # lines 1-60, then (once the follower or the connection died) lines 61-120
    job = (
        f'i=1; while [ $i -le 120 ]; do echo "line $i"; i=$((i+1)); sleep 0.01; '
        f"[ $i -ne 61 ] || while [ ! -e {gate} ]; do sleep 0.02; done; done"
    )
    wf = d.submit(f"name: resume\njobs:\n  counter: {{host: remote, run: '{job}'}}\n")
    wait_log(d, wf, "counter", "line 60\n")
    first = link_of(d)
    if cut == "follower":
        os.kill(first["follower_pid"], signal.SIGKILL)
    elif cut == "daemon":  # the next daemon adopts the job, its follower starts afresh
        d.stop(signal.SIGKILL)
        d.start()
    else:
        # the sshd processes of ccd's connection, once: sshd still listens, so ccd
        # reconnects at once (kill_sessions would go on killing each new connection)
        assert kill_pids(ssh_host.session_pids())
    gate.touch()
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    # the ledger: every numbered line once, in order, none lost, none repeated
    assert d.log_of(wf, "counter") == numbered(120)
    again = link_of(d)
    assert again["follower"] == follower, again
    assert again["followers"] >= (1 if cut == "daemon" else 2), again
    if cut != "daemon":  # (the next daemon counts from its own start)
        assert again["streamed"] == len(numbered(120)), again  # every byte by a follower
    assert again["follower_pid"] != first["follower_pid"]


def test_fifty_jobs_started_together_share_one_launch_exec(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost, workdir: Path
) -> None:
    d = stream_daemon(daemon_factory, tmp_path, ssh_host, workdir)
    jobs = "\n".join(f"  j{i}: {{host: remote, run: 'echo job {i}'}}" for i in range(50))
    wf = d.submit(f"name: fifty\njobs:\n{jobs}\n")
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert {d.log_of(wf, f"j{i}") for i in (0, 25, 49)} == {"job 0\n", "job 25\n", "job 49\n"}
    link = link_of(d)
    assert (link["launch_execs"], link["launched"]) == (1, 50), link
    pids = {j["handle"]["pid"] for j in status["jobs"]}
    assert len(pids) == 50  # fifty wrappers, each its own process group


@pytest.mark.parametrize("follower", ["python3", "sh"])
def test_a_wrapper_killed_on_the_host_is_lost_and_a_cancel_kills(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost, workdir: Path, follower: str
) -> None:
    d = stream_daemon(daemon_factory, tmp_path, ssh_host, workdir, follower=follower)
    wf = d.submit(
        "name: gone\njobs:\n"
        "  victim: {host: remote, run: 'echo up; sleep 300'}\n"
        "  cancelled: {host: remote, run: 'echo up; sleep 300'}\n"
    )
    wait_log(d, wf, "victim", "up\n")
    wait_log(d, wf, "cancelled", "up\n")
    victim = d.jobs(wf)["victim"]["handle"]["pid"]
    os.killpg(victim, signal.SIGKILL)  # no exit file: the follower sees the pid gone
    d.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state" and e["job"] == "victim" and e["data"]["state"] == "failed"
        ),
    )
    d.client.call("POST", f"/v1/workflows/{wf}/cancel")
    jobs = {j["name"]: j for j in d.wait_final(wf)["jobs"]}
    assert (jobs["victim"]["state"], jobs["victim"]["reason"]) == ("failed", "lost")
    assert jobs["cancelled"]["state"] == "cancelled"


def test_follower_that_cannot_start_falls_back_to_sftp_and_says_so(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost, workdir: Path
) -> None:
    # the follower's directory belongs to root: ccd cannot upload the scripts there
    (workdir / ".ccd-follower").mkdir(mode=0o755)
    d = stream_daemon(daemon_factory, tmp_path, ssh_host, workdir)
    wf = d.submit(f"name: fallback\njobs:\n  j: {{host: remote, run: '{counter_job(20, 0.02)}'}}\n")
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert d.log_of(wf, "j") == numbered(20)
    warnings = [e["data"]["message"] for e in d.events(wf) if e["kind"] == "job.warning"]
    assert len(warnings) == 1, warnings
    assert "cannot stream the logs of 'remote'" in warnings[0]
    assert "cannot upload it" in warnings[0] and "polling them over SFTP" in warnings[0]
    link = link_of(d)
    assert link["follower"] is None and "SFTP" in link["fallback"], link
    assert link["streamed"] == 0 and link["followers"] == 0  # the log came by SFTP reads
    assert link["sftp"] > 20  # which the counter sees (so a count of 0 elsewhere means none)
