"""Local resource slots (#18 A4) on the real `Engine` with scripted attempts: GPUs,
CPUs and memory of ``hosts.localhost`` held by local jobs, released however an attempt
ends, and held again by adopted attempts after a restart (the bed of `test_engine`)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ccd.config import DaemonConfig, HostConfig
from ccd.engine.pool import check_workflow
from ccd.engine.slots import Slots
from ccd.errors import CcdError
from ccd.spec.validate import load_workflow_text
from ccd.states import JobState
from tests.unit import test_engine
from tests.unit.fake_executor import exits, hangs, launch_fails
from tests.unit.test_engine import Bed, launches

bed = test_engine.bed  # the fixture
J = JobState


def host(bed: Bed, **capacity: Any) -> None:
    """Run the bed's next engines with `hosts.localhost` declaring `capacity`."""
    bed.config = DaemonConfig(
        state_dir=bed.tmp_path, kill_grace=0.5, hosts={"localhost": HostConfig(**capacity)}
    )


async def on_host(bed: Bed, **capacity: Any) -> None:
    host(bed, **capacity)
    await bed.engine.close()
    bed.new_engine()


def env(bed: Bed, job: str, attempt: int = 1) -> dict[str, str]:
    [request] = [r for r in bed.executor.requests if (r.job.name, r.attempt) == (job, attempt)]
    return request.env


def gpus(bed: Bed, job: str, attempt: int = 1) -> str | None:
    variables = env(bed, job, attempt)
    assert variables.get("CCD_GPUS") == variables.get("CUDA_VISIBLE_DEVICES")
    return variables.get("CUDA_VISIBLE_DEVICES")


async def waits_for_resources(bed: Bed, wf: str, job: str) -> dict[str, Any]:
    """The job's row once it says it waits for resources (its waiter is queued by then)."""

    async def waiting() -> dict[str, Any] | None:
        row = await bed.store.get_job(wf, job)
        reason = row["reason"] if row is not None else None
        return row if reason and reason.startswith("waiting for local resources") else None

    return await bed.until(waiting)


# -- GPUs -------------------------------------------------------------------------------
async def test_gpu_jobs_get_distinct_devices_and_a_third_waits_for_a_freed_one(bed: Bed) -> None:
    await on_host(bed, gpus=[0, 1])
    for name in ("a", "b", "c"):
        bed.executor.set(name, hangs())
    wf = await bed.submit("""
        jobs:
          a: {run: x, resources: {gpus: 1}}
          b: {run: x, resources: {gpus: 1}}
          c: {run: x, resources: {gpus: 1}}
    """)
    a = await bed.executor.launched("a")
    b = await bed.executor.launched("b")
    assert {gpus(bed, "a"), gpus(bed, "b")} == {"0", "1"}
    assert len(bed.executor.running.items) == 2  # both run at once
    row = await waits_for_resources(bed, wf, "c")
    assert (row["state"], row["reason"]) == ("queued", "waiting for local resources (gpus: 1)")
    assert ("c", 1) not in launches(bed)
    a.finish(0)
    c = await bed.executor.launched("c")
    assert gpus(bed, "c") == gpus(bed, "a")
    # the device goes with the recorded handle, so that a new daemon holds it again
    assert (await bed.jobs(wf))["c"]["handle"]["gpus"] == [gpus(bed, "c")]
    b.finish(0)
    c.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert bed.executor.running.peak == 2


async def test_a_count_of_gpus_means_device_ids_0_to_n_minus_1(bed: Bed) -> None:
    await on_host(bed, gpus=3)
    bed.executor.set("two", hangs())
    wf = await bed.submit("jobs:\n  two: {run: x, resources: {gpus: 2}}\n")
    attempt = await bed.executor.launched("two")
    assert gpus(bed, "two") == "0,1"
    attempt.finish(0)
    await bed.final(wf)


async def test_a_job_waiting_for_two_gpus_is_not_passed_by_one_gpu_jobs(bed: Bed) -> None:
    await on_host(bed, gpus=["0", "1"], cpus=8)
    for name in ("first", "big", "small"):
        bed.executor.set(name, hangs())
    wf = await bed.submit("""
        jobs:
          first: {run: x, resources: {gpus: 1}}
          big: {run: x, resources: {gpus: 2}}
          small: {run: x, resources: {gpus: 1}}
          cpu-only: {run: x, resources: {cpus: 2}}
    """)
    first = await bed.executor.launched("first")
    await waits_for_resources(bed, wf, "big")
    # one GPU is free, but it is big's turn; a job that needs no GPU does not wait
    await waits_for_resources(bed, wf, "small")
    await bed.job_reaches(wf, "cpu-only", J.SUCCEEDED)
    first.finish(0)
    big = await bed.executor.launched("big")
    assert gpus(bed, "big") == "0,1"
    assert ("small", 1) not in launches(bed)
    big.finish(0)
    small = await bed.executor.launched("small")
    small.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert [job for job, _ in launches(bed)] == ["first", "cpu-only", "big", "small"]


async def test_a_cancelled_waiter_lets_the_ones_behind_it_go(bed: Bed) -> None:
    await on_host(bed, gpus=2)
    for name in ("first", "big", "small"):
        bed.executor.set(name, hangs())
    wf = await bed.submit("""
        jobs:
          first: {run: x, resources: {gpus: 1}}
          big: {run: x, resources: {gpus: 2}}
          small: {run: x, resources: {gpus: 1}}
    """)
    first = await bed.executor.launched("first")
    await waits_for_resources(bed, wf, "small")
    bed.engine.cancel(wf, "big")
    small = await bed.executor.launched("small")
    assert gpus(bed, "small") == "1"
    first.finish(0)
    small.finish(0)
    await bed.final(wf)
    assert (await bed.jobs(wf))["big"]["state"] == "cancelled"


async def test_without_declared_gpus_a_gpu_request_is_not_limited_and_gets_no_devices(
    bed: Bed,
) -> None:
    await on_host(bed, cpus=2)
    for name in ("a", "b"):
        bed.executor.set(name, hangs())
    wf = await bed.submit("""
        jobs:
          a: {run: x, resources: {gpus: 8}}
          b: {run: x, resources: {gpus: 8}}
    """)
    a = await bed.executor.launched("a")
    b = await bed.executor.launched("b")
    assert "CUDA_VISIBLE_DEVICES" not in env(bed, "a") and "CCD_GPUS" not in env(bed, "b")
    a.finish(0)
    b.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"


# -- CPUs and memory --------------------------------------------------------------------
async def test_cpus_and_mem_limits_make_jobs_wait(bed: Bed) -> None:
    await on_host(bed, cpus=4, mem="8G")
    for name in ("big-cpu", "more-cpu", "half-mem", "more-mem"):
        bed.executor.set(name, hangs())
    wf = await bed.submit("""
        jobs:
          big-cpu: {run: x, resources: {cpus: 3}}
          more-cpu: {run: x, resources: {cpus: 2}}
          half-mem: {run: x, resources: {mem: 4G}}
          more-mem: {run: x, resources: {mem: 4097}}
    """)
    big_cpu = await bed.executor.launched("big-cpu")
    half_mem = await bed.executor.launched("half-mem")
    row = await waits_for_resources(bed, wf, "more-cpu")
    assert row["reason"] == "waiting for local resources (cpus: 2)"
    # a plain number is MiB: 4097 MiB is more than the 4 GiB left
    row = await waits_for_resources(bed, wf, "more-mem")
    assert row["reason"] == "waiting for local resources (mem: 4097M)"
    assert "CUDA_VISIBLE_DEVICES" not in env(bed, "big-cpu")
    big_cpu.finish(0)
    (await bed.executor.launched("more-cpu")).finish(0)
    assert ("more-mem", 1) not in launches(bed)
    half_mem.finish(0)
    (await bed.executor.launched("more-mem")).finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"


# -- release ----------------------------------------------------------------------------
@pytest.mark.parametrize("ending", ["failure", "launch error", "cancel", "timeout"])
async def test_the_devices_are_free_again_however_the_attempt_ends(bed: Bed, ending: str) -> None:
    await on_host(bed, gpus=["7"])
    bed.executor.set("first", launch_fails("no") if ending == "launch error" else hangs())
    timeout = ", timeout: 0.05" if ending == "timeout" else ""
    one = await bed.submit(f"jobs:\n  first: {{run: x, resources: {{gpus: 1}}{timeout}}}\n")
    two = await bed.submit("jobs:\n  second: {run: x, resources: {gpus: 1}}\n")
    if ending in ("failure", "cancel"):
        first = await bed.executor.launched("first")
        await waits_for_resources(bed, two, "second")
        if ending == "cancel":
            bed.engine.cancel(one, "first")
        else:
            first.finish(1)
    assert (await bed.final(one))["state"] != "succeeded"
    # (the first workflow's job takes the device first; the second's can only get it back)
    assert (await bed.final(two))["state"] == "succeeded"
    assert launches(bed) == [("first", 1), ("second", 1)]
    assert gpus(bed, "second") == "7"


async def test_a_retried_job_gives_its_devices_back_between_attempts(bed: Bed) -> None:
    await on_host(bed, gpus=1)
    bed.executor.set("flaky", exits(1), exits(1), exits(0))
    wf = await bed.submit(
        "jobs:\n  flaky: {run: x, retries: 2, retry_delay: 0.01, resources: {gpus: 1}}\n"
    )
    assert (await bed.final(wf))["state"] == "succeeded"
    assert [gpus(bed, "flaky", n) for n in (1, 2, 3)] == ["0", "0", "0"]


# -- refused at submit -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (
            "{gpus: 4}",
            "job 'train' asks for gpus: 4, but host 'localhost' has 2 in all "
            "(hosts.localhost.gpus in the daemon config)",
        ),
        ("{cpus: 5}", "job 'train' asks for cpus: 5, but host 'localhost' has 4 in all"),
        ("{mem: 1.5T}", "job 'train' asks for mem: 1.5T, but host 'localhost' has 8G in all"),
        ("{gpus: 'a100:2'}", "job 'train': resources.gpus must be a whole number"),
        ("{mem: lots}", "job 'train': resources.mem must be a size such as 512M, 8G or 1.5T"),
    ],
)
async def test_a_local_job_asking_for_more_than_the_host_has_is_refused_at_submit(
    bed: Bed, resources: str, message: str
) -> None:
    await on_host(bed, gpus=[0, 1], cpus=4, mem="8G")
    with pytest.raises(CcdError, match=re.escape(message)) as err:
        await bed.submit(f"jobs:\n  ok: {{run: x}}\n  train: {{run: x, resources: {resources}}}\n")
    assert err.value.http_status == 400
    assert await bed.store.list_workflows(10) == []  # nothing recorded


def test_slurm_and_ssh_jobs_are_not_counted_against_the_local_host(bed: Bed) -> None:
    host(bed, gpus=1)
    spec = load_workflow_text(
        """
        jobs:
          batch: {run: x, host: cluster, executor: slurm, resources: {gpus: 'a100:4', mem: 64G}}
          remote: {run: x, host: cluster, executor: ssh, resources: {gpus: 4}}
        """,
        base_dir=bed.tmp_path,
        known_hosts={"cluster"},
    )
    check_workflow(spec, Slots(bed.config).resources)  # no error


# -- restart ----------------------------------------------------------------------------
async def test_adopted_attempts_hold_their_recorded_devices_again(bed: Bed) -> None:
    await on_host(bed, gpus=[0, 1])
    bed.executor.set("a", hangs())
    bed.executor.set("p", hangs())
    # q runs after p, on p's device, fails, and waits to retry when the daemon stops;
    # the new daemon starts it (it comes first in the file) before it adopts a
    bed.executor.set("q", exits(1), hangs())
    wf = await bed.submit("""
        jobs:
          q: {needs: [p], run: x, retries: 1, retry_delay: 60, resources: {gpus: 1}}
          a: {run: x, resources: {gpus: 1}}
          p: {run: x, resources: {gpus: 1}}
    """)
    a = await bed.executor.launched("a")
    assert gpus(bed, "a") == "0"
    (await bed.executor.launched("p")).finish(0)
    await bed.executor.launched("q")
    await bed.until(
        lambda: _has_reason(bed, wf, "q", "exit 1; retry 1/1 in 60s"),
    )
    assert (await bed.jobs(wf))["a"]["handle"]["gpus"] == ["0"]
    assert await bed.restart() == 1
    assert await bed.executor.adopted("a") is a
    q = await bed.executor.launched("q", 2)
    assert gpus(bed, "q", 2) == "1"  # not a's device, though q asked first
    other = await bed.submit("jobs:\n  new: {run: x, resources: {gpus: 1}}\n")
    await waits_for_resources(bed, other, "new")
    a.finish(0)
    new = await bed.executor.launched("new")
    assert gpus(bed, "new") == "0"
    q.finish(0)
    new.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert (await bed.final(other))["state"] == "succeeded"


async def test_an_adopted_attempt_that_is_gone_frees_its_devices(bed: Bed) -> None:
    await on_host(bed, gpus=1)
    bed.executor.set("j", hangs())
    wf = await bed.submit("jobs:\n  j: {run: x, resources: {gpus: 1}}\n")
    await bed.job_reaches(wf, "j", J.RUNNING)
    del bed.executor.attempts[("j", 1)]  # the host rebooted while no daemon ran
    await bed.restart()
    assert (await bed.final(wf))["state"] == "failed"
    other = await bed.submit("jobs:\n  next: {run: x, resources: {gpus: 1}}\n")
    assert (await bed.final(other))["state"] == "succeeded"
    assert gpus(bed, "next") == "0"


async def _has_reason(bed: Bed, wf: str, job: str, reason: str) -> bool:
    return reason in [r for _, r in await bed.states(wf, job)]
