"""Routes that act on workflows: validate, submit, list, show, cancel and retry.

A workflow arrives as its YAML file in the request body and is validated off the
event loop; `show` is the status a watcher starts from, and is built from JSON
the store already encoded (see there).  Cancels and retries go to the engine.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ccd.api.deps import ServicesDep, find_job, find_workflow
from ccd.api.models import (
    ERRORS,
    YAML_BODY,
    Cancelled,
    Retried,
    Submitted,
    Validated,
    WorkflowStatus,
    WorkflowSummary,
)
from ccd.commands import EXECUTED_NOTEBOOK
from ccd.config import DaemonConfig
from ccd.engine.pool import check_capacity
from ccd.errors import CcdError, NotFound
from ccd.executors.environment import declares_environment
from ccd.executors.wrapper import LOG, attempt_dir
from ccd.heap import gc_paused
from ccd.spec.export import export_yaml
from ccd.spec.model import Workflow
from ccd.spec.validate import load_workflow_text
from ccd.store.reads import JOB_FIELDS

router = APIRouter(responses=ERRORS)

#: the largest workflow file the API accepts
MAX_BODY = 32 * 1024 * 1024

#: what `spec` answers (it builds its body itself): YAML text, or the model as JSON
SPEC_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the workflow as canonical YAML that validates and resubmits to the "
        "same workflow; with format=json, the checked workflow the daemon runs",
        "model": Workflow,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
    }
}


async def read_spec(
    request: Request, source: str | None, config: DaemonConfig, params: str | None = None
) -> Workflow:
    """The validated workflow in the request body (YAML); `source` is its file;
    `params` the values of its parameters given at submit (a JSON object of texts)."""
    body, name, base_dir = await request_text(request, source)
    # validation is CPU work that grows with the file: keep it off the loop
    return await asyncio.to_thread(
        load_workflow_text,
        body,
        source=name,
        base_dir=base_dir,
        params=given_params(params),
        **config_checks(config),
    )


def config_checks(config: DaemonConfig) -> dict[str, Any]:
    """What a workflow is checked against that the daemon's config says: the hosts
    it knows, and whether local jobs get their programs from an environment."""
    return {
        "known_hosts": config.known_hosts(),
        "local_environment": declares_environment(config.host_config("localhost")),
    }


def given_params(text: str | None) -> dict[str, str]:
    """``?params={"epochs": "20"}``: parameter values given at submit, as texts."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CcdError(f'params must be a JSON object of texts, e.g. {{"epochs": "20"}}: {text!r}')
    return value


async def request_text(request: Request, source: str | None) -> tuple[bytes, str, Path | None]:
    """The body of a request holding workflow YAML, the name its problems are
    reported under, and the directory its relative paths are read from: that of
    its file `source`; None without one (the loader then refuses relative paths)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise CcdError(f"workflow is {len(body)} bytes; the limit is {MAX_BODY}")
    if not source:
        return body, "<request>", None
    path = Path(source)
    if not path.is_absolute():
        raise CcdError(
            f"source must be the workflow file's absolute path, not {source!r} "
            "(e.g. ?source=/abs/path/of/wf.yaml)"
        )
    return body, str(path), path.parent


@router.post("/v1/validate", response_model=Validated, openapi_extra=YAML_BODY)
async def validate(
    request: Request, services: ServicesDep, source: str | None = None, params: str | None = None
) -> dict[str, Any]:
    """Validate a workflow (the body, YAML) without running it; `params`: values for
    its parameters, a JSON object of texts."""
    with gc_paused():
        spec = await read_spec(request, source, services.config, params)
    # what submit refuses too: a local job asking for more than its host has
    check_capacity(spec, services.config)
    return {"name": spec.name, "jobs": len(spec.jobs)}


@router.post("/v1/workflows", status_code=201, response_model=Submitted, openapi_extra=YAML_BODY)
async def submit(
    request: Request,
    services: ServicesDep,
    source: str | None = None,
    params: str | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Submit a workflow: the body is the workflow file (YAML); `params`: values for
    its parameters (``--set``), a JSON object of texts, e.g. ``{"epochs": "20"}``;
    `resume`: reuse the earlier run (in a workflow of the same name) of each job whose
    cache key is unchanged, as ``resume: true`` in the file does."""
    with gc_paused():  # a big workflow is millions of objects, none garbage
        spec = await read_spec(request, source, services.config, params)
        if resume and not spec.resume:
            spec = spec.model_copy(update={"resume": True})
        workflow_id = await services.engine.submit(spec)
    return {"id": workflow_id, "name": spec.name, "jobs": len(spec.jobs)}


# declared, not validated: up to 10,000 rows go out as the store made them
@router.get("/v1/workflows", responses={200: {"model": list[WorkflowSummary]}})
async def list_workflows(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=10000)] = 100
) -> Any:
    return await services.store.list_workflows(limit)


# The docstring is the route's OpenAPI description, so its wording is part of the API.
@router.get("/v1/workflows/{ref}", responses={200: {"model": WorkflowStatus}})
async def show(
    ref: str, services: ServicesDep, fields: str | None = None, rows: bool = False
) -> Response:
    """The workflow and its jobs (in file order): what `ccctl status` shows.

    `fields` (comma-separated, e.g. ``name,state,progress``) limits what each job
    carries: a 10,000-job status is ~4 MB with handles and outputs.  Besides the
    stored fields, ``elapsed`` is whole seconds from start to end (or to now while
    the job runs).  With `rows`
    each job is an array of those fields in that order (named once, in
    ``job_fields``): half the bytes and a faster decode for big workflows."""
    wanted = _job_fields(fields)
    if rows and not wanted:
        raise CcdError("rows needs fields: name the job fields the rows hold, in order")
    store = services.store
    # events after `seq` may or may not be reflected below; a watcher that
    # applies them again converges, because events carry absolute values
    seq = store.last_seq
    row = await find_workflow(store, ref)
    row["seq"] = seq
    row.pop("spec", None)
    # the jobs' JSON comes from SQLite as text: a 10,000-job status is ~4 MB,
    # and decoding then re-encoding it in Python cost most of the request
    jobs = await store.get_jobs_json(row["id"], wanted, rows)
    if rows:
        row["job_fields"] = wanted
    body = json.dumps(row)[:-1] + ', "jobs": ' + jobs + "}"
    return Response(body.encode(), media_type="application/json")


@router.get("/v1/workflows/{ref}/spec", response_class=Response, responses=SPEC_ANSWER)
async def spec(
    ref: str, services: ServicesDep, format: Literal["yaml", "json"] = "yaml"
) -> Response:
    """The workflow as submitted: canonical YAML (what `ccctl export` writes), which
    validates and resubmits to the same workflow; array jobs are written as one job
    with ``array:``.  With ``format=json``, the checked workflow as the daemon stores
    and runs it (array jobs as their elements)."""
    store = services.store
    workflow_id = (await find_workflow(store, ref))["id"]
    dumped = await store.get_spec(workflow_id)
    if dumped is None:  # deleted between the two reads (ccctl gc)
        raise NotFound(f"workflow {workflow_id} was just deleted")
    if format == "json":
        return Response(json.dumps(dumped).encode(), media_type="application/json")
    # a big workflow is seconds of YAML writing: off the loop
    text = await asyncio.to_thread(export_yaml, dumped)
    return Response(text.encode(), media_type="application/yaml")


@router.get("/v1/workflows/{ref}/jobs/{job}")
async def show_job(ref: str, job: str, services: ServicesDep) -> dict[str, Any]:
    """One job: its row as in the status, its working directory (``run``: the
    attempt's run directory), the current attempt's run directory on the host where
    it runs, the local file that holds its log (what ``ccctl logs`` reads), and for
    a notebook job the executed notebook papermill writes there."""
    store = services.store
    workflow_id = (await find_workflow(store, ref))["id"]
    row = await find_job(store, workflow_id, job)
    spec = await store.get_job_spec(workflow_id, job)
    if spec is None and job.endswith("]"):
        # an element of a foreach job: the stored spec keeps the job as written
        spec = await store.get_job_spec(workflow_id, job[: job.rindex("[")])
    spec = spec or {}
    local = None
    if row["attempt"]:
        local = attempt_dir(services.config.runs_dir, workflow_id, job, row["attempt"])
    handle = row["handle"] or {}
    run_dir = handle.get("run_dir") or (None if local is None else str(local))
    notebook = None
    if run_dir is not None and str(spec.get("script") or "").endswith(".ipynb"):
        notebook = f"{run_dir}/{EXECUTED_NOTEBOOK}"
    return {
        **row,
        "workdir": spec.get("workdir"),
        "run_dir": run_dir,
        "log": None if local is None else str(local / LOG),
        "notebook": notebook,
    }


def _job_fields(fields: str | None) -> list[str] | None:
    """The job fields `show` was asked for, in order (None: all of them)."""
    if fields is None:
        return None
    wanted = [f for f in fields.split(",") if f]
    unknown = sorted(set(wanted) - JOB_FIELDS)
    if unknown:
        raise CcdError(f"unknown job fields {unknown}; known: {', '.join(sorted(JOB_FIELDS))}")
    return wanted


@router.post("/v1/workflows/{ref}/cancel", response_model=Cancelled)
async def cancel(ref: str, services: ServicesDep, job: str | None = None) -> dict[str, Any]:
    store = services.store
    row = await find_workflow(store, ref)
    if job is not None:
        await find_job(store, row["id"], job)
    seq = store.last_seq  # events after this one tell how the cancel went
    services.engine.cancel(row["id"], job)
    return {"id": row["id"], "cancelled": job or "workflow", "seq": seq}


@router.post("/v1/workflows/{ref}/jobs/{job}/cancel", response_model=Cancelled)
async def cancel_job(ref: str, job: str, services: ServicesDep) -> dict[str, Any]:
    return await cancel(ref, services, job)


@router.post("/v1/workflows/{ref}/retry", response_model=Retried)
async def retry(ref: str, services: ServicesDep) -> dict[str, Any]:
    row = await find_workflow(services.store, ref)
    jobs = await services.engine.retry(row["id"])
    return {"id": row["id"], "retried": jobs}


@router.post("/v1/workflows/{ref}/jobs/{job}/rerun", response_model=Retried)
async def rerun(
    ref: str, job: str, services: ServicesDep, downstream: bool = False
) -> dict[str, Any]:
    """Run one job of a finished workflow again, even if it succeeded (an array or
    foreach job: all its elements); with `downstream`, every job that needs it too.
    The other jobs keep their outcome and outputs."""
    row = await find_workflow(services.store, ref)
    jobs = await services.engine.rerun(row["id"], job, downstream)
    return {"id": row["id"], "retried": jobs}
