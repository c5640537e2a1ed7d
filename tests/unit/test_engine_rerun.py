"""Rerun from a job: that job (even succeeded) and, with downstream, what needs it."""

from __future__ import annotations

import pytest

from ccd.errors import Conflict, NotFound
from tests.unit import test_engine
from tests.unit.fake_executor import exits, hangs
from tests.unit.test_engine import Bed, J

bed = test_engine.bed  # the fixture

CHAIN = """
    jobs:
      a: {run: x}
      b: {needs: [a], run: x}
      c: {needs: [b], run: x}
      side: {run: x}
      sweep: {needs: [a], array: 2, run: x}
"""


def launched(bed: Bed) -> list[str]:
    return [c.job for c in bed.executor.calls_of("launch")]


async def test_rerun_runs_only_that_succeeded_job_again(bed: Bed) -> None:
    wf = await bed.submit(CHAIN)
    await bed.final(wf)
    first = len(launched(bed))
    assert await bed.engine.rerun(wf, "b") == ["b"]
    assert (await bed.final(wf))["state"] == "succeeded"
    assert launched(bed)[first:] == ["b"]
    jobs = await bed.jobs(wf)
    assert (jobs["b"]["attempt"], jobs["c"]["attempt"]) == (2, 1)


async def test_downstream_reruns_every_job_that_needs_it_in_order(bed: Bed) -> None:
    wf = await bed.submit(CHAIN)
    await bed.final(wf)
    first = len(launched(bed))
    again = await bed.engine.rerun(wf, "a", downstream=True)
    assert again == ["a", "b", "c", "sweep[0]", "sweep[1]"]
    assert (await bed.final(wf))["state"] == "succeeded"
    assert sorted(launched(bed)[first:]) == sorted(again)
    assert launched(bed)[first] == "a"  # its descendants waited for it


async def test_an_array_job_reruns_all_its_elements(bed: Bed) -> None:
    wf = await bed.submit(CHAIN)
    await bed.final(wf)
    assert await bed.engine.rerun(wf, "sweep") == ["sweep[0]", "sweep[1]"]
    await bed.final(wf)


async def test_a_rerun_that_fails_fails_the_workflow(bed: Bed) -> None:
    bed.executor.set("c", exits(0), exits(5))
    wf = await bed.submit(CHAIN)
    assert (await bed.final(wf))["state"] == "succeeded"
    await bed.engine.rerun(wf, "c")
    assert (await bed.final(wf))["state"] == "failed"


async def test_unknown_job_and_running_workflow_are_refused(bed: Bed) -> None:
    bed.executor.set("side", hangs())
    wf = await bed.submit(CHAIN)
    await bed.job_reaches(wf, "side", J.RUNNING)
    with pytest.raises(Conflict, match="still running"):
        await bed.engine.rerun(wf, "a")
    (await bed.executor.launched("side")).finish(0)
    await bed.final(wf)
    with pytest.raises(NotFound, match="has no job 'nope'"):
        await bed.engine.rerun(wf, "nope")
