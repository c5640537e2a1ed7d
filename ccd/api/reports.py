"""``GET /v1/workflows/{ref}/report``: what every attempt of a workflow cost.

Built from the job rows and the workflow's ``job.state``/``job.usage`` events by the
pure `ccd.report.build` (in a worker thread: a big workflow has many events);
`ccctl report` draws it as a table, JSON or a self-contained HTML page.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from ccd.api.deps import ServicesDep, find_workflow
from ccd.api.models import ERRORS
from ccd.report.build import REPORT_KINDS, build_report

router = APIRouter(responses=ERRORS)


class AttemptCost(BaseModel):
    """One attempt (attempt 0: a job that never ran: skipped, cancelled, cached)."""

    job: str
    #: an array or foreach element's job, else the job itself
    group: str
    attempt: int
    state: str
    host: str
    #: the machine it ran on, when its host said (a Slurm node)
    node: str | None
    executor: str
    #: a batch job's submit time (epoch seconds)
    submitted: float | None
    start: float | None
    end: float | None
    #: seconds
    wall: float | None
    #: user + system CPU seconds
    cpu: float | None
    cpu_user: float | None
    cpu_sys: float | None
    #: CPU over wall: 200 is two cores busy all along
    cpu_percent: float | None
    #: peak RSS in KiB: of the largest process (kernel, wrapper), or the largest
    #: sampled sum of a step's processes (sacct)
    maxrss_kb: int | None
    #: True: the peak is at most maxrss_kb (a local job smaller than the daemon)
    maxrss_bound: bool
    exit_code: int | None
    reason: str | None
    #: the workflow the result was taken from, or "no"
    cached: str
    #: kernel, wrapper, times (CPU only), sacct; None: no figures
    source: str | None


class Totals(BaseModel):
    jobs: int
    attempts: int
    start: float | None
    end: float | None
    #: seconds from the first start to the last end
    span: float | None
    #: the attempts' wall and CPU seconds added up
    wall: float
    cpu: float
    #: CPU over span
    cpu_percent: float | None
    maxrss_kb: int | None
    maxrss_bound: bool


class Requests(BaseModel):
    """Slurm requests that would have held the group's largest attempt, with headroom."""

    mem: str | None
    time: str | None
    cpus: int | None


class GroupCost(BaseModel):
    group: str
    jobs: int
    attempts: int
    executor: str
    max_wall: float | None
    max_cpu_percent: float | None
    max_rss_kb: int | None
    max_rss_bound: bool
    suggest: Requests


class RunReport(BaseModel):
    #: id, name, state, created, ended
    workflow: dict[str, Any]
    #: when the report was made (running attempts' bars end here)
    generated: float
    attempts: list[AttemptCost]
    totals: Totals
    groups: list[GroupCost]


@router.get("/v1/workflows/{ref}/report", responses={200: {"model": RunReport}})
async def report(ref: str, services: ServicesDep) -> Response:
    """What every attempt of the workflow cost: wall and CPU time, peak RSS, exit, host,
    start and end (what `ccctl report` shows), with totals and, per job group, the
    largest figures and Slurm requests that would have held them."""
    store = services.store
    workflow = await find_workflow(store, ref)
    rows = await store.get_jobs(workflow["id"])
    events = await store.events_of_kinds(workflow["id"], REPORT_KINDS)
    body = await asyncio.to_thread(_encoded, workflow, rows, events)
    return Response(body, media_type="application/json")


def _encoded(
    workflow: dict[str, Any],
    rows: list[dict[str, Any]],
    events: list[tuple[str | None, float, str, str]],
) -> bytes:
    decoded = (
        {"job": job, "time": when, "kind": kind, "data": json.loads(data)}
        for job, when, kind, data in events
    )
    return json.dumps(build_report(workflow, rows, decoded, time.time())).encode()
