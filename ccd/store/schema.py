"""The database schema, its connection settings and its migrations.

The schema version lives in ``PRAGMA user_version``.  ``MIGRATIONS[v]`` upgrades
a database from version ``v`` to ``v + 1``; each runs in its own transaction
together with the version bump, so a crash mid-migration leaves the old version.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable

import aiosqlite

#: How long a connection waits for a lock held by another connection (ms).  Our
#: own writer is the only writer, so this only matters for outside tools (the
#: sqlite3 shell, a backup) that take the write lock for a moment.
BUSY_TIMEOUT_MS = 10_000

#: Durability of a commit.  In WAL mode NORMAL writes every commit into the WAL
#: (the OS page cache) but fsyncs only at checkpoints: a crash of *the process*
#: (SIGKILL, OOM, segfault) loses nothing committed; only an OS crash or power
#: loss can roll back the last few transactions.  FULL also fsyncs the WAL at
#: every commit, so a commit survives power loss too.  We pick FULL: the engine
#: records a remote job's handle (ssh pid, Slurm id) *before* it waits on it,
#: and a power loss on the daemon's host does not kill those jobs, so losing the
#: handle would mean a job ccd can never find again.  The cost is small because
#: the writer pays one fsync per batch, not per event.  Measured on a 2-core VM
#: (ext4, fsync ~0.35 ms): sustained emit throughput 22-40k events/s with either
#: setting (the run-to-run noise is larger than the difference); one lone awaited
#: `record()` takes a median ~0.6 ms with NORMAL and ~0.9-1.3 ms with FULL.
SYNCHRONOUS = "FULL"

SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

log = logging.getLogger(__name__)

#: the SQLite library aiosqlite uses (the one Python was built with)
SQLITE_VERSION = sqlite3.sqlite_version_info
#: ``ALTER TABLE ... DROP COLUMN`` arrived in SQLite 3.35 (March 2021)
DROP_COLUMN_SINCE = (3, 35, 0)

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]

_V1 = (
    """
    CREATE TABLE workflows (
        id      TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        state   TEXT NOT NULL,
        spec    TEXT NOT NULL,
        source  TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        ended   REAL
    )
    """,
    "CREATE INDEX workflows_name_created ON workflows (name, created)",
    # `ls` lists the newest workflows first, whatever their name.
    "CREATE INDEX workflows_created ON workflows (created)",
    """
    CREATE TABLE jobs (
        workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        position    INTEGER NOT NULL,
        state       TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        progress    REAL,
        message     TEXT,
        exit_code   INTEGER,
        reason      TEXT,
        host        TEXT NOT NULL,
        executor    TEXT NOT NULL,
        needs       TEXT NOT NULL,
        handle      TEXT,
        outputs     TEXT NOT NULL,
        started     REAL,
        ended       REAL,
        updated     REAL NOT NULL,
        PRIMARY KEY (workflow_id, name)
    )
    """,
    # AUTOINCREMENT: a seq is never reused, even after the newest events are
    # deleted, so a client resuming "after seq N" can never miss or repeat one.
    """
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        workflow_id TEXT NOT NULL REFERENCES workflows (id),
        job         TEXT,
        time        REAL NOT NULL,
        kind        TEXT NOT NULL,
        data        TEXT NOT NULL
    )
    """,
    "CREATE INDEX events_workflow_seq ON events (workflow_id, seq)",
)


async def _create_v1(db: aiosqlite.Connection) -> None:
    for statement in _V1:
        await db.execute(statement)


async def _jobs_by_position_v2(db: aiosqlite.Connection) -> None:
    # A workflow's jobs are read in spec order (`status`, the engine's restart):
    # through the primary key (workflow_id, name) that was a sort of every job plus
    # a table lookup each; 10,000 jobs read ~2x faster in index order.
    await db.execute("CREATE INDEX jobs_workflow_position ON jobs (workflow_id, position)")


async def _spec_last_v3(db: aiosqlite.Connection) -> None:
    # A column is found by walking the record from its start, and a spec longer
    # than a page lives in a chain of overflow pages: with `spec` fourth, reading
    # `source`, `created`, ... of a workflow walked that whole chain, page by page
    # (2,214 pages for 100,000 jobs).  The writer reads the workflow row for every
    # batch, so a workflow's events cost in proportion to its size: folding three
    # events per job took 0.35 ms of CPU per job at 10,000 jobs and 1.06 ms at
    # 100,000; with `spec` last, 0.38 ms.  SQLite cannot move a column, so it is
    # copied to a new last column.  An older SQLite cannot drop the old one: the
    # layout only costs time, so the database keeps it rather than refuse to open.
    if SQLITE_VERSION < DROP_COLUMN_SINCE:
        log.warning(
            "SQLite %s cannot drop a column, so workflows.spec stays where it is: a big"
            " workflow's events cost more to record (SQLite 3.35 or newer puts it last in"
            " the databases it creates)",
            ".".join(map(str, SQLITE_VERSION)),
        )
        return
    await db.execute("ALTER TABLE workflows ADD COLUMN spec_last TEXT NOT NULL DEFAULT ''")
    await db.execute("UPDATE workflows SET spec_last = spec")
    await db.execute("ALTER TABLE workflows DROP COLUMN spec")
    await db.execute("ALTER TABLE workflows RENAME COLUMN spec_last TO spec")


async def _cache_v4(db: aiosqlite.Connection) -> None:
    # One row per job that succeeded with a cache key (``--resume`` looks keys up
    # here), written with the event of its success: by the job's own run (origin =
    # itself) or by a reuse (origin = the run reused). Deleting a workflow deletes
    # its rows and those of every job that reused one of its jobs' runs, so no
    # reuse ever points at a run directory that is gone.
    await db.execute(
        """
        CREATE TABLE cache (
            name            TEXT NOT NULL,
            key             TEXT NOT NULL,
            workflow_id     TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
            job             TEXT NOT NULL,
            attempt         INTEGER NOT NULL,
            origin_workflow TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
            origin_job      TEXT NOT NULL,
            origin_attempt  INTEGER NOT NULL,
            outputs         TEXT NOT NULL,
            ended           REAL NOT NULL,
            PRIMARY KEY (workflow_id, job)
        )
        """
    )
    await db.execute("CREATE INDEX cache_name_key ON cache (name, key, ended)")
    await db.execute("CREATE INDEX cache_origin ON cache (origin_workflow)")


async def _cursors_v5(db: aiosqlite.Connection) -> None:
    # How far a follower of the event log (the notifier) has dealt with it: a new
    # daemon goes on from there, neither repeating older events nor skipping any.
    await db.execute(
        "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL)"
    )


#: ``MIGRATIONS[v]`` takes the schema from version ``v`` to ``v + 1``.
MIGRATIONS: list[Migration] = [
    _create_v1, _jobs_by_position_v2, _spec_last_v3, _cache_v4, _cursors_v5,
]  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)


async def configure(db: aiosqlite.Connection, *, synchronous: str, writer: bool) -> None:
    """Per-connection settings (SQLite does not store these in the file)."""
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await db.execute("PRAGMA foreign_keys = ON")
    if writer:
        # journal_mode is persistent, but setting it is idempotent and cheap.
        async with db.execute("PRAGMA journal_mode = WAL") as cursor:
            mode = await cursor.fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            # e.g. a file system without shared memory: still correct, but then
            # readers and the writer take turns.
            log.warning(
                "SQLite refused WAL mode (journal_mode=%s); reads may wait for writes", mode
            )
        await db.execute(f"PRAGMA synchronous = {synchronous}")
    else:
        # The read connection must never write: every write goes through the
        # writer task so that the tables stay the fold of the event log.
        await db.execute("PRAGMA query_only = ON")


async def user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def migrate(db: aiosqlite.Connection, migrations: list[Migration] = MIGRATIONS) -> int:
    """Bring the schema up to date; returns the version.  ``db`` must be in autocommit mode."""
    version = await user_version(db)
    if version > len(migrations):
        raise RuntimeError(
            f"the database is schema version {version} but this ccd knows only up to "
            f"{len(migrations)}; use a newer ccd or another state directory"
        )
    for target in range(version + 1, len(migrations) + 1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            await migrations[target - 1](db)
            # PRAGMA does not take parameters; target is an int we computed.
            await db.execute(f"PRAGMA user_version = {target}")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
    return len(migrations)
