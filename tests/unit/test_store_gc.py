"""Retention in the store: deleting old finished workflows through the single writer."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccd.events import Event, EventKind
from ccd.store import BadEvent, Store
from tests.unit.test_store import assert_is_fold_of_events, job_event, make_spec, submitted

K = EventKind
DAY = 86400.0
NOW = 100 * DAY
#: "older than 30 days", seen at NOW
CUTOFF = NOW - 30 * DAY


def ssh_handle(host: str, wid: str, job: str, attempt: int) -> dict[str, object]:
    run_dir = f"/home/u/.ccd/runs/{wid}/{job}/{attempt}"
    return {"executor": "ssh", "host": host, "run_dir": run_dir, "pid": 7}


async def finished(store: Store, wid: str, ended: float, events: int = 0) -> None:
    """A workflow whose job `a` ran twice on host h1 (two handles), finished at `ended`."""
    store.emit(submitted(wid, make_spec(jobs=["a"]), at=ended - 10))
    for attempt in (1, 2):
        handle = ssh_handle("h1", wid, "a", attempt)
        store.emit(job_event(wid, "a", K.JOB_STATE, ended - 5, state="running", handle=handle))
    for i in range(events):  # bulk: big enough that deleting it shrinks the file
        store.emit(
            job_event(wid, "a", K.JOB_PROGRESS, ended - 1, progress=1, message="x" * 500 + str(i))
        )
    store.emit(job_event(wid, "a", K.JOB_STATE, ended, state="succeeded", exit_code=0))
    await store.record(Event(wid, None, K.WORKFLOW_STATE, {"state": "succeeded"}, time=ended))


def db_bytes(path: Path) -> int:
    return sum(os.stat(p).st_size for p in (path, Path(f"{path}-wal")) if p.exists())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "ccd.db")
    yield s
    await s.close()


async def test_deletes_only_old_finished_workflows_and_shrinks_the_file(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "ccd.db"
    await finished(store, "old", ended=NOW - 40 * DAY, events=20_000)
    await finished(store, "recent", ended=NOW - 1 * DAY)
    # submitted long ago but still running: never touched, however old
    await store.record(submitted("running", make_spec(jobs=["a"]), at=NOW - 90 * DAY))
    last = store.last_seq
    before = db_bytes(path)

    expired = await store.delete_expired(CUTOFF)

    assert expired.ids == ["old"]
    assert expired.events == 20_000 + 5
    assert expired.ssh_dirs == [
        ("old", "h1", "/home/u/.ccd/runs/old/a/1"),
        ("old", "h1", "/home/u/.ccd/runs/old/a/2"),
    ]
    after = db_bytes(path)
    assert expired.db_bytes_freed == before - after > 10_000_000 // 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        for table, column in (
            ("events", "workflow_id"),
            ("jobs", "workflow_id"),
            ("workflows", "id"),
        ):
            assert db.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = 'old'"
            ).fetchone() == (0,)
    db.close()
    assert await store.find_workflow("old") is None
    for wid in ("recent", "running"):  # the rest is untouched and still its own fold
        assert await store.find_workflow(wid) is not None
        assert_is_fold_of_events(path, wid)
    # seqs are never reused after a deletion
    assert (
        await store.record(Event("recent", None, K.WORKFLOW_STATE, {"state": "failed"})) == last + 1
    )


async def test_dry_run_lists_the_same_and_deletes_nothing(store: Store) -> None:
    await finished(store, "old", ended=NOW - 40 * DAY)
    last = store.last_seq
    listed = await store.expired(CUTOFF)
    assert listed.ids == ["old"] and listed.events == 5 and listed.db_bytes_freed == 0
    assert await store.find_workflow("old") is not None
    assert store.last_seq == last
    assert (await store.delete_expired(CUTOFF)).ids == listed.ids


async def test_excluded_workflows_are_kept(store: Store) -> None:
    await finished(store, "old", ended=NOW - 40 * DAY)
    assert (await store.delete_expired(CUTOFF, exclude={"old"})).ids == []
    assert await store.find_workflow("old") is not None


async def test_deletion_is_ordered_with_events_in_the_writer_queue(store: Store) -> None:
    await finished(store, "old", ended=NOW - 40 * DAY)
    # emitted before the deletion: committed first (then deleted with its workflow)
    before = store.emit(Event("old", "a", K.JOB_WARNING, {"message": "late"}))
    deletion = asyncio.ensure_future(store.delete_expired(CUTOFF))
    await asyncio.sleep(0)  # the deletion is queued now
    # emitted after it: the workflow is gone by the time the writer gets to it
    after = store.emit(Event("old", "a", K.JOB_WARNING, {"message": "later"}))
    assert isinstance(await before, int)
    assert (await deletion).events == 6
    with pytest.raises(BadEvent):
        await after


async def test_nothing_to_delete_does_not_vacuum(store: Store) -> None:
    await finished(store, "recent", ended=NOW - 1 * DAY)
    expired = await store.delete_expired(CUTOFF)
    assert (expired.ids, expired.events, expired.db_bytes_freed) == ([], 0, 0)


async def test_remote_slurm_dirs_are_collected_but_login_node_ones_are_local(
    store: Store,
) -> None:
    wid, ended = "slurmy", NOW - 40 * DAY
    store.emit(submitted(wid, make_spec(jobs=["r", "l"]), at=ended - 10))
    remote = {"executor": "slurm", "host": "cluster", "run_dir": f"/home/u/.ccd/runs/{wid}/r/1"}
    here = {"executor": "slurm", "host": "localhost", "run_dir": f"/var/ccd/runs/{wid}/l/1"}
    store.emit(job_event(wid, "r", K.JOB_STATE, ended - 5, state="queued", handle=remote))
    store.emit(job_event(wid, "l", K.JOB_STATE, ended - 5, state="queued", handle=here))
    for job in ("r", "l"):
        store.emit(job_event(wid, job, K.JOB_STATE, ended, state="succeeded", exit_code=0))
    await store.record(Event(wid, None, K.WORKFLOW_STATE, {"state": "succeeded"}, time=ended))

    expired = await store.delete_expired(CUTOFF)

    # the login node's directories are under the local runs directory, removed there
    assert expired.ssh_dirs == [(wid, "cluster", f"/home/u/.ccd/runs/{wid}/r/1")]
