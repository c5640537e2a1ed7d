"""Output references to array jobs at launch, and the launch's safety net, on the real
`Engine` with scripted attempts (the bed of `test_engine`)."""

from __future__ import annotations

import json

from tests.unit import test_engine
from tests.unit.fake_executor import exits
from tests.unit.shell_words import evaluated
from tests.unit.test_engine import Bed

bed = test_engine.bed  # the fixture


async def test_outputs_of_one_array_element_and_of_the_whole_array(bed: Bed) -> None:
    for index, value in enumerate(["0.1", "0.2", "0.3"]):
        bed.executor.set(f"sweep[{index}]", exits(0, f"::ccd output s={value}"))
    wf = await bed.submit("""
        jobs:
          sweep: {array: 3, run: x}
          merge:
            needs: [sweep]
            env: {ALL: "${{ jobs.sweep.outputs.s }}"}
            run: 'echo ${{ jobs.sweep[1].outputs.s }} "${{ jobs.sweep.outputs.s }}"'
    """)
    assert (await bed.final(wf))["state"] == "succeeded"
    [request] = [r for r in bed.executor.requests if r.job.name == "merge"]
    assert request.command == 'echo ${CCD_OUTPUT_SWEEP_1__S} "${CCD_OUTPUT_SWEEP_S}"'
    assert request.env["CCD_OUTPUT_SWEEP_1__S"] == "0.2"
    assert json.loads(request.env["CCD_OUTPUT_SWEEP_S"]) == ["0.1", "0.2", "0.3"]
    assert evaluated(request.exports["ALL"]) == '["0.1", "0.2", "0.3"]'


async def test_an_element_without_the_output_fails_the_child_with_a_reason(bed: Bed) -> None:
    bed.executor.set("sweep[0]", exits(0, "::ccd output s=1"))
    wf = await bed.submit("""
        jobs:
          sweep: {array: 2, run: x}
          merge: {needs: [sweep], run: 'echo ${{ jobs.sweep.outputs.s }}'}
    """)
    await bed.final(wf)
    merge = (await bed.jobs(wf))["merge"]
    assert merge["state"] == "failed"
    assert "job 'sweep[1]' set no output 's'" in merge["reason"]
    assert "merge" not in {r.job.name for r in bed.executor.requests}


async def test_a_reference_the_validator_never_saw_fails_the_launch(bed: Bed) -> None:
    # a spec stored by an older ccd is not validated again: the launch still refuses
    spec = bed.spec("jobs:\n  a: {run: x}\n  b: {needs: a, run: x}\n  c: {run: x}\n")
    jobs = dict(spec.jobs)
    jobs["b"] = jobs["b"].model_copy(update={"run": "echo ${{ jobs.a.output.v }}"})
    jobs["c"] = jobs["c"].model_copy(update={"run": "echo ${{ jobs.a.outputs.v }}"})
    wf = await bed.engine.submit(spec.model_copy(update={"jobs": jobs}))
    await bed.final(wf)
    rows = await bed.jobs(wf)
    assert rows["b"]["state"] == rows["c"]["state"] == "failed"
    assert "malformed output reference '${{ jobs.a.output.v }}'" in rows["b"]["reason"]
    assert "which is not an ancestor of 'c'" in rows["c"]["reason"]
    assert {r.job.name for r in bed.executor.requests} == {"a"}
