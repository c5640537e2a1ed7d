"""Jobs added to a running workflow: checked against its live DAG, run exactly once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ccd.errors import Conflict, SpecError
from ccd.spec.additions import load_added_jobs
from tests.unit import test_engine
from tests.unit.fake_executor import exits, hangs
from tests.unit.test_engine import Bed, J

bed = test_engine.bed  # the fixture

RUNNING = """
    name: grow
    jobs:
      ok: {run: x}
      bad: {run: x}
      sweep: {array: 2, run: x}
      long: {run: x}
"""


async def add(bed: Bed, wf: str, text: str) -> list[str]:
    spec = bed.engine.live_spec(wf)
    jobs = load_added_jobs(textwrap.dedent(text), spec, base_dir=bed.tmp_path)
    return await bed.engine.add_jobs(wf, jobs)


async def test_added_jobs_need_old_and_new_jobs_and_start_when_they_may(bed: Bed) -> None:
    bed.executor.set("ok", exits(0, "::ccd output v=1"))
    bed.executor.set("bad", exits(3))
    bed.executor.set("long", hangs())
    wf = await bed.submit(RUNNING)
    await bed.job_reaches(wf, "bad", J.FAILED)
    await bed.job_reaches(wf, "ok", J.SUCCEEDED)
    await bed.job_reaches(wf, "sweep[1]", J.SUCCEEDED)
    added = await add(
        bed,
        wf,
        """
        jobs:
          after-ok: {needs: [ok], run: 'echo ${{ jobs.ok.outputs.v }}'}
          after-bad: {needs: [bad], run: x}
          after-sweep: {needs: [sweep], run: x}
          after-long: {needs: [long, after-ok], run: x}
    """,
    )
    assert added == ["after-ok", "after-bad", "after-sweep", "after-long"]
    await bed.job_reaches(wf, "after-ok", J.SUCCEEDED)
    await bed.job_reaches(wf, "after-sweep", J.SUCCEEDED)
    skipped = await bed.job_reaches(wf, "after-bad", J.SKIPPED)
    assert skipped["reason"] == "ancestor 'bad' failed"
    assert [r.command for r in bed.executor.requests if r.job.name == "after-ok"] == [
        "echo ${CCD_OUTPUT_OK_V}"
    ]
    assert (await bed.jobs(wf))["after-long"]["state"] == "pending"
    (await bed.executor.launched("long")).finish(0)
    assert (await bed.final(wf))["state"] == "failed"  # bad failed
    jobs = await bed.jobs(wf)
    assert list(jobs)[-4:] == added  # listed after the jobs there were
    assert jobs["after-sweep"]["needs"] == ["sweep[0]", "sweep[1]"]
    [event] = await bed.events(wf, "workflow.jobs_added")
    assert list(event["data"]["jobs"]) == added


async def test_added_jobs_survive_a_restart_and_run_once(bed: Bed) -> None:
    bed.executor.set("long", hangs())
    wf = await bed.submit(RUNNING)
    await bed.job_reaches(wf, "long", J.RUNNING)
    await add(bed, wf, "jobs:\n  later: {needs: [long], run: x}\n")
    assert await bed.restart() == 1
    (await bed.executor.adopted("long")).finish(0)
    await bed.job_reaches(wf, "later", J.SUCCEEDED)
    assert [c.job for c in bed.executor.calls_of("launch")].count("later") == 1


async def test_an_ended_workflow_takes_no_jobs(bed: Bed) -> None:
    wf = await bed.submit(RUNNING)
    await bed.final(wf)
    with pytest.raises(Conflict, match=f"workflow {wf} has ended.*ccctl retry {wf}"):
        await bed.engine.add_jobs(wf, {})
    with pytest.raises(Conflict, match=f"workflow {wf} has ended"):
        bed.engine.live_spec(wf)


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("jobs:\n  ok: {run: x}\n", "duplicate-job", 2),
        ("jobs:\n  n: {needs: [nope], run: x}\n", "unknown-parent", 2),
        ("jobs:\n  a: {needs: [b], run: x}\n  b: {needs: [a], run: x}\n", "cycle", 2),
        ("jobs:\n  n: {needs: [ok], run: 'echo ${{ jobs.long.outputs.k }}'}\n",
         "not-an-ancestor", 2),
        ("name: other\njobs:\n  n: {run: x}\n", "unknown-key", 1),
    ],
)  # fmt: skip
async def test_problems_are_located_in_the_fragment(
    bed: Bed, text: str, code: str, line: int
) -> None:
    bed.executor.set("long", hangs())
    wf = await bed.submit(RUNNING)
    spec = bed.engine.live_spec(wf)
    with pytest.raises(SpecError) as caught:
        load_added_jobs(text, spec, base_dir=Path("/"))
    assert [(p.code, p.line) for p in caught.value.problems] == [(code, line)]


async def test_a_job_added_after_its_foreach_parent_fanned_out_needs_the_elements(
    bed: Bed,
) -> None:
    bed.executor.set("gate", hangs())
    wf = await bed.submit("""
        jobs:
          gate: {run: x}
          each: {foreach: [1, 2], run: x}
    """)
    await bed.job_reaches(wf, "each[1]", J.SUCCEEDED)
    await add(bed, wf, "jobs:\n  sum: {needs: [each], run: 'echo ${{ jobs.each.outputs.k }}'}\n")
    await bed.job_reaches(wf, "sum", J.FAILED)  # the elements set no output k
    jobs = await bed.jobs(wf)
    assert jobs["sum"]["needs"] == ["each[0]", "each[1]"]
    assert "set no output 'k'" in jobs["sum"]["reason"]
    (await bed.executor.launched("gate")).finish(0)
    await bed.final(wf)
