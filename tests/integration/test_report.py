"""Run reports against a job of known cost, through real daemons: locally (the kernel's
wait4, and the wrapper's own figures for an attempt a restarted daemon adopted), over
SSH (a real sshd), and on Slurm without and with accounting (sacct via slurmdbd).

The job allocates 200 MiB, touches it, spins 1 s of CPU, and prints what it used by
its own count (getrusage of itself) as outputs; the report must agree within 10%.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WAIT, DaemonProc
from tests.integration.test_ssh import host_yaml, remote_daemon
from tests.slurm import SlurmCluster
from tests.slurmdbd import AccountedCluster
from tests.sshd import SshHost

MakeDaemon = Callable[..., DaemonProc]
MIB = 1024

KNOWN_JOB = """\
import os, resource, time
while not os.path.exists(os.environ.get("GO", "/")):  # a test may hold it back
    time.sleep(0.02)
block = bytearray(200 * 2**20)  # zero-filled: every page touched
start = time.process_time()
while time.process_time() - start < 1.0:
    pass
time.sleep(float(os.environ.get("HOLD", "0")))  # still holding the memory
used = resource.getrusage(resource.RUSAGE_SELF)
print(f"::ccd output cpu={used.ru_utime + used.ru_stime}")
print(f"::ccd output rss={used.ru_maxrss}")
"""


def known_workflow(tmp_path: Path, name: str, **job: str) -> tuple[str, Path]:
    """The workflow file text (one job `known`, with `job`'s keys) and where it is."""
    (tmp_path / "known.py").write_text(KNOWN_JOB)
    keys = "".join(f"    {k}: {v}\n" for k, v in job.items())
    text = f"name: {name}\njobs:\n  known:\n    script: known.py\n{keys}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return text, path


def report_of(d: DaemonProc, wf: str) -> dict[str, Any]:
    result: dict[str, Any] = d.client.call("GET", f"/v1/workflows/{wf}/report")
    return result


def _peak_kb(d: DaemonProc) -> int:
    """The daemon's peak resident memory so far (VmHWM), in KiB."""
    assert d.proc is not None
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def assert_known_cost(d: DaemonProc, wf: str, source: str) -> dict[str, Any]:
    """The report's one attempt agrees with what the job counted itself (within 10%)."""
    status = d.wait_final(wf)
    job = status["jobs"][0]
    assert job["state"] == "succeeded", job
    cpu, rss = float(job["outputs"]["cpu"]), int(job["outputs"]["rss"])
    assert cpu >= 1.0 and 200 * MIB <= rss <= 240 * MIB, job["outputs"]  # the job is as said
    [entry] = report_of(d, wf)["attempts"]
    assert entry["source"] == source, entry
    assert entry["cpu"] == pytest.approx(cpu, rel=0.1), entry
    assert entry["maxrss_kb"] == pytest.approx(rss, rel=0.1), entry
    # "at most" (maxrss_bound) or exact, the figure is never below what the job itself
    # counted; whether it is flagged as a bound depends on the daemon's own peak at
    # the spawn (one loaded CI run flagged it with the daemon at 60 MB: under study)
    if entry["maxrss_bound"]:
        assert entry["maxrss_kb"] >= rss * 0.9, (entry, _peak_kb(d))
    assert entry["wall"] is not None and entry["wall"] >= 1.0, entry
    assert entry["exit_code"] == 0 and entry["attempt"] == 1, entry
    return entry


# -- locally ------------------------------------------------------------------------------
def test_a_local_job_s_cost_comes_from_the_kernel(daemon: DaemonProc, tmp_path: Path) -> None:
    text, path = known_workflow(tmp_path, "known-local")
    wf = daemon.submit(text, source=path)
    entry = assert_known_cost(daemon, wf, "kernel")
    assert (entry["host"], entry["executor"]) == ("localhost", "local")
    report = report_of(daemon, wf)
    assert report["totals"]["maxrss_kb"] == entry["maxrss_kb"]
    [group] = report["groups"]
    assert group["suggest"]["mem"] is not None and group["suggest"]["cpus"] == 1


def test_an_attempt_that_ended_while_no_daemon_ran_keeps_its_cost(
    daemon_factory: MakeDaemon, tmp_path: Path
) -> None:
    """The daemon that spawned the job is gone when it ends: no one reaps the wrapper with
    wait4, so it measures itself, and the next daemon reads its figures."""
    go = tmp_path / "go"
    text, path = known_workflow(tmp_path, "known-restart", env=f'{{GO: "{go}"}}')
    d = daemon_factory()
    d.start()
    wf = d.submit(text, source=path)
    d.wait_for_event(wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running")
    handle = d.jobs(wf)["known"]["handle"]
    d.stop()  # jobs outlive the daemon
    go.touch()
    exit_file = Path(handle["run_dir"]) / "exit"
    deadline = time.monotonic() + WAIT
    while not exit_file.exists():  # the job's own file: nothing to wait on but a look
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.05)
    d.start()
    assert_known_cost(d, wf, "wrapper")


# -- over SSH -----------------------------------------------------------------------------
def test_an_ssh_job_s_cost_comes_from_its_wrapper(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost
) -> None:
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host))
    text, path = known_workflow(tmp_path, "known-ssh", host="remote")
    wf = d.submit(text, source=path)
    entry = assert_known_cost(d, wf, "wrapper")
    assert (entry["host"], entry["executor"]) == ("remote", "ssh")
    assert entry["node"] == os.uname().nodename  # the sshd runs on this machine


# -- on Slurm -----------------------------------------------------------------------------
def slurm_daemon(make: MakeDaemon, cluster: SlurmCluster, sacct: str) -> DaemonProc:
    d = make(f"hosts:\n  localhost:\n    slurm: {{poll_interval: 0.5, sacct: {sacct}}}\n")
    d.env.update(cluster.env)
    d.start()
    return d


def test_a_slurm_job_without_accounting_has_its_wrapper_s_cost(
    daemon_factory: MakeDaemon, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    d = slurm_daemon(daemon_factory, slurm_cluster, "auto")
    text, path = known_workflow(tmp_path, "known-slurm", executor="slurm")
    wf = d.submit(text, source=path)
    entry = assert_known_cost(d, wf, "wrapper")
    assert entry["executor"] == "slurm" and entry["submitted"] is not None


def test_a_slurm_job_with_accounting_has_sacct_s_cost(
    daemon_factory: MakeDaemon, accounted_cluster: AccountedCluster, tmp_path: Path
) -> None:
    """sacct: UserCPU + SystemCPU of the job, the MaxRSS of its batch step (sampled each
    second by jobacct_gather/linux: the job holds its memory a second longer), Elapsed."""
    d = slurm_daemon(daemon_factory, accounted_cluster.cluster, "yes")
    text, path = known_workflow(tmp_path, "known-sacct", executor="slurm", env="{HOLD: '1.5'}")
    wf = d.submit(text, source=path)
    entry = assert_known_cost(d, wf, "sacct")
    assert entry["node"] == "localhost"  # sacct's NodeList
    assert entry["wall"] == pytest.approx(round(entry["wall"]))  # Elapsed: whole seconds


def test_a_cancelled_local_job_still_has_its_cost(daemon: DaemonProc) -> None:
    count = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: cancelled-cost
        jobs:
          spin: {{run: '{count}; echo "::ccd progress=50"; while :; do :; done'}}
    """)
    )
    daemon.wait_for_event(wf, lambda e: e["kind"] == "job.progress")
    daemon.client.call("POST", f"/v1/workflows/{wf}/cancel")
    daemon.wait_final(wf)
    [entry] = report_of(daemon, wf)["attempts"]
    assert entry["state"] == "cancelled" and entry["source"] == "kernel", entry
    assert entry["cpu"] is not None and entry["cpu"] > 0.05, entry
