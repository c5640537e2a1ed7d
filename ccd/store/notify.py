"""What the notifier reads from the store, and its cursor (one statement each).

Reads take the read connection (`Store.query`); the cursor is written by the
store's writer (`Store.exclusive`), the only writer.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from ccd.events import EventKind
from ccd.notify import JOB_FAILURES
from ccd.states import FINAL_WORKFLOW_STATES


def _listed(values: frozenset[str]) -> str:
    # constants of ccd's own, never user text: safe to write into the statement
    return ", ".join(f"'{value}'" for value in sorted(values))


# seq is the table's integer primary key: the range is a walk of just those rows,
# and only the few state events among them have their data looked into
_TRIGGERS = f"""
    SELECT seq, workflow_id, job, time, kind, data FROM events
     WHERE seq > ?1 AND seq <= ?2
       AND ((kind = '{EventKind.WORKFLOW_STATE}' AND job IS NULL
             AND json_extract(data, '$.state') IN ({_listed(FINAL_WORKFLOW_STATES)}))
         OR (kind = '{EventKind.JOB_STATE}'
             AND json_extract(data, '$.state') IN ({_listed(JOB_FAILURES)})))
     ORDER BY seq LIMIT ?3
"""
_SETTLED = f"""
    SELECT json_extract(data, '$.notice') FROM events
     WHERE seq > ? AND kind IN ('{EventKind.NOTIFY_SENT}', '{EventKind.NOTIFY_FAILED}')
"""
# the spec (8.6 MB for 100,000 jobs) is parsed in SQLite: only `notify` comes to Python
_NOTIFIERS = "SELECT json_extract(spec, '$.notify') FROM workflows WHERE id = ?"
_FACTS = """
    SELECT name, state, source, created,
           CASE WHEN ?2 THEN (SELECT json_group_object(state, n)
                                FROM (SELECT state, count(*) AS n FROM jobs
                                       WHERE workflow_id = w.id GROUP BY state)) END
      FROM workflows AS w WHERE id = ?1
"""
_CURSOR = "SELECT seq FROM cursors WHERE name = ?"
_SAVE_CURSOR = """
    INSERT INTO cursors (name, seq) VALUES (?, ?)
        ON CONFLICT (name) DO UPDATE SET seq = excluded.seq
"""

EventRow = tuple[int, str, str | None, float, str, dict[str, Any]]


async def triggers(db: aiosqlite.Connection, after: int, upto: int, limit: int) -> list[EventRow]:
    """Events after seq `after`, up to `upto`, that may be triggers: (seq, workflow_id,
    job, time, kind, data), oldest first, at most `limit`."""
    rows = await db.execute_fetchall(_TRIGGERS, (after, upto, limit))
    return [
        (seq, wid, job, when, kind, json.loads(data)) for seq, wid, job, when, kind, data in rows
    ]


async def settled(db: aiosqlite.Connection, after: int) -> set[str]:
    """The notices whose outcome was recorded after seq `after`."""
    return {str(row[0]) for row in await db.execute_fetchall(_SETTLED, (after,)) if row[0]}


async def notifiers(db: aiosqlite.Connection, workflow_id: str) -> list[dict[str, Any]] | None:
    """The workflow's own notifiers as JSON data; None if it is gone."""
    rows = list(await db.execute_fetchall(_NOTIFIERS, (workflow_id,)))
    if not rows:
        return None
    text = rows[0][0]
    found: list[dict[str, Any]] = json.loads(text) if text else []
    return found


async def facts(
    db: aiosqlite.Connection, workflow_id: str, counts: bool
) -> tuple[tuple[str, str, str, float], dict[str, int]] | None:
    """The workflow's (name, state, source, created), and its jobs per state if
    `counts`; None if it is gone."""
    rows = list(await db.execute_fetchall(_FACTS, (workflow_id, counts)))
    if not rows:
        return None
    name, state, source, created, per_state = rows[0]
    return (str(name), str(state), str(source), float(created)), json.loads(per_state or "{}")


async def cursor(db: aiosqlite.Connection, name: str) -> int | None:
    rows = list(await db.execute_fetchall(_CURSOR, (name,)))
    return int(rows[0][0]) if rows else None


async def save_cursor(db: aiosqlite.Connection, name: str, seq: int) -> None:
    # the write connection is in autocommit mode: the statement is its own transaction
    await db.execute(_SAVE_CURSOR, (name, seq))
