"""The API's answers as pydantic models, and the workflow file as a request body.

Small answers are returned through their model (`response_model`).  Big ones, the
workflow list and the status a watcher starts from, are only declared with them
(`responses=`): their rows go out as they are, never validated one by one.  A
workflow arrives as its YAML text, read raw from the request (fast, with a size
limit), so its body is declared in the document by hand (`YAML_BODY`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: the request body of the routes that take a workflow file (`openapi_extra`)
YAML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the workflow file (YAML)",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


class Health(BaseModel):
    status: str
    version: str
    pid: int
    #: seconds since the daemon started
    uptime: float
    state_dir: str
    #: the PATH local jobs start with (the daemon's own)
    job_path: str
    #: the variables the daemon config's ``environment:`` block set, by name
    environment: list[str]
    #: by mechanism (exits, files, processes, service), what this daemon uses
    #: (``pidfd``, ``inotify``, ``procfs``, ``systemd`` on Linux; ``ccd.platform``)
    platform: dict[str, str] = {}


class Stopping(BaseModel):
    status: str


class Validated(BaseModel):
    name: str
    #: how many jobs (array elements counted one by one)
    jobs: int


class Submitted(BaseModel):
    id: str
    name: str
    jobs: int


class Cancelled(BaseModel):
    id: str
    #: the job cancelled, or "workflow"
    cancelled: str
    #: events after this sequence number tell how the cancel went
    seq: int


class Added(BaseModel):
    id: str
    #: the jobs added, in the fragment's order
    added: list[str]


class Retried(BaseModel):
    id: str
    #: the jobs set to run again
    retried: list[str]


class WorkflowSummary(BaseModel):
    """A row of `ccctl ls`."""

    id: str
    name: str
    state: str
    source: str
    created: float
    updated: float
    ended: float | None
    #: jobs per state
    counts: dict[str, int]


class WorkflowStatus(WorkflowSummary):
    """The workflow and its jobs: what `ccctl status` shows."""

    #: the last event this status may reflect; follow the events from here
    seq: int
    #: with `rows`: the fields each job's array holds, in order
    job_fields: list[str] | None = Field(default=None)
    #: jobs in file order: objects, or (with `rows`) arrays of `job_fields`
    jobs: list[dict[str, Any] | list[Any]]


class ProblemOut(BaseModel):
    """One problem in a workflow file (`ccd.errors.Problem`)."""

    file: str
    #: 1-based; 0 when the problem has no position
    line: int
    column: int
    #: short stable identifier, e.g. ``unknown-key``
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error's body: 400 bad request, 404 not found, 409 conflict, 422 invalid
    workflow (with every problem found)."""

    error: str
    problems: list[ProblemOut] | None = None


#: the routers' error answers, declared once (the app's handlers shape them: ccd.api.app)
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": {"model": ErrorBody}}
