"""One batch's rows: loaded from the tables before the fold, written back after it.

The writer (`ccd.store.core`) folds a batch of events into the rows loaded here and
hands back the events to append; `persist` writes them and every row that changed,
in the batch's transaction, with one statement per kind of change.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from ccd.events import Event
from ccd.fold import Fold, JobRow, WorkflowRow, dumps

# CROSS JOIN makes json_each the outer loop, so each key is one primary-key lookup.
LOAD_WORKFLOWS = """
    SELECT w.id, w.name, w.state, w.source, w.created, w.updated, w.ended
      FROM json_each(?) AS k CROSS JOIN workflows AS w ON w.id = k.value
"""
JOB_COLUMNS = (
    "workflow_id, name, position, state, attempt, progress, message, exit_code, reason,"
    " host, executor, needs, handle, outputs, started, ended, updated"
)
LOAD_JOBS = f"""
    SELECT {", ".join("j." + c.strip() for c in JOB_COLUMNS.split(","))}
      FROM json_each(?) AS k CROSS JOIN jobs AS j
        ON j.workflow_id = json_extract(k.value, '$[0]') AND j.name = json_extract(k.value, '$[1]')
"""
INSERT_WORKFLOW = (
    "INSERT INTO workflows (id, name, state, spec, source, created, updated, ended)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * 17)})"
INSERT_EVENT = (
    "INSERT INTO events (seq, workflow_id, job, time, kind, data) VALUES (?, ?, ?, ?, ?, ?)"
)
UPDATE_WORKFLOW = "UPDATE workflows SET state = ?, updated = ?, ended = ? WHERE id = ?"
DELETE_JOB = "DELETE FROM jobs WHERE workflow_id = ? AND name = ?"
UPDATE_NEEDS = "UPDATE jobs SET needs = ? WHERE workflow_id = ? AND name = ?"
#: RFC 7396 merge patch, in SQLite: a null removes a job, objects merge, lists replace,
#: so a 100,000-job spec is changed without loading it into Python
PATCH_SPEC = "UPDATE workflows SET spec = json_patch(spec, ?) WHERE id = ?"
#: a job's cache entry; a rerun that succeeds again replaces it
UPSERT_CACHE = """
    INSERT OR REPLACE INTO cache (name, key, workflow_id, job, attempt, origin_workflow,
                                  origin_job, origin_attempt, outputs, ended)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
UPDATE_JOB = """
    UPDATE jobs SET state = ?, attempt = ?, progress = ?, message = ?, exit_code = ?,
                    reason = ?, handle = ?, outputs = ?, started = ?, ended = ?, updated = ?
     WHERE workflow_id = ? AND name = ?
"""


async def load(db: aiosqlite.Connection, batch: list[Event]) -> Fold:
    """The current rows of every workflow and job the batch names."""
    wids = list({event.workflow_id for event in batch})
    keys = list({(e.workflow_id, e.job) for e in batch if e.job is not None})
    workflows = {
        row[0]: WorkflowRow(*row)
        for row in await db.execute_fetchall(LOAD_WORKFLOWS, (dumps(wids),))
    }
    jobs: dict[tuple[str, str], JobRow] = {}
    if keys:
        for row in await db.execute_fetchall(LOAD_JOBS, (dumps(keys),)):
            jobs[(row[0], row[1])] = JobRow(*row)
    return Fold(workflows, jobs)


async def persist(db: aiosqlite.Connection, fold: Fold, events: list[tuple[Any, ...]]) -> None:
    workflows = list(fold.workflows.values())
    jobs = list(fold.jobs.values())
    # Parents first: foreign keys are checked per statement.
    if new_workflows := [_workflow_insert(w) for w in workflows if w.new]:
        await db.executemany(INSERT_WORKFLOW, new_workflows)
    if new_jobs := [_job_insert(j) for j in jobs if j.new]:
        await db.executemany(INSERT_JOB, new_jobs)
    if events:
        await db.executemany(INSERT_EVENT, events)
    if changed_jobs := [_job_update(j) for j in jobs if j.dirty and not j.new]:
        await db.executemany(UPDATE_JOB, changed_jobs)
    if changed := [(w.state, w.updated, w.ended, w.id) for w in workflows if w.dirty and not w.new]:
        await db.executemany(UPDATE_WORKFLOW, changed)
    # jobs added to a running workflow (a foreach job's elements replace it)
    if fold.deleted:
        await db.executemany(DELETE_JOB, fold.deleted)
    if fold.needs_changed:
        await db.executemany(UPDATE_NEEDS, fold.needs_changed)
    if fold.spec_patches:
        await db.executemany(PATCH_SPEC, fold.spec_patches)
    if fold.cache_rows:
        await db.executemany(UPSERT_CACHE, fold.cache_rows)


def _workflow_insert(w: WorkflowRow) -> tuple[Any, ...]:
    return (w.id, w.name, w.state, w.spec, w.source, w.created, w.updated, w.ended)


def _job_insert(j: JobRow) -> tuple[Any, ...]:
    return (
        j.workflow_id, j.name, j.position, j.state, j.attempt, j.progress, j.message,
        j.exit_code, j.reason, j.host, j.executor, j.needs, j.handle, j.outputs,
        j.started, j.ended, j.updated,
    )  # fmt: skip


def _job_update(j: JobRow) -> tuple[Any, ...]:
    return (
        j.state, j.attempt, j.progress, j.message, j.exit_code, j.reason, j.handle,
        j.outputs, j.started, j.ended, j.updated, j.workflow_id, j.name,
    )  # fmt: skip
