"""``GET /v1/workflows/{ref}/jobs/{job}/why``: why a job ran, or whose run it reused.

The answer compares the job's cache key parts (`ccd.caching`) with those of the
newest earlier success of the same job in a workflow of the same name: the run a
``--resume`` would have reused.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from ccd.api.deps import ServicesDep, find_job, find_workflow
from ccd.api.models import ERRORS
from ccd.caching import changes
from ccd.store import Store
from ccd.store.cache import CacheEntry

router = APIRouter(responses=ERRORS)


class Why(BaseModel):
    workflow_id: str
    job: str
    state: str
    #: ``reused`` (an earlier run's result), ``ran``, or ``undecided`` (not started yet)
    decision: str
    #: the whole answer in a few sentences
    summary: str
    key: str | None = None
    #: the run reused, or the one compared with: {workflow_id, job, attempt}
    origin: dict[str, Any] | None = None
    compared_with: dict[str, Any] | None = None
    #: what differs from the run compared with, one sentence each
    changes: list[str] = []


@router.get("/v1/workflows/{ref}/jobs/{job}/why", response_model=Why)
async def why(ref: str, job: str, services: ServicesDep) -> dict[str, Any]:
    """Why the job ran, or which earlier run it reused, and what changed since."""
    store = services.store
    workflow = await find_workflow(store, ref)
    row = await find_job(store, workflow["id"], job)
    answer: dict[str, Any] = {"workflow_id": workflow["id"], "job": job, "state": row["state"]}
    note = await store.cache.note(workflow["id"], job)
    if note is None:
        return {**answer, "decision": "undecided", "summary": _undecided(row["state"])}
    answer["key"] = note.get("key")
    if note.get("reused"):
        origin = note["origin"]
        summary = (
            f"reused the run of {origin['job']} in workflow {origin['workflow_id']} "
            f"(attempt {origin['attempt']}): it has the same cache key, so nothing "
            "this job depends on changed since"
        )
        return {**answer, "decision": "reused", "summary": summary, "origin": origin}
    answer["decision"] = "ran"
    if note.get("off"):
        return {**answer, "summary": "cache: false: this job always runs"}
    before = row["started"] or row["ended"] or time.time()
    other = await store.cache.latest_run(workflow["name"], job, before, exclude=workflow["id"])
    said = await _changes(store, other, note.get("parts") or {})
    if other is not None:
        answer["compared_with"] = other.origin  # the run that really ran
    answer["changes"] = said
    answer["summary"] = _ran(note, workflow["name"], job, other, said)
    return answer


async def _changes(store: Store, other: CacheEntry | None, parts: dict[str, str]) -> list[str]:
    if other is None:
        return []
    earlier = await store.cache.note(other.workflow_id, other.job)
    if earlier is None or not isinstance(earlier.get("parts"), dict):
        return ["the earlier run recorded no key parts"]
    return changes(earlier["parts"], parts)


def _ran(
    note: dict[str, Any], name: str, job: str, other: CacheEntry | None, said: list[str]
) -> str:
    miss = note.get("miss")
    if miss == "a rerun runs it again":
        return "a rerun asked for it to run again"
    if other is None:
        return f"no earlier workflow named {name} has a successful run of {job} to reuse"
    where = f"workflow {other.origin_workflow}"
    if miss and miss.startswith("output file"):
        return f"{miss} ({where}), so it ran again"
    if not note.get("resume"):
        if not said:
            return (
                f"the workflow was not submitted with --resume; with it, the run in {where} "
                "would have been reused (same cache key)"
            )
        return (
            f"the workflow was not submitted with --resume; besides, since the run in {where}: "
            + "; ".join(said)
        )
    if not said:
        return f"its cache key differs from the run in {where}"
    return f"since the run in {where}: " + "; ".join(said)


def _undecided(state: str) -> str:
    if state in ("pending", "queued"):
        return "the job has not started yet, so no cache decision was made"
    return "no cache decision was recorded for this job (it did not get to run)"
