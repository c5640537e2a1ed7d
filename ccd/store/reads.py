"""Queries of the current state and the event log (read connection only).

Every read is a single statement: the read connection is shared by all callers
and runs in autocommit mode, so each statement sees one consistent snapshot
without an explicit transaction another caller could interleave with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

_WORKFLOW_FIELDS = ("id", "name", "state", "source", "created", "updated", "ended", "counts")
_WORKFLOW_SELECT = """
    SELECT w.id, w.name, w.state, w.source, w.created, w.updated, w.ended,
           (SELECT json_group_object(state, n)
              FROM (SELECT state, count(*) AS n FROM jobs
                     WHERE workflow_id = w.id GROUP BY state)) AS counts
      FROM workflows AS w
"""
# rowid breaks ties between workflows submitted within the clock's resolution.
_NEWEST = "ORDER BY w.created DESC, w.rowid DESC"

_JOB_FIELDS = (
    "workflow_id", "name", "position", "state", "attempt", "progress", "message",
    "exit_code", "reason", "host", "executor", "needs", "handle", "outputs",
    "started", "ended", "updated",
)  # fmt: skip
_JOB_SELECT = f"SELECT {', '.join(_JOB_FIELDS)} FROM jobs"


def _workflow(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_WORKFLOW_FIELDS, row, strict=True))
    out["counts"] = json.loads(out["counts"])
    return out


def _job(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_JOB_FIELDS, row, strict=True))
    out["needs"] = json.loads(out["needs"])
    out["handle"] = None if out["handle"] is None else json.loads(out["handle"])
    out["outputs"] = json.loads(out["outputs"])
    return out


async def _rows(db: aiosqlite.Connection, sql: str, params: Iterable[Any]) -> list[Any]:
    return list(await db.execute_fetchall(sql, tuple(params)))


async def list_workflows(db: aiosqlite.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await _rows(db, f"{_WORKFLOW_SELECT} {_NEWEST} LIMIT ?", (limit,))
    return [_workflow(r) for r in rows]


#: a page of the list: a state ('' for any) and a part of the name ('' for any)
_MATCHING = "WHERE (?1 = '' OR w.state = ?1) AND (?2 = '' OR instr(lower(w.name), lower(?2)) > 0)"


async def list_workflows_page(
    db: aiosqlite.Connection, state: str, name: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The dashboard's list: a page of the matching workflows, newest first, and how
    many match.  Two statements: a workflow submitted between them is counted or
    shown a moment early, which a list that draws itself again does not mind."""
    count = "SELECT count(*) FROM workflows AS w " + _MATCHING
    [[total]] = await _rows(db, count, (state, name))
    page = f"{_WORKFLOW_SELECT} {_MATCHING} {_NEWEST} LIMIT ?3 OFFSET ?4"
    rows = await _rows(db, page, (state, name, limit, offset))
    return [_workflow(r) for r in rows], int(total)


async def find_workflow(db: aiosqlite.Connection, ref: str) -> dict[str, Any] | None:
    # An id wins over a name, so a workflow can always be named unambiguously.
    rows = await _rows(db, f"{_WORKFLOW_SELECT} WHERE w.id = ?", (ref,))
    if not rows:
        rows = await _rows(db, f"{_WORKFLOW_SELECT} WHERE w.name = ? {_NEWEST} LIMIT 1", (ref,))
    return _workflow(rows[0]) if rows else None


async def get_jobs(db: aiosqlite.Connection, workflow_id: str) -> list[dict[str, Any]]:
    rows = await _rows(db, f"{_JOB_SELECT} WHERE workflow_id = ? ORDER BY position", (workflow_id,))
    return [_job(r) for r in rows]


# The same fields as `get_jobs`, as one JSON array built by SQLite: for a workflow of
# 10,000 jobs this is ~5x faster than rows -> dicts -> JSON in Python, and it runs
# in the connection's thread instead of the event loop.  The JSON columns are
# embedded as JSON, not as strings.
#
# Computed fields can be asked for too.  `elapsed`: whole seconds from `started`
# to `ended`, or to now while the job runs (the daemon's clock; null before the
# start).  `ccctl status` needs only that of the two times, and turning two REALs
# per job into text is half of SQLite's work for a 10,000-job status.
_COMPUTED = {
    "elapsed": "CAST(COALESCE(ended, (julianday('now') - 2440587.5) * 86400.0) - started"
    " AS INTEGER)",
}
JOB_FIELDS = frozenset(_JOB_FIELDS) | frozenset(_COMPUTED)


def _jobs_json_sql(fields: Sequence[str], rows: bool = False) -> str:
    """Each job as an object, or (`rows`) as an array of `fields` in that order."""

    def value(f: str) -> str:
        if f in _COMPUTED:
            return _COMPUTED[f]
        return f"json({f})" if f in ("needs", "handle", "outputs") else f

    if rows:
        item = "json_array(" + ", ".join(value(f) for f in fields) + ")"
    else:
        item = "json_object(" + ", ".join(f"'{f}', {value(f)}" for f in fields) + ")"
    return (
        f"SELECT json_group_array(json(j)) FROM (SELECT {item} AS j "
        "FROM jobs WHERE workflow_id = ? ORDER BY position)"
    )


_JOBS_JSON = _jobs_json_sql(_JOB_FIELDS)


async def get_jobs_json(
    db: aiosqlite.Connection,
    workflow_id: str,
    fields: Sequence[str] | None = None,
    as_rows: bool = False,
) -> str:
    """The jobs as a JSON array text; only `fields` (names checked against JOB_FIELDS
    by the caller: they become SQL) when given, each job an array of them if `as_rows`."""
    sql = _JOBS_JSON if fields is None else _jobs_json_sql(fields, as_rows)
    found = await _rows(db, sql, (workflow_id,))
    return str(found[0][0])


async def get_job(db: aiosqlite.Connection, workflow_id: str, name: str) -> dict[str, Any] | None:
    rows = await _rows(db, f"{_JOB_SELECT} WHERE workflow_id = ? AND name = ?", (workflow_id, name))
    return _job(rows[0]) if rows else None


#: one event as a JSON text, built by SQLite (in its thread, off the event loop)
_EVENT_JSON = (
    "SELECT seq, json_object('seq', seq, 'workflow_id', workflow_id, 'job', job,"
    " 'time', time, 'kind', kind, 'data', json(data)) FROM events"
)


async def events_json(
    db: aiosqlite.Connection, workflow_id: str | None, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    params: tuple[Any, ...]
    if workflow_id is None:
        sql, params = f"{_EVENT_JSON} WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
    else:
        sql = f"{_EVENT_JSON} WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        params = (workflow_id, after_seq, limit)
    return [(int(seq), str(text)) for seq, text in await _rows(db, sql, params)]


async def events_of_kinds(
    db: aiosqlite.Connection, workflow_id: str, kinds: Sequence[str]
) -> list[tuple[str | None, float, str, str]]:
    """A workflow's events of these kinds, oldest first: (job, time, kind, data as
    JSON text), decoded by the caller (off the event loop, for a big workflow)."""
    marks = ", ".join("?" for _ in kinds)
    sql = (
        f"SELECT job, time, kind, data FROM events WHERE workflow_id = ? AND kind IN ({marks})"
        " ORDER BY seq"
    )
    return [tuple(row) for row in await _rows(db, sql, (workflow_id, *kinds))]


async def unfinished_workflows(db: aiosqlite.Connection) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, name, state, source, created, updated, ended, spec FROM workflows"
        " WHERE state = 'running' ORDER BY created, rowid"
    )
    fields = ("id", "name", "state", "source", "created", "updated", "ended", "spec")
    out = []
    for row in await _rows(db, sql, ()):
        item = dict(zip(fields, row, strict=True))
        item["spec"] = json.loads(item["spec"])
        out.append(item)
    return out


async def get_job_spec(
    db: aiosqlite.Connection, workflow_id: str, name: str
) -> dict[str, Any] | None:
    """One job's spec, taken out of the workflow's by SQLite (a 100,000-job spec is
    ~29 MB of JSON: not decoded in Python for one job)."""
    path = '$.jobs."' + name.replace('"', "") + '"'
    sql = "SELECT json_extract(spec, ?) FROM workflows WHERE id = ?"
    rows = await _rows(db, sql, (path, workflow_id))
    if not rows or rows[0][0] is None:
        return None
    job: dict[str, Any] = json.loads(rows[0][0])
    return job


async def get_spec(db: aiosqlite.Connection, workflow_id: str) -> dict[str, Any] | None:
    rows = await _rows(db, "SELECT spec FROM workflows WHERE id = ?", (workflow_id,))
    if not rows:
        return None
    spec: dict[str, Any] = json.loads(rows[0][0])
    return spec
