"""Trigger rules (``when:``) in the in-process engine test bed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit import test_engine
from tests.unit.fake_executor import exits, hangs
from tests.unit.test_engine import Bed, J
from tests.unit.test_spec_validate import problems

bed = test_engine.bed  # the fixture

HOOKS = """
    jobs:
      train: {run: x}
      publish: {needs: [train], run: x}
      cleanup: {needs: [publish], when: always, run: x}
      alert: {needs: [publish], when: failure, run: x}
"""


async def states(bed: Bed, wf: str) -> dict[str, tuple[str, str | None]]:
    return {name: (row["state"], row["reason"]) for name, row in (await bed.jobs(wf)).items()}


async def test_after_success_cleanup_runs_and_the_alert_is_skipped(bed: Bed) -> None:
    wf = await bed.submit(HOOKS)
    assert (await bed.final(wf))["state"] == "succeeded"
    got = await states(bed, wf)
    assert got["cleanup"] == ("succeeded", None)
    assert got["alert"] == ("skipped", "no parent failed (when: failure)")


async def test_after_a_failure_both_run_and_the_workflow_stays_failed(bed: Bed) -> None:
    bed.executor.set("train", exits(2))
    wf = await bed.submit(HOOKS)
    # the alert and the cleanup succeed; the outcome is still that of the real jobs
    assert (await bed.final(wf))["state"] == "failed"
    got = await states(bed, wf)
    assert got["publish"] == ("skipped", "ancestor 'train' failed")
    assert (got["cleanup"][0], got["alert"][0]) == ("succeeded", "succeeded")


async def test_a_failing_cleanup_does_not_fail_a_workflow_that_succeeded(bed: Bed) -> None:
    bed.executor.set("cleanup", exits(1))
    wf = await bed.submit(HOOKS)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert (await states(bed, wf))["cleanup"][0] == "failed"


async def test_cleanup_runs_after_its_parent_is_cancelled(bed: Bed) -> None:
    bed.executor.set("publish", hangs())
    wf = await bed.submit(HOOKS)
    await bed.job_reaches(wf, "publish", J.RUNNING)
    bed.engine.cancel(wf, "publish")
    assert (await bed.final(wf))["state"] == "cancelled"
    got = await states(bed, wf)
    assert got["cleanup"][0] == "succeeded"
    assert got["alert"] == ("skipped", "no parent failed (when: failure)")


async def test_cancelling_the_workflow_cancels_its_cleanup_too(bed: Bed) -> None:
    bed.executor.set("train", hangs())
    wf = await bed.submit(HOOKS)
    await bed.job_reaches(wf, "train", J.RUNNING)
    bed.engine.cancel(wf)
    assert (await bed.final(wf))["state"] == "cancelled"
    assert (await states(bed, wf))["cleanup"][0] == "cancelled"


async def test_any_runs_when_one_parent_succeeded(bed: Bed) -> None:
    bed.executor.set("b", exits(1))
    bed.executor.set("c", exits(1))
    wf = await bed.submit("""
        jobs:
          a: {run: x}
          b: {run: x}
          c: {run: x}
          one: {needs: [a, b], when: any, run: x}
          none: {needs: [b, c], when: any, run: x}
    """)
    await bed.final(wf)
    got = await states(bed, wf)
    assert got["one"] == ("succeeded", None)
    assert got["none"] == ("skipped", "no parent succeeded (when: any)")


async def test_an_alert_sees_a_failure_further_up(bed: Bed) -> None:
    bed.executor.set("train", exits(3))
    wf = await bed.submit("""
        jobs:
          train: {run: x}
          publish: {needs: [train], run: x}
          alert: {needs: [publish], when: failure, run: 'echo ${{ jobs.train.outputs.x }}'}
    """)
    await bed.final(wf)
    got = await states(bed, wf)
    # it ran (and failed: the failed train set no output), it was not skipped
    assert got["alert"][0] == "failed" and "set no output 'x'" in str(got["alert"][1])


def test_a_bad_rule_says_which_there_are(tmp_path: Path) -> None:
    [problem] = problems("jobs:\n  a: {run: x, when: allways}\n", tmp_path)
    assert "when must be one of success, failure, always, any" in problem.message
    assert "did you mean 'always'" in problem.message


@pytest.mark.parametrize("rule", ["success", "failure", "always", "any"])
def test_every_rule_is_accepted(tmp_path: Path, rule: str) -> None:
    from tests.unit.test_spec_validate import load

    assert load(f"jobs:\n  a: {{run: x, when: {rule}}}\n", tmp_path).jobs["a"].when == rule
