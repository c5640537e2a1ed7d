"""The real single-node Slurm of tests/slurm.py runs real jobs the way the executor needs.

The time-limit job is submitted first (by a module fixture) and checked last: Slurm
counts time limits in whole minutes (a 1 s limit is 1 min) and slurmctld checks them
every 30 s (a fixed period, counted from its start), so TIMEOUT comes 60-90 s after the
job starts; the other tests run meanwhile.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm import CountingBin, SlurmCluster, open_cluster, stop_leftovers
from tests.sshd import ensure_user, is_gone

pytest_plugins = ["tests.slurm"]

#: Slurm's time limit is at least a minute, and slurmctld checks limits every 30 s
TIMEOUT_DEADLINE = 150.0


def wait_for_text(path: Path, text: str, timeout: float = 30.0) -> str:
    """Poll a job's output file (it appears when the job starts) until it holds `text`."""
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {path} after {timeout} s: {content!r}")
        time.sleep(0.02)  # polling a file another process writes, with a deadline


@pytest.fixture(scope="module", autouse=True)
def time_limit_job(slurm_cluster: SlurmCluster) -> Iterator[str]:
    """`--time=00:00:01` on `sleep 120`, submitted before the other tests run."""
    job = slurm_cluster.submit("--time=00:00:01", "-o", "/dev/null", "--wrap", "sleep 120")
    yield job
    slurm_cluster.run("scancel", job)


def test_echo_completes_with_output(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "hi.out"
    job = slurm_cluster.submit("-o", str(out), "--wrap", "echo hi")
    assert job.isdigit()
    assert slurm_cluster.wait_state(job) == "COMPLETED"
    assert out.read_text() == "hi\n"
    info = slurm_cluster.job_info(job)
    assert (info["JobState"], info["ExitCode"], info["Partition"]) == ("COMPLETED", "0:0", "debug")
    assert {"id": job, "state": "COMPLETED", "user": "root", "name": "wrap"} in (
        slurm_cluster.squeue_all()
    )


def test_exit_7_is_failed_with_exit_code(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job = slurm_cluster.submit("-o", str(tmp_path / "out"), "--wrap", "exit 7")
    assert slurm_cluster.wait_state(job) == "FAILED"
    show = slurm_cluster.run("scontrol", "show", "job", job, check=True).stdout
    assert "JobState=FAILED" in show and "ExitCode=7:0" in show
    assert slurm_cluster.job_info(job)["Reason"] == "NonZeroExitCode"


def test_scancel_gives_cancelled(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = slurm_cluster.submit("-o", str(out), "--wrap", "echo started; sleep 300")
    slurm_cluster.wait_state(job, "RUNNING")
    wait_for_text(out, "started")
    slurm_cluster.run("scancel", job, check=True)
    assert slurm_cluster.wait_state(job) == "CANCELLED"
    info = slurm_cluster.job_info(job)
    assert (info["JobState"], info["ExitCode"]) == ("CANCELLED", "0:15")
    assert f"JOB {job} ON localhost CANCELLED" in wait_for_text(out, "CANCELLED")


def test_partitions_and_their_limits(slurm_cluster: SlurmCluster) -> None:
    sinfo = slurm_cluster.run("sinfo", "-h", "-o", "%P %l", check=True).stdout.split("\n")
    assert sinfo[:2] == ["debug* infinite", "short 5:00"]
    nope = slurm_cluster.run("sbatch", "-p", "nope", "--wrap", "true")
    assert nope.returncode != 0 and "invalid partition" in nope.stderr.lower()
    too_long = slurm_cluster.run("sbatch", "-p", "short", "--time=10", "--wrap", "true")
    assert too_long.returncode != 0 and "time limit" in too_long.stderr.lower()


def test_job_runs_on_while_the_controller_is_down(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = slurm_cluster.submit("-o", str(out), "--wrap", "echo started; sleep 2; echo finished")
    slurm_cluster.wait_state(job, "RUNNING")
    wait_for_text(out, "started")
    slurm_cluster.stop_controller()
    try:
        assert not slurm_cluster.ping()
        # squeue retries the connection for ~9 s (MessageTimeout=10) before it gives up
        assert slurm_cluster.run("squeue").returncode != 0
        wait_for_text(out, "finished")  # the job ended under slurmd alone
    finally:
        slurm_cluster.start_controller()
    assert slurm_cluster.ping()
    assert slurm_cluster.wait_state(job) == "COMPLETED"


def test_munge_down_fails_commands_until_it_is_back(slurm_cluster: SlurmCluster) -> None:
    slurm_cluster.stop_munge()
    try:
        failed = slurm_cluster.run("squeue")
        assert failed.returncode != 0 and "munge" in failed.stderr.lower()
    finally:
        slurm_cluster.start_munge()
    assert slurm_cluster.run("squeue").returncode == 0


def test_plain_user_submits_and_the_job_runs_as_that_user(
    slurm_cluster: SlurmCluster,
) -> None:
    user = pwd.getpwnam(ensure_user().pw_name)
    work = Path(tempfile.mkdtemp(prefix="ccd-slurm-user-"))
    try:
        os.chown(work, user.pw_uid, user.pw_gid)
        submit = slurm_cluster.run(
            *["runuser", "-u", user.pw_name, "--", "sbatch", "--parsable", "-D", str(work)],
            *["-o", "%j.out", "--wrap", "id -un; echo $SLURM_CONF"],
        )
        assert submit.returncode == 0, submit.stderr
        job = submit.stdout.strip()
        assert slurm_cluster.wait_state(job) == "COMPLETED"
        assert (work / f"{job}.out").read_text().split() == [user.pw_name, str(slurm_cluster.conf)]
        assert {"id": job, "user": user.pw_name} in [
            {"id": j["id"], "user": j["user"]} for j in slurm_cluster.squeue_all()
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_counting_wrappers_log_each_call(
    slurm_cluster: SlurmCluster, counting_squeue: CountingBin
) -> None:
    bin_dir, log_path = counting_squeue
    env = {**os.environ, **slurm_cluster.env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)

    job = run("sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 300").stdout.strip()
    assert job.isdigit()
    assert run("squeue", "-h", "-j", job).returncode == 0
    assert run("squeue", "-h", "-j", job).returncode == 0
    assert run("scontrol", "show", "job", job).returncode == 0
    assert run("scancel", job).returncode == 0
    assert run("sacct", "-j", job).returncode == 1  # accounting storage is disabled
    lines = log_path.read_text().splitlines()
    assert lines == [
        "sbatch --parsable -o /dev/null --wrap sleep 300",
        f"squeue -h -j {job}",
        f"squeue -h -j {job}",
        f"scontrol show job {job}",
        f"scancel {job}",
        f"sacct -j {job}",
    ]
    assert len(counting_squeue.calls("squeue")) == 2
    run("sbatch", "-o", "/dev/null", "--wrap", "echo one\necho two")
    assert counting_squeue.calls()[-1] == "sbatch -o /dev/null --wrap echo one\\necho two"


def test_cluster_left_running_is_reused_only_with_the_same_config(
    slurm_cluster: SlurmCluster,
) -> None:
    first = open_cluster()  # another slot: the session's cluster holds its own
    try:
        assert first.slot != slurm_cluster.slot and not first.reused
        first.release()  # as a session that ends with CCD_SLURM_KEEP=1
        again = open_cluster(slot=first.slot)
        assert again.reused and again.pids == first.pids
        again.release()
        changed = open_cluster(["# another config"], slot=first.slot)
        pids = dict(changed.pids)
        assert not changed.reused and pids["slurmctld"] != first.pids["slurmctld"]
        job = changed.submit("-o", "/dev/null", "--wrap", "true")
        assert changed.wait_state(job) == "COMPLETED"
        changed.shutdown()
        assert all(is_gone(pid) for pid in pids.values())
    finally:
        first.release()
        stop_leftovers(first.slot)  # if an assertion failed half-way


def test_extra_conf_replaces_base_settings_and_adds_the_rest() -> None:
    directory = Path("/run/ccd-slurm/slot0")
    cluster = SlurmCluster(0, directory, directory / "slurm.conf", {}, 1, 2)
    base = cluster.render_conf().splitlines()
    cluster.extra_conf = ("minjobage=2", "PartitionName=extra Nodes=localhost", "# note")
    lines = cluster.render_conf().splitlines()
    assert "MinJobAge=300" in base and "MinJobAge=300" not in lines
    assert [line for line in lines if line.lower().startswith("minjobage")] == ["minjobage=2"]
    # lines of several settings and comments are added, never replace a base line
    assert lines[-2:] == ["PartitionName=extra Nodes=localhost", "# note"]
    assert [line for line in base if line != "MinJobAge=300"] == lines[:-3]


def test_time_limit_gives_timeout(slurm_cluster: SlurmCluster, time_limit_job: str) -> None:
    # measured: TIMEOUT 73-75 s after submission (1 s rounds up to a minute, plus the tick)
    assert slurm_cluster.wait_state(time_limit_job, timeout=TIMEOUT_DEADLINE) == "TIMEOUT"
    info = slurm_cluster.job_info(time_limit_job)
    assert (info["JobState"], info["Reason"], info["TimeLimit"]) == (
        "TIMEOUT",
        "TimeLimit",
        "00:01:00",
    )
