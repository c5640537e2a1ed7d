"""`SlurmPoller` against a scripted cluster, on a virtual clock (`virtual_clock`).

Every squeue takes a quarter of the 1 s interval; the tests read the loop time
of each call and compare it exactly with where it is due: on the grid while
squeue answers, after doubling waits while it fails.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ccd.config import SlurmSettings
from ccd.executors.base import LaunchError
from ccd.executors.slurm.model import Accounting, QueueEntry
from ccd.executors.slurm.poller import SlurmPoller
from tests.unit.virtual_clock import START, run

SQUEUE_TAKES = 0.25


class ScriptedCluster:
    """Answers squeue with `queue` (or fails while `down`), records every command.

    Only `name` and `run` of the `Cluster` protocol: all the poller uses.
    """

    name = "test"

    def __init__(self) -> None:
        self.down = False
        self.queue = ""
        self.fail_scancel = False
        self.calls: list[tuple[float, str]] = []

    def times(self, prefix: str) -> list[float]:
        return [at for at, command in self.calls if command.startswith(prefix)]

    async def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        self.calls.append((asyncio.get_running_loop().time() - START, command))
        if command.startswith("squeue"):
            await asyncio.sleep(SQUEUE_TAKES)
            return (1, "", "slurm_load_jobs error") if self.down else (0, self.queue, "")
        if command.startswith("scancel") and self.fail_scancel:
            return 1, "", "Unable to contact slurm controller"
        return 0, "", ""


class Job:
    """A followed attempt: what the poller told it."""

    def __init__(self, slurm_id: str) -> None:
        self.slurm_id = slurm_id
        self.submitted = 0.0
        self.entries: list[QueueEntry | None] = []
        self.warnings: list[str] = []

    async def update(self, entry: QueueEntry | None, record: Accounting | None) -> None:
        self.entries.append(entry)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def poller(cluster: ScriptedCluster) -> SlurmPoller:
    settings = SlurmSettings(poll_interval=1.0, sacct="no", max_scancel_batch=2)
    return SlurmPoller(cluster, settings)  # type: ignore[arg-type]


def test_squeue_runs_on_the_interval_s_grid_and_answers_every_job() -> None:
    cluster = ScriptedCluster()
    cluster.queue = "11|RUNNING|None|ccd.w.a.1\n"

    async def main() -> tuple[Job, Job]:
        p = poller(cluster)
        a, b = Job("11"), Job("12")
        p.follow(a)
        p.follow(b)
        await asyncio.sleep(3.5)
        await p.close()
        return a, b

    a, b = run(main)
    assert cluster.times("squeue") == [0, 1, 2, 3]  # not 0, 1.25, 2.5: one call a second
    assert [e.state if e else None for e in a.entries] == ["RUNNING"] * 4
    assert b.entries == [None] * 4  # not in the queue: the attempt decides what that means


def test_a_failing_squeue_is_asked_again_after_doubling_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = ScriptedCluster()

    async def main() -> Job:
        p = poller(cluster)
        job = Job("11")
        p.follow(job)
        await asyncio.sleep(0.5)
        cluster.down = True
        await asyncio.sleep(15.0)  # calls at 1 (fails), 3.25, 7.5, then 15.75 answers
        cluster.down = False
        await asyncio.sleep(3.0)
        await p.close()
        return job

    with caplog.at_level(logging.INFO, logger="ccd.executors.slurm.poller"):
        job = run(main)
    # each wait counts from the failed call's end: 1.25 + 2, 3.5 + 4, 7.75 + 8;
    # the first answer starts a new grid
    assert cluster.times("squeue") == [0, 1, 3.25, 7.5, 15.75, 16.75, 17.75]
    assert len(job.entries) == 4  # a failing squeue tells the jobs nothing
    assert len(job.warnings) == 1 and "squeue failed (1)" in job.warnings[0]  # once an outage
    assert "squeue on test answers again" in caplog.text


def test_an_idle_poller_asks_nothing_until_a_job_is_followed() -> None:
    cluster = ScriptedCluster()

    async def main() -> None:
        p = poller(cluster)
        first = Job("11")
        p.follow(first)
        await asyncio.sleep(1.5)
        p.unfollow(first)
        await asyncio.sleep(10.0)
        p.follow(Job("12"))  # at 11.5: asked at once, then every second from then
        await asyncio.sleep(1.5)
        await p.close()

    run(main)
    assert cluster.times("squeue") == [0, 1, 11.5, 12.5]


def test_cancels_of_the_same_moment_share_scancel_calls() -> None:
    cluster = ScriptedCluster()

    async def main() -> None:
        p = poller(cluster)
        jobs = [Job(i) for i in ("21", "22", "23", "unknown:/runs/w/x/1")]
        await asyncio.gather(*(p.cancel(job) for job in jobs))
        await p.close()

    run(main)
    # max_scancel_batch is 2; an id Slurm never gave is not sent
    assert [command for _, command in cluster.calls] == ["scancel 21 22", "scancel 23"]


def test_a_failing_scancel_names_the_jobs_that_may_live_on() -> None:
    cluster = ScriptedCluster()
    cluster.fail_scancel = True

    async def main() -> None:
        p = poller(cluster)
        try:
            await p.cancel(Job("31"))
        finally:
            await p.close()

    with pytest.raises(LaunchError, match="may still be alive: 31"):
        run(main)


def test_recovery_waits_for_squeue_to_answer_before_it_says_which_jobs_exist() -> None:
    cluster = ScriptedCluster()
    cluster.down = True

    async def main() -> list[str]:
        p = poller(cluster)

        async def back_up() -> None:
            await asyncio.sleep(5.0)
            cluster.down = False
            cluster.queue = "41_[0-2]\n"

        task = asyncio.ensure_future(back_up())
        ids = await p.ids_named("ccd.w.g@0.1")
        await task
        return ids

    assert run(main) == ["41_0", "41_1", "41_2"]
    # waits of 1, 2, 4 s after calls that each took 0.25 s
    assert cluster.times("squeue") == [0, 1.25, 3.5, 7.75]
