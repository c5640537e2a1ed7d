"""FastAPI dependencies the routers share: the app's `Services` and the lookups by ref.

`create_app` stores the services on the app; `ServicesDep` hands them to a route as
a parameter that FastAPI fills in and leaves out of the OpenAPI schema.  The
lookups turn a workflow reference (id or name) or a job name into its stored row,
or into the 404 that says what was not found.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ccd.api.services import Services
from ccd.errors import NotFound
from ccd.store import Store


# async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a
# thread hop on every request for what is an attribute read
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def find_workflow(store: Store, ref: str) -> dict[str, Any]:
    """The workflow `ref` names (an id, or a name: the newest workflow of that name)."""
    row = await store.find_workflow(ref)
    if row is None:
        raise NotFound(f"no workflow with id or name '{ref}' (see: ccctl ls)")
    return row


async def find_job(store: Store, workflow_id: str, job: str) -> dict[str, Any]:
    row = await store.get_job(workflow_id, job)
    if row is None:
        raise NotFound(f"workflow {workflow_id} has no job '{job}'")
    return row
