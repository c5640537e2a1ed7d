"""Slurm jobs through a real daemon against the real single-node cluster (tests/slurm.py)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProc

POLL = 0.5


@pytest.fixture
def slurm_daemon(
    daemon_factory: Callable[..., DaemonProc], slurm_cluster: Any, tmp_path: Path
) -> DaemonProc:
    d = daemon_factory(
        f"kill_grace: 2\nhosts:\n  localhost:\n    slurm: {{poll_interval: {POLL}}}\n"
    )
    d.env.update(slurm_cluster.env)
    d.start()
    return d


def test_success_failure_and_markers(slurm_daemon: DaemonProc) -> None:
    wf = slurm_daemon.submit(
        textwrap.dedent("""
        name: batch
        defaults: {executor: slurm}
        jobs:
          ok:
            # runs for 3 polls, so ccd sees it RUNNING in Slurm
            run: 'echo "::ccd progress=50 msg=\\"in slurm\\""; echo "job $SLURM_JOB_ID"; sleep 1.5'
          bad: {run: 'echo failing; exit 3'}
          after: {needs: [ok], run: 'echo after'}
    """)
    )
    status = slurm_daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["ok"]["state"] == "succeeded", jobs["ok"]
    assert (jobs["ok"]["progress"], jobs["ok"]["message"]) == (50, "in slurm")
    assert slurm_daemon.log_of(wf, "ok").strip().endswith(f"job {jobs['ok']['handle']['slurm_id']}")
    assert (jobs["bad"]["state"], jobs["bad"]["exit_code"]) == ("failed", 3)
    assert jobs["after"]["state"] == "succeeded"
    assert jobs["ok"]["handle"]["name"] == f"ccd.{wf}.ok.1"
    states = [
        e["data"]["state"]
        for e in slurm_daemon.events(wf)
        if e["kind"] == "job.state" and e["job"] == "ok"
    ]
    assert states[0] == "queued" and states[-1] == "succeeded" and "running" in states


def test_cancel_uses_scancel_and_records_cancelled(slurm_daemon: DaemonProc) -> None:
    jobs = "\n".join(f"  s{i}: {{executor: slurm, run: 'sleep 300'}}" for i in range(5))
    wf = slurm_daemon.submit(f"name: cancel-batch\njobs:\n{jobs}\n")
    slurm_daemon.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running"
    )
    slurm_daemon.client.call("POST", f"/v1/workflows/{wf}/cancel")
    status = slurm_daemon.wait_final(wf)
    assert status["state"] == "cancelled"
    assert {j["state"] for j in status["jobs"]} == {"cancelled"}


def test_invalid_partition_fails_with_sbatch_message(slurm_daemon: DaemonProc) -> None:
    wf = slurm_daemon.submit(
        "name: nopart\njobs:\n  j: {executor: slurm, run: 'true', resources: {partition: nope}}\n"
    )
    job = slurm_daemon.wait_final(wf)["jobs"][0]
    assert job["state"] == "failed"
    assert "sbatch refused" in job["reason"] and "partition" in job["reason"].lower()


def test_one_squeue_per_poll_for_many_jobs(
    daemon_factory: Callable[..., DaemonProc],
    slurm_cluster: Any,
    tmp_path: Path,
    counting_squeue: Any,
) -> None:
    bin_dir, calls = counting_squeue
    d = daemon_factory(f"hosts:\n  localhost:\n    slurm: {{poll_interval: {POLL}}}\n")
    d.env.update(slurm_cluster.env)
    d.env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    d.start()
    jobs = "\n".join(f"  j{i}: {{executor: slurm, run: 'sleep 1'}}" for i in range(100))
    wf = d.submit(f"name: hundred\njobs:\n{jobs}\n")
    status = d.wait_final(wf)
    failed = {j["name"]: j["reason"] for j in status["jobs"] if j["state"] != "succeeded"}
    assert status["state"] == "succeeded", failed
    lines = Path(calls).read_text().splitlines()
    squeues = [line for line in lines if line.startswith("squeue")]
    sbatches = [line for line in lines if line.startswith("sbatch")]
    assert len(sbatches) == 100
    elapsed = status["ended"] - status["created"]
    # one squeue per poll interval, however many jobs: never one per job
    assert len(squeues) <= elapsed / POLL + 2, (len(squeues), elapsed)


def test_controller_down_for_a_while_fails_nothing(
    slurm_daemon: DaemonProc, slurm_cluster: Any
) -> None:
    jobs = "\n".join(
        f"  c{i}: {{executor: slurm, run: 'sleep 4; echo done {i}'}}" for i in range(3)
    )
    wf = slurm_daemon.submit(f"name: ctld-down\njobs:\n{jobs}\n")
    slurm_daemon.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running"
    )
    slurm_cluster.stop_controller()
    try:
        warning = slurm_daemon.wait_for_event(wf, lambda e: e["kind"] == "job.warning")
        assert "squeue failed" in warning["data"]["message"]
    finally:
        slurm_cluster.start_controller()
    status = slurm_daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert slurm_daemon.log_of(wf, "c2").strip().endswith("done 2")
    failed = [
        e
        for e in slurm_daemon.events(wf)
        if e["kind"] == "job.state" and e["data"]["state"] == "failed"
    ]
    assert failed == []


def test_pending_job_shows_slurms_reason(slurm_daemon: DaemonProc, tmp_path: Path) -> None:
    # the first job takes all 8 CPUs of the node until the test opens its gate; the
    # second waits for Resources meanwhile (a fixed `sleep` could end before a poll)
    gate = tmp_path / "gate"
    wf = slurm_daemon.submit(
        textwrap.dedent(f"""
        name: pending
        jobs:
          big: {{executor: slurm, run: 'while [ ! -e {gate} ]; do sleep 0.1; done',
                 resources: {{cpus: 8}}}}
          small: {{executor: slurm, run: 'true', resources: {{cpus: 1, extra: ["--begin=now+1"]}}}}
    """)
    )
    try:
        event = slurm_daemon.wait_for_event(
            wf,
            lambda e: (
                e["kind"] == "job.state"
                and e["job"] == "small"
                and e["data"]["state"] == "queued"
                and e["data"].get("reason") not in (None, "submitted")
            ),
        )
    finally:
        gate.touch()
    assert event["data"]["reason"] in ("Resources", "Priority", "BeginTime")
    assert slurm_daemon.wait_final(wf)["state"] == "succeeded"


def test_timeout_becomes_slurm_time_limit_and_timed_out(slurm_daemon: DaemonProc) -> None:
    # Slurm counts limits in whole minutes and checks them on a 30 s tick: this
    # takes 60-90 s, and is the real path (the engine's own timer is off for Slurm).
    wf = slurm_daemon.submit(
        "name: tl\njobs:\n  slow: {executor: slurm, run: 'sleep 300', timeout: 1s}\n"
    )
    job = slurm_daemon.wait_final(wf)["jobs"][0]
    assert (job["state"], job["reason"]) == ("timed_out", "timeout")
    batch = Path(job["handle"]["run_dir"]) / "batch.sh"
    assert "#SBATCH --time=0-00:01:00" in batch.read_text()
