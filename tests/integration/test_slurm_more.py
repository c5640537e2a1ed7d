"""Slurm beyond the basics, against the real cluster of tests/slurm.py: a cluster
reached over SSH as a plain user, job arrays, requeue, node failure, a 300-job
cancel, and a cancel that did not come from ccd."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProc
from tests.integration.test_ssh import host_yaml
from tests.integration.test_unknown import is_state, rewind_to_before, wait_event_within
from tests.slurm import CountingBin, SlurmCluster, open_cluster
from tests.sshd import SshdFactory

POLL = 0.5
MakeDaemon = Callable[..., DaemonProc]
Event = dict[str, Any]


def states_of(d: DaemonProc, wf: str, job: str) -> list[str]:
    return [
        e["data"]["state"] for e in d.events(wf) if e["kind"] == "job.state" and e["job"] == job
    ]


def became(state: str, job: str | None = None, reason: str = "") -> Callable[[Event], bool]:
    """A predicate: a job (or `job`) entered `state`, with `reason` in its reason."""

    def test(e: Event) -> bool:
        return (
            e["kind"] == "job.state"
            and e["data"]["state"] == state
            and (job is None or e["job"] == job)
            and reason in (e["data"].get("reason") or "")
        )

    return test


def handle_of(d: DaemonProc, wf: str, job: str) -> dict[str, Any]:
    jobs = {j["name"]: j for j in d.status(wf)["jobs"]}
    handle: dict[str, Any] = jobs[job]["handle"]
    return handle


@pytest.fixture
def counted(
    daemon_factory: MakeDaemon, slurm_cluster: SlurmCluster, counting_squeue: CountingBin
) -> tuple[DaemonProc, CountingBin]:
    """A daemon whose Slurm commands go through the counting wrappers."""
    d = daemon_factory(
        f"kill_grace: 2\nhosts:\n  localhost:\n    slurm: {{poll_interval: {POLL}}}\n"
    )
    d.env.update(slurm_cluster.env)
    d.env["PATH"] = f"{counting_squeue.bin_dir}:{os.environ['PATH']}"
    d.start()
    return d, counting_squeue


# -- over SSH ----------------------------------------------------------------------------
def test_slurm_over_ssh_as_a_plain_user_next_to_local_and_ssh_jobs(
    daemon_factory: MakeDaemon,
    slurm_cluster: SlurmCluster,
    sshd_factory: SshdFactory,
    tmp_path: Path,
) -> None:
    # the login node's sshd gives sessions the cluster's SLURM_CONF, as a site's
    # /etc/slurm would
    host = sshd_factory(
        max_sessions=10, extra_options={"SetEnv": f"SLURM_CONF={slurm_cluster.conf}"}
    )
    script = tmp_path / "step.py"
    script.write_text("import os\nprint('script on', os.environ['SLURM_JOB_ID'])\n")
    config_file = tmp_path / "ssh_config"
    config_file.write_text("")
    d = daemon_factory(
        f"ssh_config: {config_file}\nkill_grace: 2\nhosts:\n"
        + host_yaml("login", host, slurm={"poll_interval": POLL})
    )
    d.env.update(slurm_cluster.env)
    d.start()
    wf = d.submit(
        textwrap.dedent(f"""
        name: mixed
        jobs:
          here: {{run: 'echo "::ccd output n=7"'}}
          remote: {{host: login, needs: [here], run: 'echo "ssh got $N"', env: {{N: "x"}}}}
          batch:
            host: login
            executor: slurm
            needs: [here]
            run: 'echo "user=$(id -un) job=$SLURM_JOB_ID"; echo "::ccd progress=40 msg=\\"over ssh\\""'
          script:
            host: login
            executor: slurm
            needs: [batch]
            script: {script}
          local_batch: {{executor: slurm, needs: [remote], run: 'echo on the login node'}}
          gone: {{host: login, executor: slurm, run: 'sleep 300'}}
    """)
    )
    d.wait_for_event(
        wf,
        became("running", "gone"),
    )
    assert handle_of(d, wf, "gone")["run_dir"].startswith("/home/ccdtest/.ccd/runs/")
    d.client.call("POST", f"/v1/workflows/{wf}/jobs/gone/cancel")
    status = d.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["gone"]["state"] == "cancelled"
    for name in ("here", "remote", "batch", "script", "local_batch"):
        assert jobs[name]["state"] == "succeeded", jobs[name]
    batch = jobs["batch"]
    assert (batch["progress"], batch["message"]) == (40, "over ssh")
    slurm_id = batch["handle"]["slurm_id"]
    assert d.log_of(wf, "batch").startswith(f"user=ccdtest job={slurm_id}\n")
    assert (
        d.log_of(wf, "script").strip().endswith("script on " + jobs["script"]["handle"]["slurm_id"])
    )
    # Slurm itself ran it as the plain user
    assert slurm_cluster.job_info(slurm_id)["UserId"].startswith("ccdtest(")
    assert states_of(d, wf, "batch")[0] == "queued"


# -- arrays ------------------------------------------------------------------------------
def test_array_of_50_is_one_sbatch_and_each_element_is_tracked_and_retried(
    counted: tuple[DaemonProc, CountingBin],
) -> None:
    d, calls = counted
    wf = d.submit(
        textwrap.dedent("""
        name: sweep
        jobs:
          sweep:
            executor: slurm
            array: 50
            retries: 1
            retry_delay: 0
            # element 7 fails on its first attempt only
            run: |
              echo "index=$CCD_ARRAY_INDEX value=$CCD_ARRAY_VALUE attempt=$CCD_ATTEMPT"
              if [ "$CCD_ARRAY_INDEX" = 7 ] && [ "$CCD_ATTEMPT" = 1 ]; then exit 5; fi
          values:
            executor: slurm
            array: [low, mid, high]
            run: 'echo "value=$CCD_ARRAY_VALUE"'
          merge: {needs: [sweep, values], run: 'echo merged'}
    """)
    )
    status = d.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "succeeded", [
        (j["name"], j["state"], j["reason"]) for j in jobs.values() if j["state"] != "succeeded"
    ]
    assert len(jobs) == 50 + 3 + 1
    for i in range(50):
        element = jobs[f"sweep[{i}]"]
        attempt = 2 if i == 7 else 1
        assert (element["state"], element["attempt"]) == ("succeeded", attempt), element
        log = d.log_of(wf, f"sweep[{i}]")
        assert f"index={i} value={i} attempt={attempt}" in log
    assert [d.log_of(wf, f"values[{i}]").strip() for i in range(3)] == [
        "value=low",
        "value=mid",
        "value=high",
    ]
    # the first attempts of all 50 went to Slurm as one array job
    first_ids = {jobs[f"sweep[{i}]"]["handle"]["slurm_id"] for i in range(50) if i != 7}
    assert len({slurm_id.split("_")[0] for slurm_id in first_ids}) == 1
    sbatches = calls.calls("sbatch")
    # sweep (one array), values (one array), the retry of sweep[7] (a single job)
    assert len(sbatches) == 3, sbatches
    retried = jobs["sweep[7]"]["handle"]["slurm_id"]
    assert "_" not in retried  # retried on its own, not as a new array
    assert states_of(d, wf, "sweep[7]").count("failed") == 0  # a retried attempt is queued again
    assert jobs["merge"]["state"] == "succeeded"


# -- requeue -----------------------------------------------------------------------------
def test_requeued_job_goes_back_to_queued_under_the_same_id(
    counted: tuple[DaemonProc, CountingBin], slurm_cluster: SlurmCluster
) -> None:
    d, calls = counted
    wf = d.submit(
        "name: requeue\njobs:\n"
        "  j: {executor: slurm, run: 'echo \"run $SLURM_RESTART_COUNT\"; sleep 3'}\n"
    )
    running = d.wait_for_event(wf, became("running"))
    slurm_id = handle_of(d, wf, "j")["slurm_id"]
    assert slurm_cluster.run("scontrol", "requeue", slurm_id).returncode == 0
    d.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state"
            and e["data"]["state"] == "queued"
            and e["seq"] > running["seq"]
        ),
    )
    # Slurm holds a requeued job back for ~2 min (BeginTime): let it go in 5 s.  Not at
    # once: slurmd refuses to launch a job id it killed a moment ago ("Job N already
    # killed, do not launch batch job"), and the job would end FAILED.
    slurm_cluster.run("scontrol", "update", f"JobId={slurm_id}", "StartTime=now+5")
    job = d.wait_final(wf)["jobs"][0]
    assert job["state"] == "succeeded", job
    assert job["handle"]["slurm_id"] == slurm_id
    assert len(calls.calls("sbatch")) == 1  # nothing submitted twice
    log = d.log_of(wf, "j")
    assert "DUE TO JOB REQUEUE" in log and "run 1" in log
    assert states_of(d, wf, "j").count("running") == 2


# -- node failure, with retry_on ---------------------------------------------------------
@pytest.fixture
def node_back_up(slurm_cluster: SlurmCluster) -> Iterator[None]:
    yield
    slurm_cluster.run("scontrol", "update", "NodeName=localhost", "State=RESUME")


def test_node_failure_is_told_apart_and_retried_by_retry_on(
    counted: tuple[DaemonProc, CountingBin], slurm_cluster: SlurmCluster, node_back_up: None
) -> None:
    d, _ = counted
    wf = d.submit(
        textwrap.dedent("""
        name: nodefail
        jobs:
          j:
            executor: slurm
            retries: 1
            retry_delay: 0
            retry_on: [node_fail]
            resources: {extra: [--no-requeue]}
            run: 'echo "attempt $CCD_ATTEMPT"; sleep 3'
    """)
    )
    d.wait_for_event(wf, became("running"))
    down = slurm_cluster.run(
        "scontrol", "update", "NodeName=localhost", "State=DOWN", "Reason=ccd-test"
    )
    assert down.returncode == 0, down.stderr
    retry = d.wait_for_event(
        wf,
        became("queued", reason="retry 1/1"),
    )
    assert "node_fail" in retry["data"]["reason"], retry
    slurm_cluster.run("scontrol", "update", "NodeName=localhost", "State=RESUME")
    job = d.wait_final(wf)["jobs"][0]
    assert (job["state"], job["attempt"]) == ("succeeded", 2), job


# -- cancel ------------------------------------------------------------------------------
def test_cancelling_300_jobs_takes_at_most_3_scancel_calls(
    counted: tuple[DaemonProc, CountingBin],
) -> None:
    d, calls = counted
    jobs = "\n".join(f"  s{i}: {{executor: slurm, run: 'sleep 300'}}" for i in range(300))
    wf = d.submit(f"name: big-cancel\njobs:\n{jobs}\n")

    def all_submitted(_: dict[str, Any]) -> bool:
        return len(calls.calls("sbatch")) >= 300

    d.wait_for_event(wf, all_submitted)
    d.client.call("POST", f"/v1/workflows/{wf}/cancel")
    status = d.wait_final(wf)
    assert {j["state"] for j in status["jobs"]} == {"cancelled"}
    scancels = calls.calls("scancel")
    assert 1 <= len(scancels) <= 3, scancels
    cancelled_ids = {i for line in scancels for i in line.split()[1:]}
    assert {j["handle"]["slurm_id"] for j in status["jobs"]} <= cancelled_ids


def test_cancel_by_someone_else_is_recorded_as_not_by_ccd(
    counted: tuple[DaemonProc, CountingBin], slurm_cluster: SlurmCluster
) -> None:
    d, _ = counted
    wf = d.submit("name: ext\njobs:\n  j: {executor: slurm, run: 'echo up; sleep 300'}\n")
    d.wait_for_event(wf, became("running"))
    slurm_cluster.run("scancel", handle_of(d, wf, "j")["slurm_id"])
    job = d.wait_final(wf)["jobs"][0]
    assert job["state"] == "cancelled"
    assert job["reason"].startswith("cancelled in Slurm, not by ccd")
    assert re.search(r"\*\*\* JOB \d+ ON \S+ CANCELLED AT", job["reason"])


# -- crashes ------------------------------------------------------------------------------
def test_daemon_killed_while_submitting_and_while_running_loses_and_repeats_nothing(
    counted: tuple[DaemonProc, CountingBin], tmp_path: Path
) -> None:
    d, calls = counted
    ledger = tmp_path / "ledger"
    jobs = "\n".join(
        f"  j{i}: {{executor: slurm, run: 'echo \"$CCD_JOB $CCD_ATTEMPT\" >> {ledger}; sleep 2'}}"
        for i in range(20)
    )
    wf = d.submit(
        f"name: crashy\njobs:\n{jobs}\n  arr: {{executor: slurm, array: 10, run: 'echo \"$CCD_JOB\" >> {ledger}; sleep 2'}}\n"
    )
    # first kill: in the middle of the submissions
    d.wait_for_event(wf, lambda _: len(calls.calls("sbatch")) >= 5)
    d.stop(signal.SIGKILL)
    d.start()
    # second kill: while jobs run in Slurm
    d.wait_for_event(wf, became("running"))
    d.stop(signal.SIGKILL)
    d.start()
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", [
        (j["name"], j["state"], j["reason"]) for j in status["jobs"] if j["state"] != "succeeded"
    ]
    lines = ledger.read_text().splitlines()
    expected = [f"j{i} 1" for i in range(20)] + [f"arr[{i}]" for i in range(10)]
    assert sorted(lines) == sorted(expected)  # each ran once: none lost, none twice
    # and none was submitted twice: 20 single jobs plus the array's sbatch calls
    assert len(calls.calls("sbatch")) <= 20 + 10
    assert all(j["attempt"] == 1 for j in status["jobs"])


def test_cancel_while_the_controller_is_down_says_which_jobs_may_be_alive(
    counted: tuple[DaemonProc, CountingBin], slurm_cluster: SlurmCluster
) -> None:
    d, calls = counted
    wf = d.submit("name: stuck\njobs:\n  j: {executor: slurm, run: 'sleep 300'}\n")
    d.wait_for_event(wf, became("running"))
    slurm_id = handle_of(d, wf, "j")["slurm_id"]
    slurm_cluster.stop_controller()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ccd.cli", "cancel", wf, "--wait", "20"],
            env={**os.environ, **d.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        slurm_cluster.start_controller()
    assert result.returncode == 1, result
    assert "may still be alive" in result.stderr and slurm_id in result.stderr, result.stderr
    # once the controller answers, the retried scancel ends the job
    job = d.wait_final(wf)["jobs"][0]
    assert job["state"] == "cancelled"
    assert slurm_cluster.wait_state(slurm_id, "CANCELLED") == "CANCELLED"
    assert len(calls.calls("scancel")) >= 2


# -- memory ---------------------------------------------------------------------------------
#: a cluster with site limits: --mem enforced the way many sites without cgroups do
#: (slurmstepd polls each job's memory every second and kills it past its limit), and
#: job arrays of at most 8 tasks
SITE_LIMITS = (
    "MaxArraySize=8",
    "SelectTypeParameters=CR_Core_Memory",
    "DefMemPerCPU=200",
    "JobAcctGatherType=jobacct_gather/linux",
    "JobAcctGatherFrequency=1",
    "JobAcctGatherParams=OverMemoryKill",
)


@pytest.fixture(scope="module")
def limits_cluster() -> Iterator[SlurmCluster]:
    cluster = open_cluster(extra_conf=SITE_LIMITS)
    yield cluster
    cluster.shutdown()


def test_job_killed_for_its_memory_is_oom_and_retried_by_retry_on(
    daemon_factory: MakeDaemon, limits_cluster: SlurmCluster, tmp_path: Path
) -> None:
    d = daemon_factory(f"hosts:\n  localhost:\n    slurm: {{poll_interval: {POLL}}}\n")
    d.env.update(limits_cluster.env)
    d.start()
    hog = tmp_path / "hog.py"
    hog.write_text(
        "import os, time\n"
        "if os.environ['CCD_ATTEMPT'] == '1':\n"
        "    blocks = [bytearray(20 << 20) for _ in range(20)]\n"
        "    time.sleep(30)\n"
        "print('fits now')\n"
    )
    wf = d.submit(
        textwrap.dedent(f"""
        name: oom
        jobs:
          hog:
            executor: slurm
            resources: {{mem: 50M}}
            retries: 1
            retry_delay: 0
            retry_on: [oom]
            script: {hog}
    """)
    )
    retry = d.wait_for_event(
        wf,
        became("queued", reason="retry 1/1"),
    )
    assert retry["data"]["reason"].startswith("oom;"), retry
    job = d.wait_final(wf)["jobs"][0]
    assert (job["state"], job["attempt"]) == ("succeeded", 2), job
    assert "Exceeded job memory limit" in d.log_of(wf, "hog", attempt=1)
    assert d.log_of(wf, "hog").strip() == "fits now"


def test_controller_down_for_a_minute_fails_nothing_and_polls_back_off(
    counted: tuple[DaemonProc, CountingBin], slurm_cluster: SlurmCluster
) -> None:
    d, calls = counted
    jobs = "\n".join(
        f"  c{i}: {{executor: slurm, run: 'sleep 3; echo done {i}'}}" for i in range(12)
    )
    wf = d.submit(f"name: minute\njobs:\n{jobs}\n")
    d.wait_for_event(wf, became("running"))
    slurm_cluster.stop_controller()
    before = len(calls.calls("squeue"))
    try:
        d.wait_for_event(wf, lambda e: e["kind"] == "job.warning")
        # the outage itself, not a wait for a state: jobs finish on the node meanwhile
        time.sleep(60)
        during = len(calls.calls("squeue")) - before
    finally:
        slurm_cluster.start_controller()
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    events = d.events(wf)
    assert not [e for e in events if e["kind"] == "job.state" and e["data"]["state"] == "failed"]
    warnings = [e for e in events if e["kind"] == "job.warning"]
    # one warning per job for the whole outage, not one per failed poll
    assert len(warnings) <= 12 and {w["job"] for w in warnings} <= {f"c{i}" for i in range(12)}
    # polls back off while squeue fails: 0.5 s doubling to 60 s is at most ~8 in a minute
    assert during <= 9, during


def test_array_larger_than_max_array_size_is_split(
    daemon_factory: MakeDaemon, limits_cluster: SlurmCluster, counting_squeue: CountingBin
) -> None:
    d = daemon_factory(f"hosts:\n  localhost:\n    slurm: {{poll_interval: {POLL}}}\n")
    d.env.update(limits_cluster.env)
    d.env["PATH"] = f"{counting_squeue.bin_dir}:{os.environ['PATH']}"
    d.start()
    wf = d.submit(
        "name: split\njobs:\n  a: {executor: slurm, array: 20, run: 'echo $CCD_ARRAY_INDEX'}\n"
    )
    status = d.wait_final(wf)
    assert status["state"] == "succeeded"
    assert [d.log_of(wf, f"a[{i}]").strip() for i in range(20)] == [str(i) for i in range(20)]
    # MaxArraySize=8: task ids 0-7, so 20 elements go as arrays of 8, 8 and 4
    sbatches = counting_squeue.calls("sbatch")
    assert len(sbatches) == 3, sbatches
    arrays = {j["handle"]["slurm_id"].split("_")[0] for j in status["jobs"]}
    assert len(arrays) == 3


def test_recovered_submission_is_unknown_while_the_controller_is_down(
    counted: tuple[DaemonProc, CountingBin], slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    d, calls = counted
    gate = tmp_path / "gate"
    wf = d.submit(
        "name: unsure\njobs:\n"
        f"  j: {{executor: slurm, run: 'while [ ! -e {gate} ]; do sleep 0.1; done; echo ran'}}\n"
    )
    launched = d.wait_for_event(wf, lambda e: e["kind"] == "job.state" and e["data"].get("handle"))
    # the daemon died before committing the submission, and the controller went down
    d.stop(signal.SIGKILL)
    slurm_cluster.stop_controller()
    try:
        rewind_to_before(d, wf, "j", launched["seq"])
        d.start()
        unknown = wait_event_within(d, wf, is_state("unknown"))
        assert "attempt 1" in unknown["data"]["reason"]
    finally:
        slurm_cluster.start_controller()
    adopted = wait_event_within(
        d, wf, lambda e: e["kind"] == "job.warning" and "adopted" in e["data"]["message"]
    )
    assert "instead of starting it again" in adopted["data"]["message"]
    gate.touch()
    job = d.wait_final(wf)["jobs"][0]
    assert (job["state"], job["attempt"]) == ("succeeded", 1)
    assert len(calls.calls("sbatch")) == 1
    assert d.log_of(wf, "j").strip() == "ran"
