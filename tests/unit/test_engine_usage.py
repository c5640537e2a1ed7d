"""Each attempt's end and cost as a `job.usage` event, and the run report built from them."""

from __future__ import annotations

import time

from ccd.executors.base import ExitStatus
from ccd.report.build import REPORT_KINDS, build_report
from ccd.usage import Usage
from tests.unit import test_engine
from tests.unit.fake_executor import Script, hangs
from tests.unit.test_engine import Bed, J

bed = test_engine.bed  # the fixture

FIRST = Usage(cpu_user=2.0, cpu_sys=0.5, maxrss_kb=4096, source="kernel")
SECOND = Usage(cpu_user=1.0, cpu_sys=0.0, maxrss_kb=8192, node="n1", source="wrapper")


def ended(code: int, usage: Usage | None) -> Script:
    return Script(status=ExitStatus(exit_code=code, ended=time.time(), usage=usage))


async def report_of(bed: Bed, wf: str) -> dict:
    events = [e for e in await bed.events(wf) if e["kind"] in REPORT_KINDS]
    workflow = await bed.store.find_workflow(wf)
    assert workflow is not None
    return build_report(workflow, await bed.store.get_jobs(wf), events, time.time())


async def test_every_attempt_ends_with_its_cost_retried_ones_too(bed: Bed) -> None:
    bed.executor.set("j", ended(3, FIRST), ended(0, SECOND))
    wf = await bed.submit("jobs:\n  j: {run: x, retries: 1}\n")
    await bed.final(wf)
    usage = await bed.events(wf, "job.usage")
    assert [(e["data"]["attempt"], e["data"]["outcome"]) for e in usage] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert usage[0]["data"]["exit_code"] == 3 and usage[0]["data"]["reason"] == "exit 3"
    assert [Usage.from_data(e["data"]["usage"]) for e in usage] == [FIRST, SECOND]
    # recorded before the state that ends the job
    kinds = [e["kind"] for e in await bed.events(wf) if e["job"] == "j"]
    assert kinds[-2:] == ["job.usage", "job.state"]

    report = await report_of(bed, wf)
    rows = [(a["attempt"], a["state"], a["cpu"], a["maxrss_kb"]) for a in report["attempts"]]
    assert rows == [(1, "failed", 2.5, 4096), (2, "succeeded", 1.0, 8192)]
    assert report["attempts"][1]["node"] == "n1"
    assert (report["totals"]["attempts"], report["totals"]["cpu"]) == (2, 3.5)
    [group] = report["groups"]
    assert (group["group"], group["attempts"], group["max_rss_kb"]) == ("j", 2, 8192)


async def test_a_killed_attempt_still_says_how_it_ended(bed: Bed) -> None:
    bed.executor.set("slow", hangs())
    wf = await bed.submit("jobs:\n  slow: {run: x, timeout: 0.1}\n")
    await bed.final(wf)
    [usage] = await bed.events(wf, "job.usage")
    assert usage["data"]["outcome"] == "timed_out"
    assert "usage" not in usage["data"]  # the executor had no figures for it


async def test_an_attempt_adopted_by_a_new_daemon_gets_its_cost(bed: Bed) -> None:
    wf = await bed.submit("jobs:\n  long: {run: x}\n")
    bed.executor.set("long", hangs())
    attempt = await bed.executor.launched("long")
    await bed.job_reaches(wf, "long", J.RUNNING)
    await bed.restart()
    assert await bed.executor.adopted("long") is attempt
    attempt.end(ExitStatus(exit_code=0, ended=time.time(), usage=SECOND))
    await bed.final(wf)
    [usage] = await bed.events(wf, "job.usage")
    assert Usage.from_data(usage["data"]["usage"]) == SECOND
    [entry] = (await report_of(bed, wf))["attempts"]
    assert (entry["state"], entry["maxrss_kb"], entry["start"] is not None) == (
        "succeeded",
        8192,
        True,
    )


async def test_jobs_that_never_ran_are_in_the_report_too(bed: Bed) -> None:
    bed.executor.set("bad", ended(1, None))
    wf = await bed.submit("jobs:\n  bad: {run: x}\n  after: {needs: [bad], run: x}\n")
    await bed.final(wf)
    report = await report_of(bed, wf)
    entries = {a["job"]: a for a in report["attempts"]}
    assert (entries["after"]["attempt"], entries["after"]["state"]) == (0, "skipped")
    assert entries["after"]["cached"] == "no" and entries["after"]["wall"] is None
    assert (entries["bad"]["source"], entries["bad"]["cpu"]) == (None, None)
    assert report["totals"]["jobs"] == 2 and report["totals"]["attempts"] == 1
