"""Reads of the cache table and of what each job's cache key was made of.

A job that succeeded with a cache key has a row in ``cache`` (written by the fold
with its success, see `ccd.store.schema`); its key's parts are in the ``cache``
data of its first launch event (or its ``job.cached`` event when it was reused),
so ``ccctl why`` can compare two runs part by part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from ccd.events import EventKind


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A succeeded job with a cache key, and the run its log and outputs come from."""

    workflow_id: str
    job: str
    attempt: int
    key: str
    origin_workflow: str
    origin_job: str
    origin_attempt: int
    outputs: dict[str, str]
    ended: float

    @property
    def origin(self) -> dict[str, Any]:
        return {
            "workflow_id": self.origin_workflow,
            "job": self.origin_job,
            "attempt": self.origin_attempt,
        }


_COLUMNS = (
    "workflow_id, job, attempt, key, origin_workflow, origin_job, origin_attempt, outputs, ended"
)


def _entry(row: Any) -> CacheEntry:
    values = list(row)
    values[7] = json.loads(values[7])
    return CacheEntry(*values)


class CacheReads:
    """The cache table, through the store's read connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def find(self, name: str, key: str, exclude: str) -> CacheEntry | None:
        """The newest entry with `key` among workflows named `name`, but not of
        workflow `exclude` (a job does not reuse its own workflow's runs)."""
        sql = (
            f"SELECT {_COLUMNS} FROM cache WHERE name = ? AND key = ? AND workflow_id != ?"
            " ORDER BY ended DESC LIMIT 1"
        )
        rows = list(await self._db.execute_fetchall(sql, (name, key, exclude)))
        return _entry(rows[0]) if rows else None

    async def of_job(self, workflow_id: str, job: str) -> CacheEntry | None:
        sql = f"SELECT {_COLUMNS} FROM cache WHERE workflow_id = ? AND job = ?"
        rows = list(await self._db.execute_fetchall(sql, (workflow_id, job)))
        return _entry(rows[0]) if rows else None

    async def keys_of(self, workflow_id: str, *, recovering: bool = False) -> dict[str, str]:
        """The cache key of each of the workflow's jobs that has an entry; `recovering`:
        also of each job launched but not ended (a new daemon adopts it, and its
        success is an entry), from the key its launch event recorded."""
        sql = "SELECT job, key FROM cache WHERE workflow_id = ?"
        rows = await self._db.execute_fetchall(sql, (workflow_id,))
        keys = {str(job): str(key) for job, key in rows}
        if recovering:
            sql = (
                "SELECT e.job, json_extract(e.data, '$.cache.key') FROM jobs AS j"
                " JOIN events AS e ON e.workflow_id = j.workflow_id AND e.job = j.name"
                " WHERE j.workflow_id = ? AND j.state IN ('queued', 'running', 'unreachable')"
                " AND e.kind = ? AND json_extract(e.data, '$.cache.key') IS NOT NULL"
                " ORDER BY e.seq"
            )
            params = (workflow_id, EventKind.JOB_STATE.value)
            for job, key in await self._db.execute_fetchall(sql, params):
                keys[str(job)] = str(key)
        return keys

    async def latest_run(
        self, name: str, job: str, before: float, exclude: str
    ) -> CacheEntry | None:
        """The newest success of job `job` in a workflow named `name` that ended before
        `before`, other than workflow `exclude`: what a resume would have compared with."""
        sql = (
            f"SELECT {_COLUMNS} FROM cache WHERE name = ? AND job = ? AND workflow_id != ?"
            " AND ended <= ? ORDER BY ended DESC LIMIT 1"
        )
        rows = list(await self._db.execute_fetchall(sql, (name, job, exclude, before)))
        return _entry(rows[0]) if rows else None

    async def note(self, workflow_id: str, job: str) -> dict[str, Any] | None:
        """What the job's newest cache decision recorded: the ``cache`` data of its
        launch event, or a ``job.cached`` event's data (with ``"reused": true``)."""
        sql = (
            "SELECT kind, data FROM events WHERE workflow_id = ? AND job = ?"
            " AND (kind = ? OR (kind = ? AND json_extract(data, '$.cache') IS NOT NULL))"
            " ORDER BY seq DESC LIMIT 1"
        )
        params = (workflow_id, job, EventKind.JOB_CACHED.value, EventKind.JOB_STATE.value)
        rows = list(await self._db.execute_fetchall(sql, params))
        if not rows:
            return None
        kind, text = rows[0]
        data: dict[str, Any] = json.loads(text)
        if kind == EventKind.JOB_CACHED.value:
            return {**data, "reused": True}
        note: dict[str, Any] = data["cache"]
        return {**note, "reused": False}

    async def dependents(self, workflow_ids: list[str]) -> list[tuple[str, str, str]]:
        """(workflow, job, origin workflow) of the jobs outside `workflow_ids` that
        reused a run of one of them: what deleting them would take away."""
        sql = (
            "SELECT workflow_id, job, origin_workflow FROM cache"
            " WHERE origin_workflow IN (SELECT value FROM json_each(?))"
            " AND workflow_id NOT IN (SELECT value FROM json_each(?))"
            " AND workflow_id != origin_workflow ORDER BY workflow_id, job"
        )
        ids = json.dumps(workflow_ids)
        rows = await self._db.execute_fetchall(sql, (ids, ids))
        return [(str(a), str(b), str(c)) for a, b, c in rows]
