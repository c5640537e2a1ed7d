"""The dashboard's pages: the workflow list and one workflow, rendered on the server.

A page is complete HTML from the store's rows (readable before any script runs);
htmx swaps the list's table when a filter or page changes, and ``ccd.js`` keeps a
workflow page current from the event stream, starting after the `seq` the page
was rendered from (events carry absolute values, so one seen twice is harmless).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from ccd.api.deps import ServicesDep, find_workflow
from ccd.cli.format import STATE_COLOURS, STATE_ORDER, format_percent
from ccd.states import FINAL_JOB_STATES, FINAL_WORKFLOW_STATES, WorkflowState
from ccd.web.collapse import GROUP_ORDER

router = APIRouter(include_in_schema=False)
templates: Final = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: workflows a list page shows
PAGE_SIZE: Final = 50
#: the final states in the order their pieces fill a workflow's bar
DONE_ORDER: Final = ("succeeded", "skipped", "cancelled", "timed_out", "failed")
#: what a workflow page's script needs of each job (and the table shows)
JOB_KEYS: Final = (
    "name", "state", "progress", "attempt", "host", "exit_code", "message", "reason",
    "started", "ended", "needs",
)  # fmt: skip


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    """`template` with what every page needs: the CSRF value its requests send."""
    context.update(csrf=request.app.state.csrf, colours=STATE_COLOURS)
    return templates.TemplateResponse(request, template, context)


def duration(seconds: float | None) -> str:
    """``4s``, ``3m 05s``, ``2h 07m`` (empty for None)."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def clock(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def summary(row: dict[str, Any], now: float) -> dict[str, Any]:
    """A list row: its counts as done/total and its run time so far."""
    counts: dict[str, int] = row.get("counts") or {}
    total = sum(counts.values())
    done = sum(n for state, n in counts.items() if state in FINAL_JOB_STATES)
    return {
        **row,
        "total": total,
        "done": done,
        # the done part of the bar, a piece per final state in its colour
        "segments": [
            (state, 100.0 * counts[state] / total) for state in DONE_ORDER if counts.get(state)
        ],
        "started": clock(row["created"]),
        "duration": duration((row["ended"] or now) - row["created"]),
    }


@router.get("/", response_class=HTMLResponse)
async def workflows_page(
    request: Request,
    services: ServicesDep,
    state: str = "",
    name: str = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    """Newest first, filtered by state and by a part of the name, `PAGE_SIZE` a page
    (the store pages and filters: a list of 100,000 workflows reads 50 rows)."""
    store = services.store
    seq = store.last_seq  # the page follows the events after this one
    offset = (page - 1) * PAGE_SIZE
    rows, matched = await store.list_workflows_page(state, name, PAGE_SIZE, offset)
    pages = max(1, -(-matched // PAGE_SIZE))
    if page > pages:  # fewer than before (gc): the last page there is
        page = pages
        offset = (page - 1) * PAGE_SIZE
        rows, matched = await store.list_workflows_page(state, name, PAGE_SIZE, offset)
    now = time.time()
    shown = [summary(row, now) for row in rows]
    # htmx asks for the table alone when a filter changes or a page is turned
    template = "workflow_rows.html" if request.headers.get("hx-request") else "workflows.html"
    return render(
        request,
        template,
        workflows=shown,
        state=state,
        name=name,
        page=page,
        pages=pages,
        matched=matched,
        seq=seq,
        states=[s.value for s in WorkflowState],
    )


def job_view(job: dict[str, Any], now: float) -> dict[str, Any]:
    """A job row for the table, with its shown texts worked out once, here."""
    end = job["ended"] or (now if job["started"] is not None else None)
    elapsed = None if job["started"] is None or end is None else end - job["started"]
    return {
        **{key: job.get(key) for key in JOB_KEYS},
        "percent": format_percent(job.get("progress")),
        "elapsed": duration(elapsed),
    }


@router.get("/w/{ref}", response_class=HTMLResponse)
async def workflow_page(request: Request, ref: str, services: ServicesDep) -> HTMLResponse:
    store = services.store
    seq = store.last_seq  # the script follows events after this one
    row = await find_workflow(store, ref)
    jobs = await store.get_jobs(row["id"])
    now = time.time()
    views = [job_view(job, now) for job in jobs]
    initial = {
        "id": row["id"],
        "name": row["name"],
        "state": row["state"],
        "seq": seq,
        "created": row["created"],
        "ended": row["ended"],
        "jobs": [{key: job.get(key) for key in JOB_KEYS} for job in jobs],
        "colours": STATE_COLOURS,  # the graph's fills, as `ccctl graph` draws them
        "order": STATE_ORDER,  # and its summary line's order of states
        "final": sorted(FINAL_JOB_STATES),
        "done_order": DONE_ORDER,
        "final_workflow": sorted(FINAL_WORKFLOW_STATES),
        "group_order": GROUP_ORDER,  # which state colours a folded group
    }
    return render(
        request,
        "workflow.html",
        workflow=summary({**row, "counts": _counts(jobs)}, now),
        jobs=views,
        # into a <script type="application/json">: no "<" may close or comment it out
        # ("<" appears only inside JSON strings, where \u003c means the same)
        initial=json.dumps(initial).replace("<", "\\u003c"),
    )


def _counts(jobs: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    return counts
