"""``POST /v1/workflows/{ref}/jobs``: jobs added to a running workflow."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from ccd.api.deps import ServicesDep, find_workflow
from ccd.api.models import ERRORS, YAML_BODY, Added
from ccd.api.workflows import config_checks, request_text
from ccd.spec.additions import load_added_jobs

router = APIRouter(responses=ERRORS)


@router.post(
    "/v1/workflows/{ref}/jobs", status_code=201, response_model=Added, openapi_extra=YAML_BODY
)
async def add_jobs(
    ref: str, request: Request, services: ServicesDep, source: str | None = None
) -> dict[str, Any]:
    """Add jobs to a running workflow. The body is a fragment of a workflow file
    (``jobs:``, and ``defaults:`` for them), checked against the workflow's jobs: new
    names, parents old or new, no cycle. A job whose parents have all succeeded
    starts at once; one needing a failed job is skipped. 409 once the workflow ended."""
    workflow_id = (await find_workflow(services.store, ref))["id"]
    running = services.engine.live_spec(workflow_id)  # Conflict once it has ended
    body, name, base_dir = await request_text(request, source)
    jobs = await asyncio.to_thread(
        load_added_jobs,
        body,
        running,
        source=name,
        base_dir=base_dir,
        **config_checks(services.config),
    )
    return {"id": workflow_id, "added": await services.engine.add_jobs(workflow_id, jobs)}
