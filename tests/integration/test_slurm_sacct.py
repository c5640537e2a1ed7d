"""The Slurm executor's `sacct` path against real accounting (tests/slurmdbd.py).

On the accounted cluster finished jobs leave `squeue` a few seconds after they end
(MinJobAge=2, plus slurmctld's purge period): a job ccd did not see finish is then known
to `sacct` only.  That happens to users whenever ccd is not looking at the moment a job
ends: a daemon paused or down for a while, or a poll interval longer than the cluster's
MinJobAge.  The tests make it happen for sure: the jobs wait for a go file; the daemon is
paused (SIGSTOP) after it has seen them running or queued; then the jobs are let go
(or cancelled from outside) and the test waits, polling Slurm, until every job is final
in sacct and gone from squeue before the daemon goes on (SIGCONT).

Each sacct call is counted by the wrappers of tests/slurm.py (`counting_squeue`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccd.executors.slurm.attempt import GRACE_POLLS
from tests.conftest import DaemonProc
from tests.slurm import CountingBin, SlurmCluster, _wait_for, open_cluster
from tests.slurmdbd import DATABASE, MIN_JOB_AGE, AccountedCluster, wait_left_queue

POLL = 0.5
MakeDaemon = Callable[..., DaemonProc]
#: a job's shell text: wait for the test's go file (the job polls, not the test)
WAIT_GO = 'while [ ! -e "$GO" ]; do sleep 0.05; done'


# -- helpers -----------------------------------------------------------------------------
def start_daemon(
    make: MakeDaemon, cluster: SlurmCluster, calls: CountingBin, sacct: str
) -> DaemonProc:
    d = make(
        f"kill_grace: 2\nhosts:\n  localhost:\n"
        f"    slurm: {{poll_interval: {POLL}, sacct: {sacct}}}\n"
    )
    d.env.update(cluster.env)
    d.env["PATH"] = f"{calls.bin_dir}:{os.environ['PATH']}"
    d.start()
    return d


def workflow(name: str, go: Path, jobs: dict[str, str]) -> str:
    """Every job waits for `go`, then runs its shell text."""
    lines = [f"name: {name}", "defaults: {executor: slurm, env: {GO: " + f'"{go}"' + "}}", "jobs:"]
    for job, run in jobs.items():
        lines.append(f"  {job}: {{run: '{WAIT_GO}; {run}'}}")
    return "\n".join(lines) + "\n"


def slurm_ids(d: DaemonProc, wf: str) -> dict[str, str]:
    """Job name -> Slurm job id, once ccd has every job's id (polling its status)."""
    ids: dict[str, str] = {}

    def all_submitted() -> bool:
        nonlocal ids
        jobs = d.jobs(wf)
        ids = {name: (j.get("handle") or {}).get("slurm_id", "") for name, j in jobs.items()}
        return all(i[:1].isdigit() for i in ids.values())

    # polling the daemon's status until every job has its Slurm id, with a deadline
    _wait_for("every job submitted", all_submitted, details=lambda: f"{ids}")
    return ids


def wait_running(d: DaemonProc, wf: str, count: int) -> None:
    """Until ccd has seen `count` of the workflow's jobs running in Slurm."""
    running: set[str] = set()
    # following the workflow's event stream (it ends only when the workflow does)
    for line in d.client.stream_lines(f"/v1/workflows/{wf}/events", {"follow": True}):
        event = json.loads(line) if line.strip() else {}
        if event.get("kind") == "job.state" and event["data"]["state"] == "running":
            running.add(event["job"])
            if len(running) >= count:
                return
    raise AssertionError(f"the workflow ended with {sorted(running)} seen running")


def wait_final_within(d: DaemonProc, wf: str, timeout: float) -> dict[str, Any]:
    """The workflow's status once it is final; fails after `timeout` s (a job stuck)."""
    status: dict[str, Any] = {}

    def final() -> bool:
        nonlocal status
        status = d.status(wf)
        return bool(status["state"] != "running")

    # polling the daemon's status, with a deadline: a stuck job must fail the test
    _wait_for(f"workflow {wf} final", final, timeout, details=lambda: f"{status}")
    return status


@contextlib.contextmanager
def paused(d: DaemonProc) -> Iterator[None]:
    """The daemon stopped (SIGSTOP): it sees nothing of what happens meanwhile."""
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)


def ended_unseen(cluster: SlurmCluster, ids: list[str], accounted: AccountedCluster | None) -> None:
    """Wait (polling Slurm) until the jobs are final in sacct, if the cluster has it, and
    gone from squeue: from now on only sacct (or the exit files) know how they ended."""
    if accounted is not None:
        accounted.wait_accounted(ids)
    wait_left_queue(cluster, ids)


def sacct_ids(calls: CountingBin) -> list[list[str]]:
    """The job ids of each sacct call, in order."""
    found = []
    for line in calls.calls("sacct"):
        words = line.split()
        found.append(words[words.index("-j") + 1].split(",") if "-j" in words else [])
    return found


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plain_short_cluster() -> Iterator[SlurmCluster]:
    """A cluster without accounting (as tests/slurm.py's) whose finished jobs also leave
    squeue within seconds: there, only the exit files tell how a missed job ended."""
    cluster = open_cluster(extra_conf=[f"MinJobAge={MIN_JOB_AGE}"])
    yield cluster
    cluster.shutdown()


# -- sacct: yes --------------------------------------------------------------------------
def test_jobs_that_left_the_queue_are_concluded_from_sacct(
    daemon_factory: MakeDaemon,
    accounted_cluster: AccountedCluster,
    counting_squeue: CountingBin,
    tmp_path: Path,
) -> None:
    """sacct: yes -- success, exit 3 and a cancel by root, all missed in squeue, come
    out as sacct tells them; only sacct knows who cancelled."""
    cluster = accounted_cluster.cluster
    d = start_daemon(daemon_factory, cluster, counting_squeue, "yes")
    go = tmp_path / "go"
    wf = d.submit(
        workflow(
            "from-sacct",
            go,
            {"ok": "echo fine", "bad": "echo failing; exit 3", "ext": "sleep 300"},
        )
    )
    ids = slurm_ids(d, wf)
    wait_running(d, wf, len(ids))
    with paused(d):
        # cancelled by someone else (root, uid 0) while ccd is not looking
        assert cluster.run("scancel", ids["ext"]).returncode == 0
        go.touch()
        ended_unseen(cluster, list(ids.values()), accounted_cluster)
        assert accounted_cluster.sacct(list(ids.values())) == {
            ids["ok"]: "COMPLETED",
            ids["bad"]: "FAILED",
            ids["ext"]: "CANCELLED by 0",
        }
    status = d.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert (jobs["ok"]["state"], jobs["ok"]["exit_code"]) == ("succeeded", 0), jobs["ok"]
    assert (jobs["bad"]["state"], jobs["bad"]["exit_code"]) == ("failed", 3), jobs["bad"]
    # who cancelled it is only known to accounting: squeue and the log do not say
    assert (jobs["ext"]["state"], jobs["ext"]["reason"]) == ("cancelled", "cancelled by 0")
    assert d.log_of(wf, "ok").strip() == "fine"
    # the jobs ccd missed were asked about, all at once
    asked = sacct_ids(counting_squeue)
    assert asked and sorted(asked[0]) == sorted(ids.values()), asked


def test_sacct_is_one_call_per_poll_for_many_jobs(
    daemon_factory: MakeDaemon,
    accounted_cluster: AccountedCluster,
    counting_squeue: CountingBin,
    tmp_path: Path,
) -> None:
    """24 jobs leaving the queue before the same poll: one sacct call, not 24."""
    cluster = accounted_cluster.cluster
    d = start_daemon(daemon_factory, cluster, counting_squeue, "yes")
    go = tmp_path / "go"
    # 24 jobs on 8 CPUs: some run, the others wait; odd ones exit 3
    jobs = {f"j{i}": f"echo {i}; exit {3 * (i % 2)}" for i in range(24)}
    wf = d.submit(workflow("many", go, jobs))
    ids = slurm_ids(d, wf)
    wait_running(d, wf, 8)
    with paused(d):
        go.touch()
        ended_unseen(cluster, list(ids.values()), accounted_cluster)
        polls_before = len(counting_squeue.calls("squeue"))
    status = d.wait_final(wf)
    for i in range(24):
        job = next(j for j in status["jobs"] if j["name"] == f"j{i}")
        expected = ("failed", 3) if i % 2 else ("succeeded", 0)
        assert (job["state"], job["exit_code"]) == expected, job
    # every job left the queue before the same poll: one sacct for all 24, not 24
    asked = sacct_ids(counting_squeue)
    assert len(asked) == 1, asked
    assert sorted(asked[0]) == sorted(ids.values())
    # and that was the first poll after the pause, not a later one
    assert len(counting_squeue.calls("squeue")) - polls_before <= 2


# -- sacct: auto -------------------------------------------------------------------------
def test_auto_uses_sacct_where_the_cluster_has_accounting(
    daemon_factory: MakeDaemon,
    accounted_cluster: AccountedCluster,
    counting_squeue: CountingBin,
    tmp_path: Path,
) -> None:
    """sacct: auto on a cluster with accounting: sacct is used, and keeps being used."""
    cluster = accounted_cluster.cluster
    d = start_daemon(daemon_factory, cluster, counting_squeue, "auto")
    for round_ in (1, 2):  # auto keeps using sacct once it has worked
        go = tmp_path / f"go{round_}"
        wf = d.submit(workflow(f"auto{round_}", go, {"ok": "true", "ext": "sleep 300"}))
        ids = slurm_ids(d, wf)
        wait_running(d, wf, len(ids))
        with paused(d):
            assert cluster.run("scancel", ids["ext"]).returncode == 0
            go.touch()
            ended_unseen(cluster, list(ids.values()), accounted_cluster)
        jobs = {j["name"]: j for j in d.wait_final(wf)["jobs"]}
        assert jobs["ok"]["state"] == "succeeded", jobs["ok"]
        assert (jobs["ext"]["state"], jobs["ext"]["reason"]) == ("cancelled", "cancelled by 0")
        assert ids["ext"] in sacct_ids(counting_squeue)[-1]
    assert len(counting_squeue.calls("sacct")) == 2


def test_auto_falls_back_to_exit_files_without_accounting(
    daemon_factory: MakeDaemon,
    plain_short_cluster: SlurmCluster,
    counting_squeue: CountingBin,
    tmp_path: Path,
) -> None:
    """sacct: auto without accounting: one failing sacct, then the exit files decide,
    silently, and sacct is not asked again."""
    cluster = plain_short_cluster
    assert cluster.run("sacct", "-n", "-X").returncode != 0  # no accounting here
    d = start_daemon(daemon_factory, cluster, counting_squeue, "auto")
    workflows = []
    for round_ in (1, 2):
        go = tmp_path / f"go{round_}"
        wf = d.submit(workflow(f"plain{round_}", go, {"ok": "echo fine", "bad": "exit 3"}))
        workflows.append(wf)
        ids = slurm_ids(d, wf)
        wait_running(d, wf, len(ids))
        with paused(d):
            go.touch()
            ended_unseen(cluster, list(ids.values()), None)
        jobs = {j["name"]: j for j in d.wait_final(wf)["jobs"]}
        assert (jobs["ok"]["state"], jobs["ok"]["exit_code"]) == ("succeeded", 0), jobs["ok"]
        assert (jobs["bad"]["state"], jobs["bad"]["exit_code"]) == ("failed", 3), jobs["bad"]
        # one failing sacct, in the first round; never asked again
        assert len(counting_squeue.calls("sacct")) == 1, counting_squeue.calls("sacct")
    # a failing sacct under `auto` is not a problem worth a warning on the jobs
    warnings = [e for wf in workflows for e in d.events(wf) if e["kind"] == "job.warning"]
    assert warnings == []


def test_a_job_accounting_still_calls_running_is_concluded_from_its_exit_file(
    daemon_factory: MakeDaemon,
    accounted_cluster: AccountedCluster,
    counting_squeue: CountingBin,
    tmp_path: Path,
) -> None:
    """A "runaway job" (`sacctmgr show runawayjobs`): gone from the controller, but its
    end never reached the database, so sacct says RUNNING for ever.  ccd must not wait
    for ever: after a few polls the wrapper's exit file decides."""
    cluster = accounted_cluster.cluster
    d = start_daemon(daemon_factory, cluster, counting_squeue, "yes")
    go = tmp_path / "go"
    wf = d.submit(workflow("runaway", go, {"bad": "echo failing; exit 3"}))
    ids = slurm_ids(d, wf)
    wait_running(d, wf, 1)
    with paused(d):
        go.touch()
        # once slurmctld has forgotten the job (it rewrites the record until then) ...
        ended_unseen(cluster, [ids["bad"]], accounted_cluster)
        # ... the database loses its end, as for a runaway job: RUNNING (1), no end time
        table = f"{DATABASE}.{accounted_cluster.name}_job_table"
        update = accounted_cluster.store.sql(
            f"UPDATE {table} SET state=1, time_end=0 WHERE id_job={int(ids['bad'])}"
        )
        assert update.returncode == 0, update.stderr
        assert accounted_cluster.sacct([ids["bad"]]) == {ids["bad"]: "RUNNING"}
    status = wait_final_within(d, wf, 30)
    job = status["jobs"][0]
    assert (job["state"], job["exit_code"]) == ("failed", 3), job
    # accounting was asked on each poll of the grace, not once and never again
    assert 2 <= len(sacct_ids(counting_squeue)) <= GRACE_POLLS, counting_squeue.calls("sacct")


def test_jobs_that_ended_while_the_daemon_was_down_are_concluded_from_sacct(
    daemon_factory: MakeDaemon,
    accounted_cluster: AccountedCluster,
    counting_squeue: CountingBin,
    tmp_path: Path,
) -> None:
    """The usual way ccd misses a job's end: it was stopped (an upgrade, a reboot of the
    machine it runs on) and restarted after the cluster had forgotten the job."""
    cluster = accounted_cluster.cluster
    d = start_daemon(daemon_factory, cluster, counting_squeue, "yes")
    go = tmp_path / "go"
    jobs = {f"j{i}": f"exit {i}" for i in range(4)} | {"ext": "sleep 300"}
    wf = d.submit(workflow("restart", go, jobs))
    ids = slurm_ids(d, wf)
    wait_running(d, wf, len(ids))
    d.stop()
    assert cluster.run("scancel", ids["ext"]).returncode == 0
    go.touch()
    ended_unseen(cluster, list(ids.values()), accounted_cluster)
    d.start()
    status = d.wait_final(wf)
    got = {j["name"]: (j["state"], j["exit_code"], j["reason"]) for j in status["jobs"]}
    assert got["j0"][:2] == ("succeeded", 0), got
    for i in (1, 2, 3):
        assert got[f"j{i}"][:2] == ("failed", i), got
    assert (got["ext"][0], got["ext"][2]) == ("cancelled", "cancelled by 0"), got
    # the adopted jobs were asked about together, in the first poll after the restart
    asked = sacct_ids(counting_squeue)
    assert len(asked) == 1 and sorted(asked[0]) == sorted(ids.values()), asked
