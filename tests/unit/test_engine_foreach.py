"""``foreach:`` in the in-process engine test bed (tests/unit/test_engine.py's Bed)."""

from __future__ import annotations

import json

from ccd.engine import fanout
from ccd.spec.model import Workflow
from tests.unit import test_engine
from tests.unit.fake_executor import exits, hangs
from tests.unit.shell_words import evaluated
from tests.unit.test_engine import Bed, J

bed = test_engine.bed  # the fixture

SPLIT = """
    name: fan
    jobs:
      split: {run: x}
      train:
        needs: [split]
        foreach: ${{ jobs.split.outputs.grid }}
        env: {LR: "lr=${{ item }}"}
        run: 'train --lr ${{ item }}'
      report:
        needs: [train]
        env: {ALL: "${{ jobs.train.outputs.acc }}"}
        run: 'report'
"""


async def test_elements_replace_the_foreach_job_and_its_children_wait_for_all(bed: Bed) -> None:
    bed.executor.set("split", exits(0, '::ccd output grid=[0.1, "a b", {"k": 1}]'))
    for index in range(3):
        bed.executor.set(f"train[{index}]", exits(0, f"::ccd output acc=0.9{index}"))
    wf = await bed.submit(SPLIT)
    assert (await bed.final(wf))["state"] == "succeeded"
    jobs = await bed.jobs(wf)
    # listed where the foreach job was, which is gone
    assert list(jobs) == ["split", "train[0]", "train[1]", "train[2]", "report"]
    requests = {r.job.name: r for r in bed.executor.requests}
    items = [requests[f"train[{i}]"].env["CCD_ITEM"] for i in range(3)]
    assert items == ["0.1", "a b", '{"k": 1}']  # a text item as itself, others as JSON
    assert requests["train[1]"].command == "train --lr ${CCD_ITEM}"
    assert evaluated(requests["train[1]"].exports["LR"]) == "lr=a b"
    report = requests["report"]
    assert report.job.needs == ["train[0]", "train[1]", "train[2]"]
    assert json.loads(evaluated(report.exports["ALL"])) == ["0.90", "0.91", "0.92"]
    # report started only after the last element ended
    order = [call.job for call in bed.executor.calls_of("launch")]
    assert order.index("report") > max(order.index(f"train[{i}]") for i in range(3))
    [added] = await bed.events(wf, "workflow.jobs_added")
    assert (added["job"], added["data"]["items"]) == ("train", items)
    # the stored spec keeps the foreach job as written, with its items: a retry or a
    # restart runs the elements again, and an export shows the foreach
    stored = Workflow.model_validate(await bed.store.get_spec(wf))
    assert (stored.jobs["train"].foreach, stored.jobs["train"].items) == (
        "${{ jobs.split.outputs.grid }}",
        items,
    )
    grown = fanout.expanded(stored)
    assert list(grown.jobs) == list(jobs)
    assert grown.jobs["report"].needs == report.job.needs
    assert grown.jobs["train[2]"] == requests["train[2]"].job


async def test_a_literal_list_fans_out_when_the_parents_succeed(bed: Bed) -> None:
    wf = await bed.submit("""
        jobs:
          a: {run: x}
          each: {needs: [a], foreach: [1, 2], run: 'echo ${{ item }}'}
    """)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert set(await bed.jobs(wf)) == {"a", "each[0]", "each[1]"}


async def test_an_empty_list_skips_the_job_and_its_children(bed: Bed) -> None:
    bed.executor.set("split", exits(0, "::ccd output grid=[]"))
    wf = await bed.submit(SPLIT)
    assert (await bed.final(wf))["state"] == "succeeded"
    jobs = await bed.jobs(wf)
    assert (jobs["train"]["state"], jobs["train"]["reason"]) == ("skipped", "foreach list is empty")
    assert (jobs["report"]["state"], jobs["report"]["reason"]) == (
        "skipped",
        "ancestor 'train' was skipped (foreach list is empty)",
    )


async def test_not_a_list_fails_the_job_naming_the_parent_output_and_value(bed: Bed) -> None:
    bed.executor.set("split", exits(0, "::ccd output grid=" + "x" * 300))
    wf = await bed.submit(SPLIT)
    assert (await bed.final(wf))["state"] == "failed"
    jobs = await bed.jobs(wf)
    reason = jobs["train"]["reason"]
    assert reason.startswith("foreach: output 'grid' of job 'split' is not a JSON list; it holds")
    assert "x" * 200 + "'…" in reason and "x" * 201 not in reason
    assert jobs["report"]["state"] == "skipped"


async def test_a_failing_element_leaves_its_siblings_and_retry_reruns_only_it(bed: Bed) -> None:
    bed.executor.set("split", exits(0, "::ccd output grid=[1, 2, 3]"))
    bed.executor.set("train[1]", exits(3), exits(0, "::ccd output acc=1"))
    for index in (0, 2):
        bed.executor.set(f"train[{index}]", exits(0, "::ccd output acc=1"))
    wf = await bed.submit(SPLIT)
    assert (await bed.final(wf))["state"] == "failed"
    jobs = await bed.jobs(wf)
    states = {name: row["state"] for name, row in jobs.items()}
    assert states == {
        "split": "succeeded",
        "train[0]": "succeeded",
        "train[1]": "failed",
        "train[2]": "succeeded",
        "report": "skipped",
    }
    assert await bed.engine.retry(wf) == ["train[1]", "report"]
    assert (await bed.final(wf))["state"] == "succeeded", await bed.jobs(wf)
    relaunched = [c.job for c in bed.executor.calls_of("launch")][-2:]
    assert relaunched == ["train[1]", "report"]


async def test_a_restart_after_the_expansion_runs_each_element_once(bed: Bed) -> None:
    bed.executor.set("split", exits(0, "::ccd output grid=[1, 2]"))
    bed.executor.set("train[0]", hangs())
    bed.executor.set("train[1]", hangs())
    wf = await bed.submit(SPLIT)
    await bed.executor.launched("train[0]")
    await bed.executor.launched("train[1]")
    await bed.job_reaches(wf, "train[1]", J.RUNNING)
    assert await bed.restart() == 1
    for index in range(2):
        attempt = await bed.executor.adopted(f"train[{index}]")
        attempt.write("::ccd output acc=1")
        attempt.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded", await bed.jobs(wf)
    launched = [c.job for c in bed.executor.calls_of("launch")]
    assert launched.count("train[0]") == launched.count("train[1]") == 1


async def test_a_restart_before_the_expansion_expands_once(bed: Bed) -> None:
    bed.executor.set("split", hangs())
    bed.executor.set("train[0]", exits(0, "::ccd output acc=1"))
    wf = await bed.submit(SPLIT)
    await bed.executor.launched("split")
    await bed.job_reaches(wf, "split", J.RUNNING)
    assert await bed.restart() == 1
    adopted = await bed.executor.adopted("split")
    adopted.write("::ccd output grid=[7]")
    adopted.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert len(await bed.events(wf, "workflow.jobs_added")) == 1
    assert [c.job for c in bed.executor.calls_of("launch")].count("train[0]") == 1


async def test_cancelling_the_workflow_cancels_elements_not_started(bed: Bed) -> None:
    bed.executor.set("split", exits(0, "::ccd output grid=[1, 2]"))
    bed.executor.set("train[0]", hangs())
    bed.executor.set("train[1]", hangs())
    wf = await bed.submit(SPLIT)
    await bed.job_reaches(wf, "train[0]", J.RUNNING)
    bed.engine.cancel(wf)
    assert (await bed.final(wf))["state"] == "cancelled"
    jobs = await bed.jobs(wf)
    assert {jobs[n]["state"] for n in ("train[0]", "train[1]", "report")} == {"cancelled"}


async def test_a_thousand_items(bed: Bed) -> None:
    grid = json.dumps(list(range(1000)))
    bed.executor.set("split", exits(0, f"::ccd output grid={grid}"))
    wf = await bed.submit(SPLIT.replace('env: {ALL: "${{ jobs.train.outputs.acc }}"}', ""))
    assert (await bed.final(wf))["state"] == "succeeded"
    jobs = await bed.jobs(wf)
    assert len(jobs) == 1002 and list(jobs)[1000] == "train[999]"
