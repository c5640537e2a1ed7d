"""Routes that look after the daemon itself: health, shutdown and gc.

`health` is what `ccctl` pings before anything else, so it touches neither the
store nor the engine.  `gc` hands its request to `ccd.retention`, telling it
which workflows the engine still drives so they are never deleted.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from ccd import __version__, retention
from ccd.api.deps import ServicesDep
from ccd.api.models import ERRORS, Health, Stopping
from ccd.api.services import EngineControl
from ccd.errors import CcdError
from ccd.spec.durations import parse_age

router = APIRouter(responses=ERRORS)


class GcRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: an age with a unit: 30d, 12h, 90m
    older_than: str
    dry_run: bool = False


class _Running:
    """The workflows the engine drives now, asked at the moment `gc` deletes."""

    def __init__(self, engine: EngineControl) -> None:
        self._engine = engine

    def __contains__(self, workflow_id: object) -> bool:
        return isinstance(workflow_id, str) and self._engine.is_running(workflow_id)


@router.get("/v1/health", response_model=Health)
async def health(services: ServicesDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "uptime": time.time() - services.started,
        "state_dir": str(services.config.state_dir),
        "job_path": os.environ.get("PATH", ""),
        "environment": list(services.config.environment),
        "platform": dict(services.platform),
    }


@router.post("/v1/shutdown", status_code=202, response_model=Stopping)
async def shutdown(services: ServicesDep) -> dict[str, str]:
    services.request_stop()
    return {"status": "stopping"}


@router.post("/v1/gc")
async def collect_garbage(body: GcRequest, services: ServicesDep) -> dict[str, Any]:
    """Delete finished workflows older than `older_than` (events, rows, run directories
    here and on SSH hosts), then shrink the database; `dry_run` only lists them."""
    try:
        seconds = parse_age(body.older_than)
    except ValueError as exc:
        raise CcdError(f"older_than: {exc}") from exc
    return await retention.collect(
        services.store,
        services.config.runs_dir,
        services.ssh,
        older_than=seconds,
        dry_run=body.dry_run,
        running=_Running(services.engine),
    )
