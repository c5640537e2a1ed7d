"""The event store against a real SQLite file: folding, ordering, durability, concurrency."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccd
from ccd.events import Event, EventKind
from ccd.store import BadEvent, Store, rows, schema
from ccd.store.reads import JOB_FIELDS

K = EventKind
REPO = Path(ccd.__file__).resolve().parent.parent


# -- helpers ----------------------------------------------------------------------------
def make_spec(name: str = "wf", jobs: Iterable[str] = ("a", "b", "c")) -> dict[str, Any]:
    names = list(jobs)
    return {
        "name": name,
        "concurrency": None,
        "source": f"/work/{name}.yaml",
        "jobs": {
            job: {
                "name": job,
                "run": f"echo {job}",
                "needs": names[:i][-1:],  # a chain: each job needs the one before
                "host": "localhost" if i % 2 == 0 else "cluster",
                "executor": "local" if i % 2 == 0 else "slurm",
            }
            for i, job in enumerate(names)
        },
    }


def submitted(wid: str, spec: dict[str, Any], at: float = 1000.0) -> Event:
    data = {"name": spec["name"], "spec": spec, "source": spec["source"]}
    return Event(wid, None, K.WORKFLOW_SUBMITTED, data, time=at)


def job_event(wid: str, job: str, kind: EventKind, at: float, **data: Any) -> Event:
    return Event(wid, job, kind, data, time=at)


FINAL_JOB = {"succeeded", "failed", "timed_out", "cancelled", "skipped"}
FINAL_WORKFLOW = {"succeeded", "failed", "cancelled"}


def reference_fold(
    events: Iterable[tuple[str, str | None, float, str, dict[str, Any]]],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """An independent, deliberately naive fold of (workflow_id, job, time, kind, data)."""
    workflows: dict[str, dict[str, Any]] = {}
    jobs: dict[tuple[str, str], dict[str, Any]] = {}
    for wid, job, at, kind, data in events:
        if kind == "workflow.submitted":
            workflows[wid] = {"name": data["name"], "state": "running", "source": data["source"],
                              "created": at, "updated": at, "ended": None}  # fmt: skip
            for pos, (name, spec) in enumerate(data["spec"]["jobs"].items()):
                jobs[(wid, name)] = {
                    "position": pos, "state": "pending", "attempt": 0, "progress": None,
                    "message": None, "exit_code": None, "reason": None, "host": spec["host"],
                    "executor": spec["executor"], "needs": spec["needs"], "handle": None,
                    "outputs": {}, "started": None, "ended": None, "updated": at,
                }  # fmt: skip
        elif kind == "workflow.state":
            w = workflows[wid]
            w["state"], w["updated"] = data["state"], at
            w["ended"] = at if data["state"] in FINAL_WORKFLOW else None
        elif kind != "job.warning":
            assert job is not None
            fold_job_event(jobs[(wid, job)], at, kind, data)
    return workflows, jobs


def fold_job_event(row: dict[str, Any], at: float, kind: str, data: dict[str, Any]) -> None:
    row["updated"] = at
    if kind == "job.launched":
        row["handle"] = data["handle"]
    elif kind == "job.progress":
        if data["progress"] is not None:
            row["progress"] = data["progress"]
        if "message" in data:
            row["message"] = data["message"]
    elif kind == "job.output":
        row["outputs"][data["key"]] = data["value"]
    elif kind == "job.state":
        state, before = data["state"], row["state"]
        row["state"] = state
        row["attempt"] = data.get("attempt", row["attempt"])
        row["reason"] = data.get("reason")
        if "exit_code" in data:
            row["exit_code"] = data["exit_code"]
        elif state not in FINAL_JOB:
            row["exit_code"] = None
        if state == "running" and before != "unreachable":  # back in reach: same start
            row["started"] = at
        if "handle" in data:  # a running event names its attempt's handle
            row["handle"] = data["handle"]
        waiting = ("pending", "queued")
        if state in waiting and before not in waiting:  # a new attempt: the last one's are stale
            row["progress"] = row["message"] = row["started"] = None
        # the attempt's own end, if the event gives it, within started .. at
        ended = min(data.get("ended", at), at)
        row["ended"] = max(ended, row["started"] or ended) if state in FINAL_JOB else None


async def events_of(
    store: Store, workflow_id: str | None, after_seq: int, limit: int = 1000
) -> list[dict[str, Any]]:
    """The events the API would send after `after_seq`, decoded."""
    return [json.loads(text) for _, text in await store.events_json(workflow_id, after_seq, limit)]


def read_db(
    path: Path, workflow_id: str | None = None
) -> tuple[list[tuple[Any, ...]], dict[str, Any], dict[tuple[str, str], Any]]:
    """(events, workflows, jobs), of one workflow or all, read with the sqlite3 module."""
    where, params = ("WHERE workflow_id = ?", (workflow_id,)) if workflow_id else ("", ())
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        events = [
            tuple(r) for r in db.execute(f"SELECT * FROM events {where} ORDER BY seq", params)
        ]
        workflows = {
            r["id"]: {k: r[k] for k in ("name", "state", "source", "created", "updated", "ended")}
            for r in db.execute(
                f"SELECT * FROM workflows {where.replace('workflow_id', 'id')}", params
            )
        }
        jobs = {}
        for r in db.execute(f"SELECT * FROM jobs {where}", params):
            # sqlite3.Row iterates over values, so .keys() is needed here
            row = {k: r[k] for k in r.keys() if k not in ("workflow_id", "name")}  # noqa: SIM118
            for column in ("needs", "handle", "outputs"):
                row[column] = None if row[column] is None else json.loads(row[column])
            jobs[(r["workflow_id"], r["name"])] = row
    db.close()
    return events, workflows, jobs


def assert_is_fold_of_events(path: Path, workflow_id: str | None = None) -> list[tuple[Any, ...]]:
    """The rows equal the reference fold of the log; the log's seqs are 1..n (whole log only)."""
    events, workflows, jobs = read_db(path, workflow_id)
    if workflow_id is None:
        seqs = [e[0] for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), "seqs must be gap-free from 1"
    expected = reference_fold((e[1], e[2], e[3], e[4], json.loads(e[5])) for e in events)
    assert workflows == expected[0]
    assert jobs == expected[1]
    return events


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ccd" / "ccd.db"  # directories do not exist yet


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(db_path)
    yield s
    await s.close()


# -- folding ----------------------------------------------------------------------------
async def test_submitted_creates_workflow_and_pending_jobs_in_file_order(store: Store) -> None:
    spec = make_spec(jobs=["zeta", "alpha", "mid"])
    seq = await store.record(submitted("w1", spec, at=10.0))

    assert seq == 1
    row = await store.find_workflow("w1")
    assert row == {
        "id": "w1", "name": "wf", "state": "running", "source": "/work/wf.yaml",
        "created": 10.0, "updated": 10.0, "ended": None, "counts": {"pending": 3},
    }  # fmt: skip
    jobs = await store.get_jobs("w1")
    assert [j["name"] for j in jobs] == ["zeta", "alpha", "mid"]
    assert jobs[1] == {
        "workflow_id": "w1", "name": "alpha", "position": 1, "state": "pending", "attempt": 0,
        "progress": None, "message": None, "exit_code": None, "reason": None,
        "host": "cluster", "executor": "slurm", "needs": ["zeta"], "handle": None,
        "outputs": {}, "started": None, "ended": None, "updated": 10.0,
    }  # fmt: skip
    assert await store.get_spec("w1") == spec
    assert [w["id"] for w in await store.unfinished_workflows()] == ["w1"]
    assert (await store.unfinished_workflows())[0]["spec"] == spec


async def test_workflow_state_sets_and_clears_ended(store: Store) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))
    await store.record(Event("w1", None, K.WORKFLOW_STATE, {"state": "failed"}, time=5.0))
    row = await store.find_workflow("w1")
    assert row is not None
    assert (row["state"], row["updated"], row["ended"]) == ("failed", 5.0, 5.0)
    assert await store.unfinished_workflows() == []

    # a workflow retry makes it running again
    await store.record(Event("w1", None, K.WORKFLOW_STATE, {"state": "running"}, time=7.0))
    row = await store.find_workflow("w1")
    assert row is not None
    assert (row["state"], row["updated"], row["ended"]) == ("running", 7.0, None)


async def test_job_state_lifecycle(store: Store) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))
    await store.record(job_event("w1", "a", K.JOB_STATE, 2.0, state="queued", attempt=1))
    await store.record(job_event("w1", "a", K.JOB_STATE, 3.0, state="running", attempt=1))
    job = await store.get_job("w1", "a")
    assert job is not None
    assert (job["state"], job["attempt"], job["started"], job["ended"]) == ("running", 1, 3.0, None)

    await store.record(
        job_event("w1", "a", K.JOB_STATE, 4.0, state="failed", exit_code=3, reason="exit 3")
    )
    job = await store.get_job("w1", "a")
    assert job is not None
    assert (job["state"], job["attempt"], job["exit_code"], job["reason"]) == (
        "failed", 1, 3, "exit 3",
    )  # fmt: skip
    assert (job["started"], job["ended"], job["updated"]) == (3.0, 4.0, 4.0)

    # an automatic retry: running -> queued clears exit code and reason, keeps attempt if absent
    await store.record(job_event("w1", "a", K.JOB_STATE, 5.0, state="queued"))
    job = await store.get_job("w1", "a")
    assert job is not None
    assert (job["state"], job["attempt"], job["exit_code"], job["reason"], job["ended"]) == (
        "queued", 1, None, None, None,
    )  # fmt: skip


async def test_job_state_pending_clears_progress_message_and_exit_code(store: Store) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))
    await store.record(job_event("w1", "a", K.JOB_STATE, 2.0, state="running", attempt=1))
    await store.record(job_event("w1", "a", K.JOB_PROGRESS, 3.0, progress=40.0, message="half"))
    await store.record(job_event("w1", "a", K.JOB_STATE, 4.0, state="timed_out", exit_code=137))
    await store.record(job_event("w1", "a", K.JOB_STATE, 5.0, state="pending", reason="retry"))
    job = await store.get_job("w1", "a")
    assert job is not None
    assert job["state"] == "pending"
    assert (job["progress"], job["message"], job["exit_code"]) == (None, None, None)
    assert (job["reason"], job["ended"], job["attempt"]) == ("retry", None, 1)


async def test_job_launched_progress_output_and_warning(store: Store) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))
    handle = {"pid": 123, "run_dir": "/tmp/r", "nested": {"ids": [1, 2]}}
    await store.record(job_event("w1", "b", K.JOB_LAUNCHED, 2.0, attempt=1, handle=handle))
    await store.record(job_event("w1", "b", K.JOB_PROGRESS, 3.0, progress=10, message="start"))
    # progress None keeps the value; an absent message keeps the message
    await store.record(job_event("w1", "b", K.JOB_PROGRESS, 4.0, progress=None, message="m2"))
    await store.record(job_event("w1", "b", K.JOB_PROGRESS, 5.0, progress=55.5))
    await store.record(job_event("w1", "b", K.JOB_OUTPUT, 6.0, key="acc", value=0.9))
    await store.record(job_event("w1", "b", K.JOB_OUTPUT, 7.0, key="path", value="/x"))
    await store.record(job_event("w1", "b", K.JOB_OUTPUT, 8.0, key="acc", value=0.95))
    await store.record(job_event("w1", "b", K.JOB_WARNING, 9.0, message="bad marker"))
    await store.record(Event("w1", None, K.JOB_WARNING, {"message": "workflow-level"}, time=9.5))

    job = await store.get_job("w1", "b")
    assert job is not None
    assert job["handle"] == handle
    assert (job["progress"], job["message"]) == (55.5, "m2")
    assert job["outputs"] == {"acc": 0.95, "path": "/x"}
    assert job["updated"] == 8.0  # the warning changed nothing
    assert await store.get_job("w1", "nope") is None


async def test_bad_events_are_rejected_alone(store: Store) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))
    bad = [
        Event("nope", None, K.WORKFLOW_STATE, {"state": "failed"}),
        Event("w1", "nope", K.JOB_STATE, {"state": "running"}),
        Event("w1", "a", K.JOB_STATE, {"state": "bogus"}),
        Event("w1", None, K.JOB_PROGRESS, {"progress": 1}),
        Event("w1", "a", K.JOB_PROGRESS, {"progress": "ten"}),
        Event("w1", "a", K.JOB_OUTPUT, {"key": "k", "value": object()}),  # not JSON
        Event("w1", "a", K.JOB_PROGRESS, {"progress": float("nan")}),
        submitted("w1", make_spec()),  # already exists
    ]
    good = Event("w1", "a", K.JOB_STATE, {"state": "queued", "attempt": 1}, time=2.0)
    # all in one batch: the good event must commit although its neighbours fail
    futures = [store.emit(e) for e in bad[:4]] + [store.emit(good)]
    futures += [store.emit(e) for e in bad[4:]]
    await store.flush()

    for future in futures[:4] + futures[5:]:
        with pytest.raises(BadEvent):
            future.result()
    assert futures[4].result() == 2  # rejected events take no seq
    assert store.last_seq == 2
    job = await store.get_job("w1", "a")
    assert job is not None
    assert (job["state"], job["attempt"], job["progress"]) == ("queued", 1, None)


# -- ordering and batching --------------------------------------------------------------
async def test_seqs_are_strictly_increasing_and_gap_free(store: Store, db_path: Path) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))
    seqs = [
        await store.record(job_event("w1", "a", K.JOB_PROGRESS, 2.0, progress=i)) for i in range(5)
    ]
    futures = [store.emit(job_event("w1", "b", K.JOB_PROGRESS, 3.0, progress=i)) for i in range(50)]
    seqs += [await f for f in futures]
    assert seqs == list(range(2, 57))
    assert store.last_seq == 56
    events = await events_of(store, None, 0, limit=10_000)
    assert [e["seq"] for e in events] == list(range(1, 57))


async def test_burst_of_20000_events_is_committed_after_flush(store: Store) -> None:
    await store.record(submitted("w1", make_spec(jobs=[f"j{i}" for i in range(100)])))
    base = store.last_seq
    futures = [
        store.emit(job_event("w1", f"j{i % 100}", K.JOB_PROGRESS, 10.0 + i, progress=i % 101))
        for i in range(20_000)
    ]
    await store.flush()

    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == list(range(base + 1, base + 20_001))
    assert store.last_seq == base + 20_000
    job = await store.get_job("w1", "j99")
    assert job is not None
    assert (job["progress"], job["updated"]) == (19_999 % 101, 10.0 + 19_999)
    events = await events_of(store, "w1", base + 19_990)
    assert [e["seq"] for e in events] == list(range(base + 19_991, base + 20_001))


async def test_a_failed_commit_fails_its_batch_and_the_writer_lives_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.record(submitted("w1", make_spec(), at=1.0))

    async def disk_full(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(rows, "persist", disk_full)
    with pytest.raises(OSError, match="disk full"):
        await store.record(job_event("w1", "a", K.JOB_STATE, 2.0, state="queued"))
    monkeypatch.undo()

    assert store.last_seq == 1
    assert await store.record(job_event("w1", "a", K.JOB_STATE, 3.0, state="cancelled")) == 2
    job = await store.get_job("w1", "a")
    assert job is not None
    assert (job["state"], job["updated"]) == ("cancelled", 3.0)


async def test_a_cancelled_record_is_still_committed(store: Store) -> None:
    await store.record(submitted("w1", make_spec()))
    task = asyncio.create_task(store.record(job_event("w1", "a", K.JOB_STATE, 2.0, state="queued")))
    await asyncio.sleep(0)  # let record() emit
    task.cancel()
    await store.flush()
    assert task.cancelled()
    assert store.last_seq == 2
    job = await store.get_job("w1", "a")
    assert job is not None and job["state"] == "queued"


# -- waiting ----------------------------------------------------------------------------
async def test_wait_for_seq_wakes_on_commit(store: Store) -> None:
    await store.record(submitted("w1", make_spec()))
    after = store.last_seq
    waiter = asyncio.create_task(store.wait_for_seq(after, timeout=30))
    await asyncio.sleep(0)  # let the waiter start waiting
    assert not waiter.done()
    started = time.monotonic()
    seq = await store.record(job_event("w1", "a", K.JOB_PROGRESS, 2.0, progress=1))
    assert await asyncio.wait_for(waiter, 5) == seq
    assert time.monotonic() - started < 5  # woken by the commit, not by the timeout
    # already past: returns at once
    assert await store.wait_for_seq(after, timeout=30) == seq


async def test_wait_for_seq_times_out(store: Store) -> None:
    await store.record(submitted("w1", make_spec()))
    started = time.monotonic()
    assert await store.wait_for_seq(store.last_seq, timeout=0.05) == store.last_seq
    assert time.monotonic() - started >= 0.04


# -- reads ------------------------------------------------------------------------------
async def test_find_workflow_by_id_and_by_newest_name(store: Store) -> None:
    await store.record(submitted("w-old", make_spec("train"), at=1.0))
    await store.record(submitted("w-new", make_spec("train"), at=2.0))
    await store.record(submitted("w-other", make_spec("report"), at=3.0))
    # same timestamp: the one submitted later wins
    await store.record(submitted("w-tie2", make_spec("tie"), at=4.0))
    await store.record(submitted("w-tie1", make_spec("tie"), at=4.0))

    by_id = await store.find_workflow("w-old")
    by_name = await store.find_workflow("train")
    tie = await store.find_workflow("tie")
    assert by_id is not None and by_id["id"] == "w-old"
    assert by_name is not None and by_name["id"] == "w-new"
    assert tie is not None and tie["id"] == "w-tie1"
    assert await store.find_workflow("nothing") is None


async def test_list_workflows_newest_first_with_counts(store: Store) -> None:
    for i in range(5):
        await store.record(submitted(f"w{i}", make_spec(f"n{i}"), at=float(i)))
    await store.record(job_event("w3", "a", K.JOB_STATE, 9.0, state="cancelled"))
    await store.record(job_event("w3", "b", K.JOB_STATE, 9.0, state="queued"))

    rows = await store.list_workflows(limit=3)
    assert [r["id"] for r in rows] == ["w4", "w3", "w2"]
    assert rows[1]["counts"] == {"cancelled": 1, "pending": 1, "queued": 1}
    assert set(rows[0]) == {
        "id",
        "name",
        "state",
        "source",
        "created",
        "updated",
        "ended",
        "counts",
    }


async def test_events_json_filters_by_workflow(store: Store) -> None:
    await store.record(submitted("w1", make_spec()))
    await store.record(submitted("w2", make_spec()))
    await store.record(job_event("w1", "a", K.JOB_OUTPUT, 5.0, key="k", value=[1, 2]))
    await store.record(job_event("w2", "a", K.JOB_WARNING, 6.0, message="hm"))

    assert [e["seq"] for e in await events_of(store, "w1", 0)] == [1, 3]
    assert [e["seq"] for e in await events_of(store, None, 1, limit=2)] == [2, 3]
    (last,) = await events_of(store, "w2", 2)
    assert last == {
        "seq": 4, "workflow_id": "w2", "job": "a", "time": 6.0,
        "kind": "job.warning", "data": {"message": "hm"},
    }  # fmt: skip


async def test_a_long_read_transaction_does_not_block_writes(store: Store, db_path: Path) -> None:
    await store.record(submitted("w1", make_spec()))
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        (before,) = reader.execute("SELECT count(*) FROM events").fetchone()
        async with asyncio.timeout(10):
            for i in range(20):
                await store.record(job_event("w1", "a", K.JOB_PROGRESS, 2.0, progress=i))
            assert len(await events_of(store, "w1", 0)) == before + 20
        # the open transaction still sees its snapshot
        assert reader.execute("SELECT count(*) FROM events").fetchone() == (before,)
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM events").fetchone() == (before + 20,)
    finally:
        reader.close()


# -- lifecycle --------------------------------------------------------------------------
async def test_reopen_keeps_data_and_schema_version(db_path: Path) -> None:
    store = await Store.open(db_path)
    await store.record(submitted("w1", make_spec()))
    await store.record(job_event("w1", "a", K.JOB_OUTPUT, 2.0, key="k", value="v"))
    await store.close()

    store = await Store.open(db_path)
    try:
        assert store.last_seq == 2
        job = await store.get_job("w1", "a")
        assert job is not None and job["outputs"] == {"k": "v"}
        assert await store.record(job_event("w1", "a", K.JOB_WARNING, 3.0, message="x")) == 3
    finally:
        await store.close()
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600  # specs may hold secrets
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (schema.SCHEMA_VERSION,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


async def test_close_flushes_and_later_emits_raise(db_path: Path) -> None:
    store = await Store.open(db_path)
    first = store.emit(submitted("w1", make_spec()))
    rest = [store.emit(job_event("w1", "c", K.JOB_PROGRESS, 2.0, progress=i)) for i in range(500)]
    await store.close()
    assert first.result() == 1
    assert rest[-1].result() == 501
    with pytest.raises(RuntimeError, match="closed"):
        store.emit(job_event("w1", "c", K.JOB_PROGRESS, 3.0, progress=1))
    await store.close()  # idempotent
    # a waiter on a closed store does not hang
    assert await store.wait_for_seq(501, timeout=None) == 501
    events, _, _ = read_db(db_path)
    assert len(events) == 501


async def test_migrations_run_in_order_and_a_newer_schema_is_refused(db_path: Path) -> None:
    await (await Store.open(db_path)).close()

    async def add_notes(db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")

    newer = schema.SCHEMA_VERSION + 1
    async with aiosqlite.connect(db_path, isolation_level=None) as db:
        assert await schema.migrate(db, [*schema.MIGRATIONS, add_notes]) == newer
        assert await schema.user_version(db) == newer
        await db.execute("INSERT INTO notes (text) VALUES ('ok')")
    # this ccd knows only the versions before
    with pytest.raises(RuntimeError, match=f"schema version {newer}"):
        await Store.open(db_path)


async def test_a_version_1_database_gains_the_jobs_position_index(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(db_path, isolation_level=None) as db:
        assert await schema.migrate(db, schema.MIGRATIONS[:1]) == 1
    await (await Store.open(db_path)).close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (schema.SCHEMA_VERSION,)
        plan = " ".join(
            str(row[-1])
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT name FROM jobs WHERE workflow_id = 'w' ORDER BY position"
            )
        )
    db.close()
    # a workflow's jobs come in spec order straight from the index, without a sort
    assert "jobs_workflow_position" in plan and "TEMP B-TREE" not in plan


async def _version_2_database(db_path: Path, spec: dict[str, Any]) -> None:
    """A schema-2 database holding workflow w1 with its one job `a`, pending."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(db_path, isolation_level=None) as db:
        assert await schema.migrate(db, schema.MIGRATIONS[:2]) == 2
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute(
            "INSERT INTO workflows (id, name, state, spec, source, created, updated, ended)"
            " VALUES ('w1', 'wf', 'running', ?, 'wf.yaml', 1000.0, 1000.0, NULL)",
            (json.dumps(spec),),
        )
        await db.execute(
            "INSERT INTO jobs (workflow_id, name, position, state, attempt, host, executor,"
            " needs, outputs, updated) VALUES ('w1', 'a', 0, 'pending', 0, 'localhost',"
            " 'local', '[]', '{}', 1000.0)"
        )


async def _reads_and_records_w1(db_path: Path, spec: dict[str, Any]) -> list[str]:
    """Open the store, check w1 reads back and takes a new event; the workflows columns."""
    store = await Store.open(db_path)
    try:
        assert await store.get_spec("w1") == spec
        workflow = await store.find_workflow("w1")
        assert workflow is not None
        assert (workflow["source"], workflow["created"]) == ("wf.yaml", 1000.0)
        # the writer reads the workflow row for the next events of the workflow
        await store.record(job_event("w1", "a", K.JOB_STATE, 1001.0, state="running", attempt=1))
        job = await store.get_job("w1", "a")
        assert job is not None and job["state"] == "running"
    finally:
        await store.close()
    with sqlite3.connect(db_path) as db:
        columns = [str(row[1]) for row in db.execute("PRAGMA table_info(workflows)")]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("PRAGMA user_version").fetchone() == (schema.SCHEMA_VERSION,)
    db.close()
    return columns


async def test_a_version_2_database_keeps_its_workflows_with_the_spec_moved_last(
    db_path: Path,
) -> None:
    spec = make_spec(jobs=("a",))
    await _version_2_database(db_path, spec)
    columns = await _reads_and_records_w1(db_path, spec)
    # every column the writer reads for each batch comes before the spec's overflow pages
    assert columns[-1] == "spec" and columns.count("spec") == 1 and len(columns) == 8


async def test_with_an_sqlite_older_than_3_35_the_spec_stays_and_the_store_works(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An old SQLite library cannot be loaded here (Python is built with 3.40): the
    # version the migration checks is set instead.
    monkeypatch.setattr(schema, "SQLITE_VERSION", (3, 34, 1))
    spec = make_spec(jobs=("a",))
    await _version_2_database(db_path, spec)
    columns = await _reads_and_records_w1(db_path, spec)
    assert columns.index("spec") == 3 and len(columns) == 8
    assert "SQLite 3.34.1 cannot drop a column" in caplog.text


# -- the fold equals the log, whatever the batching -----------------------------------------
JOBS = ("a", "b")
_job_state = st.builds(
    lambda state, attempt, reason, code: {
        "kind": "job.state",
        "state": state,
        **({} if attempt is None else {"attempt": attempt}),
        **({} if reason is None else {"reason": reason}),
        **({} if code is None else {"exit_code": code}),
    },
    st.sampled_from(["pending", "queued", "running", "unreachable", "unknown", *sorted(FINAL_JOB)]),
    st.none() | st.integers(0, 5),
    st.none() | st.text(max_size=5),
    st.sampled_from([1, 137, 0, None]),
)
# job.state twice: its interplay of fields is what a fold most easily gets wrong.
_job_events = st.one_of(
    _job_state,
    _job_state,
    st.builds(
        lambda p, m: {
            "kind": "job.progress",
            "progress": p,
            **({} if m is None else {"message": m}),
        },
        st.none() | st.floats(0, 100),
        st.none() | st.text(max_size=5),
    ),
    st.builds(
        lambda k, v: {"kind": "job.output", "key": k, "value": v},
        st.sampled_from(["x", "y"]),
        st.integers() | st.text(max_size=3),
    ),
    st.builds(
        lambda h: {"kind": "job.launched", "attempt": 1, "handle": {"pid": h}}, st.integers(1, 99)
    ),
    st.just({"kind": "job.warning", "message": "w"}),
)
_job_step = st.tuples(st.sampled_from(JOBS), _job_events, st.booleans())
_workflow_step = st.sampled_from(["running", "succeeded", "failed", "cancelled"])
# Mostly job events: a workflow's state is one column, a job's is eleven.
_steps = st.lists(
    st.one_of(_job_step, _job_step, _job_step, _workflow_step), min_size=10, max_size=40
)


def test_rows_are_the_fold_of_the_log(tmp_path: Path) -> None:
    path = tmp_path / "ccd.db"
    # One store for all examples (opening one per example is most of the cost);
    # each example is a workflow of its own.
    with asyncio.Runner() as runner:
        store = runner.run(Store.open(path, batch_cap=3))
        ids = itertools.count()

        @settings(max_examples=100, deadline=None, database=None)
        @given(steps=_steps)
        def check(steps: list[Any]) -> None:
            wid = f"w{next(ids)}"
            runner.run(_apply_steps(store, wid, steps))
            events = assert_is_fold_of_events(path, wid)
            assert len(events) == len(steps) + 1

        try:
            check()
        finally:
            runner.run(store.close())
    assert_is_fold_of_events(path)


async def _apply_steps(store: Store, wid: str, steps: list[Any]) -> None:
    store.emit(submitted(wid, make_spec(jobs=JOBS), at=0.0))
    for at, step in enumerate(steps, start=1):
        if isinstance(step, str):
            store.emit(Event(wid, None, K.WORKFLOW_STATE, {"state": step}, time=float(at)))
            continue
        job, data, wait = step
        kind = EventKind(data["kind"])
        payload = {k: v for k, v in data.items() if k != "kind"}
        future = store.emit(Event(wid, job, kind, payload, time=float(at)))
        if wait:  # vary where batches end
            await future
    await store.flush()


# -- crash safety -----------------------------------------------------------------------
CHILD = """
import asyncio, sys
from ccd.events import Event, EventKind as K
from ccd.store import Store

def spec(n):
    return {"name": "crash", "source": "-", "concurrency": None, "jobs": {
        f"j{i}": {"name": f"j{i}", "needs": [], "host": "h", "executor": "local"}
        for i in range(n)}}

def event(wid, i):
    job, r = f"j{i % 7}", i % 5
    if r == 0:
        return Event(wid, job, K.JOB_STATE, {"state": ["queued", "running", "failed",
                     "pending"][i % 4], "attempt": i % 3, "exit_code": i % 2 or None})
    if r == 1:
        return Event(wid, job, K.JOB_LAUNCHED, {"attempt": 1, "handle": {"pid": i}})
    if r == 2:
        return Event(wid, job, K.JOB_OUTPUT, {"key": f"k{i % 3}", "value": i})
    return Event(wid, job, K.JOB_PROGRESS, {"progress": i % 100, "message": str(i)})

async def main(path):
    store = await Store.open(path)
    i = 0
    while True:
        wid = f"w{i // 3000}"
        if i % 3000 == 0:
            store.emit(Event(wid, None, K.WORKFLOW_SUBMITTED,
                             {"name": "crash", "spec": spec(7), "source": "-"}))
        futures = [store.emit(event(wid, i + k)) for k in range(250)]
        i += 250
        await futures[-1]
        print(store.last_seq, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_sigkill_mid_burst_loses_no_committed_event(tmp_path: Path) -> None:
    path = tmp_path / "ccd.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        committed = 0
        for line in child.stdout:  # the child reports each commit it saw
            committed = int(line)
            if committed >= 8000:
                break
        assert committed >= 8000, "the child stopped early"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()
    events = assert_is_fold_of_events(path)
    assert len(events) >= committed


async def test_jobs_json_built_by_sqlite_equals_get_jobs(store: Store) -> None:
    await store.record(submitted("w1", make_spec(jobs=["a", "b", "c", "d"])))
    for event in (
        job_event("w1", "a", K.JOB_STATE, 2.0, state="running", attempt=1, handle={"pid": 3}),
        job_event("w1", "a", K.JOB_PROGRESS, 2.5, progress=12.5, message='say "hi" ü'),
        job_event("w1", "a", K.JOB_OUTPUT, 3.0, key="k", value={"nested": [1, None]}),
        job_event("w1", "b", K.JOB_STATE, 4.0, state="failed", exit_code=3, reason="r"),
    ):
        store.emit(event)
    await store.flush()
    assert json.loads(await store.get_jobs_json("w1")) == await store.get_jobs("w1")
    assert json.loads(await store.get_jobs_json("nosuch")) == []


async def test_jobs_rows_with_the_computed_elapsed_field(store: Store) -> None:
    await store.record(submitted("w1", make_spec(jobs=["a", "b", "c"])))
    now = time.time()
    for event in (
        job_event("w1", "a", K.JOB_STATE, now - 100.0, state="running", attempt=1),
        job_event("w1", "a", K.JOB_STATE, now - 97.5, state="succeeded", exit_code=0),
        job_event("w1", "b", K.JOB_STATE, now - 90.0, state="running", attempt=1),
    ):
        store.emit(event)
    await store.flush()
    rows = json.loads(await store.get_jobs_json("w1", ["name", "elapsed"], rows=True))
    # whole seconds: to the end for a finished job, to the daemon's now while running
    assert rows[0] == ["a", 2] and rows[2] == ["c", None]
    assert rows[1][0] == "b" and 90 <= rows[1][1] <= 90 + (time.time() - now) + 1
    assert "elapsed" in JOB_FIELDS and "elapsed" not in (await store.get_jobs("w1"))[0]


def test_a_fold_is_freed_without_the_cyclic_collector() -> None:
    # a batch's rows must go as soon as the batch is written, not at the next gc run
    import gc
    import weakref

    from ccd.fold import Fold

    gc.disable()
    try:
        fold = Fold({}, {})
        ref = weakref.ref(fold)
        del fold
        assert ref() is None
    finally:
        gc.enable()
