"""Retention: which finished workflows are old enough to go, and deleting them.

`select_expired` only reads, so it serves a dry run on the read connection.
`delete_expired` runs as an operation of the store's single writer (see
`Store.delete_expired`): the choice is made again inside the deleting
transaction, so a workflow that was retried in the meantime is never touched,
and events emitted before the operation are committed before it runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from ccd.fold import dumps
from ccd.states import FINAL_WORKFLOW_STATES

_FINAL = tuple(sorted(s.value for s in FINAL_WORKFLOW_STATES))
_EXPIRED = f"""
    SELECT id, name, state, ended FROM workflows
     WHERE state IN ({", ".join("?" * len(_FINAL))}) AND ended < ?
     ORDER BY ended, rowid
"""
_IDS = "SELECT value FROM json_each(?)"
_EVENT_COUNTS = f"""
    SELECT workflow_id, count(*) FROM events WHERE workflow_id IN ({_IDS}) GROUP BY workflow_id
"""
# Every remote attempt's run directory (SSH jobs, Slurm jobs on a cluster over SSH):
# the current attempt's handle is in the jobs table, earlier attempts' handles are in
# their launch events.
_SSH_DIRS = f"""
    SELECT workflow_id, json_extract(handle, '$.host'), json_extract(handle, '$.run_dir')
      FROM jobs
     WHERE workflow_id IN ({_IDS}) AND json_extract(handle, '$.executor') IN ('ssh', 'slurm')
       AND json_extract(handle, '$.host') != 'localhost'
    UNION
    SELECT workflow_id, json_extract(data, '$.handle.host'), json_extract(data, '$.handle.run_dir')
      FROM events
     WHERE workflow_id IN ({_IDS}) AND kind IN ('job.state', 'job.launched')
       AND json_extract(data, '$.handle.executor') IN ('ssh', 'slurm')
       AND json_extract(data, '$.handle.host') != 'localhost'
"""
# Children first: events and jobs reference workflows.
_DELETES = (
    f"DELETE FROM events WHERE workflow_id IN ({_IDS})",
    f"DELETE FROM jobs WHERE workflow_id IN ({_IDS})",
    f"DELETE FROM workflows WHERE id IN ({_IDS})",
)


@dataclass(frozen=True, slots=True)
class ExpiredWorkflow:
    id: str
    name: str
    state: str
    ended: float
    events: int


@dataclass(frozen=True, slots=True)
class KeptWorkflow:
    """An expired workflow kept because jobs of newer workflows reuse its runs."""

    id: str
    name: str
    #: "workflow/job" of each job that reuses one of its runs
    reused_by: list[str]


@dataclass(slots=True)
class Expired:
    """Finished workflows older than a cutoff, and what deleting them frees."""

    workflows: list[ExpiredWorkflow] = field(default_factory=list)
    #: (workflow id, host, remote run directory) of every SSH attempt of those workflows
    ssh_dirs: list[tuple[str, str, str]] = field(default_factory=list)
    #: bytes the database file (with its WAL) shrank by; 0 for a dry run
    db_bytes_freed: int = 0
    #: old enough, but kept: newer workflows reuse their runs (--resume)
    kept: list[KeptWorkflow] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(w.events for w in self.workflows)

    @property
    def ids(self) -> list[str]:
        return [w.id for w in self.workflows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflows": [
                {"id": w.id, "name": w.name, "state": w.state, "ended": w.ended, "events": w.events}
                for w in self.workflows
            ],
            "events": self.events,
            "ssh_dirs": [{"workflow": w, "host": h, "run_dir": d} for w, h, d in self.ssh_dirs],
            "db_bytes_freed": self.db_bytes_freed,
            "kept": [{"id": k.id, "name": k.name, "reused_by": k.reused_by} for k in self.kept],
        }


async def select_expired(
    db: aiosqlite.Connection, cutoff: float, exclude: Container[str] = ()
) -> Expired:
    """Final workflows that ended before `cutoff` (epoch seconds), minus `exclude`."""
    rows = [
        r for r in await db.execute_fetchall(_EXPIRED, (*_FINAL, cutoff)) if r[0] not in exclude
    ]
    if not rows:
        return Expired()
    rows, kept = await _keep_reused(db, rows)
    if not rows:
        return Expired(kept=kept)
    ids = dumps([r[0] for r in rows])
    counts = {wid: n for wid, n in await db.execute_fetchall(_EVENT_COUNTS, (ids,))}
    dirs = await db.execute_fetchall(_SSH_DIRS, (ids, ids))
    return Expired(
        workflows=[ExpiredWorkflow(r[0], r[1], r[2], r[3], counts.get(r[0], 0)) for r in rows],
        ssh_dirs=sorted({(str(w), str(h), str(d)) for w, h, d in dirs if h and d}),
        kept=kept,
    )


# A reused run's log and outputs are its origin's: a workflow whose runs are reused
# by a workflow that stays is kept with it (origins are never chains: a reuse points
# at the run that really ran).
_REUSERS = f"""
    SELECT origin_workflow, workflow_id, job FROM cache
     WHERE origin_workflow IN ({_IDS}) AND workflow_id NOT IN ({_IDS})
     ORDER BY origin_workflow, workflow_id, job
"""


async def _keep_reused(
    db: aiosqlite.Connection, rows: list[Any]
) -> tuple[list[Any], list[KeptWorkflow]]:
    """`rows` without the workflows whose runs a staying workflow reuses, and those."""
    ids = dumps([r[0] for r in rows])
    users: dict[str, list[str]] = {}
    for origin, user, job in await db.execute_fetchall(_REUSERS, (ids, ids)):
        users.setdefault(str(origin), []).append(f"{user}/{job}")
    if not users:
        return rows, []
    kept = [KeptWorkflow(r[0], r[1], users[r[0]]) for r in rows if r[0] in users]
    return [r for r in rows if r[0] not in users], kept


async def delete_expired(
    db: aiosqlite.Connection, file: Path, cutoff: float, exclude: Container[str]
) -> Expired:
    """Delete the expired workflows in one transaction, then VACUUM the file smaller.

    `db` must be the writer's connection, used by nothing else meanwhile.
    """
    before = _file_size(file)
    await db.execute("BEGIN IMMEDIATE")
    try:
        expired = await select_expired(db, cutoff, exclude)
        ids = dumps(expired.ids)
        for statement in _DELETES:
            await db.execute(statement, (ids,))
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
    if expired.workflows:
        # Deleted rows only become free pages: VACUUM rewrites the file without them,
        # and a TRUNCATE checkpoint moves the result out of the WAL (which VACUUM
        # filled) so that the files on disk really shrink.
        await db.execute("VACUUM")
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        expired.db_bytes_freed = max(0, before - _file_size(file))
    return expired


def _file_size(file: Path) -> int:
    """The database's bytes on disk: the file and its write-ahead log."""
    total = 0
    for path in (file, Path(f"{file}-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(path).st_size
    return total
