"""The notifier over a real store: what it reads, its cursor, what it owes after a stop.

No daemon: `Notifications` runs on a real SQLite `Store` with command notifiers (real
processes), so its bookkeeping is checked in well under a second per case; the
daemon's own tests (tests/integration/test_notify.py) cover webhooks and restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ccd.config import DaemonConfig
from ccd.daemon.deliver import AttemptFailed, Sender
from ccd.daemon.notifier import CURSOR, LOOK_EVERY, Notifications
from ccd.events import Event, EventKind
from ccd.spec.notify import Notifier
from ccd.spec.validate import load_workflow_text
from ccd.store import Store
from ccd.store import notify as ledger

WID = "a1b2c3d4"
K = EventKind


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "ccd.db")
    yield s
    await s.close()


async def submit(store: Store, wid: str = WID, notify: str = "") -> None:
    text = f"name: wf\n{notify}jobs: {{a: {{run: 'true'}}, b: {{run: 'true'}}}}\n"
    spec = load_workflow_text(text, base_dir="/tmp").model_dump(mode="json")
    await store.record(Event(wid, None, K.WORKFLOW_SUBMITTED, {"name": "wf", "spec": spec}))


async def job(store: Store, name: str, state: str, **data: Any) -> int:
    return await store.record(Event(WID, name, K.JOB_STATE, {"state": state, **data}))


async def end(store: Store, state: str, wid: str = WID) -> int:
    return await store.record(Event(wid, None, K.WORKFLOW_STATE, {"state": state}))


async def outcomes(store: Store, count: int) -> list[dict[str, Any]]:
    """The notify.* events, once there are `count` of them (woken by the store's commits)."""
    async with asyncio.timeout(30):
        while True:
            seen = store.last_seq
            rows = [json.loads(text) for _, text in await store.events_json(None, 0, 10_000)]
            found = [e for e in rows if e["kind"].startswith("notify.")]
            if len(found) >= count:
                return found
            await store.wait_for_seq(seen)


@contextlib.contextmanager
def logged(text: str) -> Iterator[asyncio.Event]:
    """An event set when the notifier logs a line with `text` (it logs every attempt)."""
    seen = asyncio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    handler, logger = Handler(), logging.getLogger("ccd.daemon.notifier")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def configured(notify: list[dict[str, Any]], **delivery: Any) -> DaemonConfig:
    return DaemonConfig.model_validate({"notify": notify, "notify_delivery": delivery})


async def test_the_store_reads_only_triggers_in_the_range(store: Store) -> None:
    await submit(store)
    await job(store, "a", "queued")
    retried = await job(store, "a", "queued", reason="retry")
    failed = await job(store, "a", "failed", attempt=2, exit_code=3)
    await job(store, "b", "skipped")
    timed_out = await job(store, "b", "timed_out")
    await store.record(Event(WID, None, K.WORKFLOW_STATE, {"state": "running"}))
    ended = await end(store, "failed")
    rows = await store.query(lambda db: ledger.triggers(db, 0, store.last_seq, 100))
    assert [row[0] for row in rows] == [failed, timed_out, ended]
    assert rows[0][1:3] == (WID, "a") and rows[0][5] == {
        "state": "failed",
        "attempt": 2,
        "exit_code": 3,
    }
    # after, up to, and at most
    assert [
        r[0] for r in await store.query(lambda db: ledger.triggers(db, failed, ended - 1, 9))
    ] == [timed_out]
    assert [r[0] for r in await store.query(lambda db: ledger.triggers(db, retried, ended, 1))] == [
        failed
    ]


async def test_the_store_reads_a_workflows_notifiers_and_facts(store: Store) -> None:
    await submit(store, notify="notify: [{on: [failed], command: 'true'}]\n")
    await job(store, "a", "failed")
    assert await store.query(lambda db: ledger.notifiers(db, WID)) == [
        {"on": ["failed"], "webhook": None, "command": "true", "mail": None, "via": None}
    ]
    assert await store.query(lambda db: ledger.notifiers(db, "nope")) is None
    (name, state, source, when), counts = await store.query(lambda db: ledger.facts(db, WID, True))
    assert when > 0 and (name, state, source, counts) == (
        "wf",
        "running",
        "<string>",
        {"failed": 1, "pending": 1},
    )
    assert (await store.query(lambda db: ledger.facts(db, WID, False)))[1] == {}


async def test_the_cursor_is_kept_in_the_store(store: Store) -> None:
    assert await store.query(lambda db: ledger.cursor(db, CURSOR)) is None
    await store.exclusive(lambda db: ledger.save_cursor(db, CURSOR, 41))
    await store.exclusive(lambda db: ledger.save_cursor(db, CURSOR, 42))
    assert await store.query(lambda db: ledger.cursor(db, CURSOR)) == 42


async def test_a_notice_is_sent_and_recorded_and_the_cursor_moves_past_it(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    notifications = Notifications(store, configured([{"command": f"cat > {out}"}]))
    await notifications.start()
    try:
        await submit(store)
        trigger = await end(store, "succeeded")
        [sent] = await outcomes(store, 1)
    finally:
        await notifications.close()
    assert (sent["kind"], sent["data"]["trigger"], sent["data"]["attempts"]) == (
        "notify.sent",
        trigger,
        1,
    )
    assert json.loads(out.read_text())["id"] == sent["data"]["notice"]
    # nothing is owed: the cursor is past every event
    assert await store.query(lambda db: ledger.cursor(db, CURSOR)) == store.last_seq


async def test_a_notice_being_tried_when_it_stops_stays_owed(store: Store, tmp_path: Path) -> None:
    failing = configured([{"command": "exit 1"}], attempts=100, delay=60)
    notifications = Notifications(store, failing)
    await notifications.start()
    await submit(store)
    with logged("attempt 1 failed") as tried:
        trigger = await end(store, "failed")
        async with asyncio.timeout(30):
            await tried.wait()
    await notifications.close()
    assert await store.query(lambda db: ledger.cursor(db, CURSOR)) == trigger - 1
    # the next one sends it, with its own config's attempts
    out = tmp_path / "out"
    notifications = Notifications(store, configured([{"command": f"cat > {out}"}]))
    await notifications.start()
    try:
        [sent] = await outcomes(store, 1)
    finally:
        await notifications.close()
    assert sent["data"]["trigger"] == trigger and out.exists()


@pytest.mark.parametrize("owed", [True, False])
async def test_events_not_yet_looked_at_are_judged_when_it_stops(
    store: Store, tmp_path: Path, owed: bool
) -> None:
    """What a daemon committed is judged by its own notifiers, not the next one's."""
    notify = [{"on": ["failed"], "command": "true"}] if owed else []
    notifications = Notifications(store, configured(notify))
    await notifications.start()
    await submit(store)
    trigger = await end(store, "failed")
    await notifications.close()  # before its follower looked (it waits after a wake-up)
    cursor = await store.query(lambda db: ledger.cursor(db, CURSOR))
    assert cursor == (trigger - 1 if owed else store.last_seq)


async def test_a_first_start_begins_at_the_end_of_the_log(store: Store, tmp_path: Path) -> None:
    await submit(store)
    await end(store, "failed")
    out = tmp_path / "out"
    notifications = Notifications(store, configured([{"command": f"cat >> {out}"}]))
    await notifications.start()
    try:
        await submit(store, "e5f6a7b8")
        trigger = await end(store, "failed", "e5f6a7b8")
        [sent] = await outcomes(store, 1)
    finally:
        await notifications.close()
    assert sent["data"]["trigger"] == trigger
    assert [json.loads(line)["workflow_id"] for line in out.read_text().splitlines()] == [
        "e5f6a7b8"
    ]


async def test_a_deleted_workflow_owes_nothing(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    notifications = Notifications(store, configured([{"command": f"cat > {out}"}]))
    await notifications.start()
    await submit(store)
    await store.record(Event(WID, None, K.WORKFLOW_STATE, {"state": "succeeded"}))
    await store.delete_expired(cutoff=float("inf"))  # gone before it was sent
    await submit(store, "e5f6a7b8")
    await end(store, "failed", "e5f6a7b8")
    try:
        [sent] = await outcomes(store, 1)
    finally:
        await notifications.close()
    assert sent["workflow_id"] == "e5f6a7b8"
    assert await store.query(lambda db: ledger.cursor(db, CURSOR)) == store.last_seq


async def test_it_stops_following_when_the_store_lets_its_waiters_go(store: Store) -> None:
    """Shutdown releases the store's waiters first: the follower must end, not spin
    (one looping without a wait holds the event loop until pytest-timeout breaks in)."""
    notifications = Notifications(store, configured([{"command": "true"}]))
    await notifications.start()
    await submit(store)
    # a quiet spell longer than its pace, so the wake-up is looked at at once
    await asyncio.sleep(2 * LOOK_EVERY)
    store.release_waiters()
    follower = notifications._follower
    assert follower is not None
    for _ in range(10):  # it wakes, sees nothing new, and ends
        await asyncio.sleep(0)
    assert follower.done() and not follower.cancelled() and follower.exception() is None
    await notifications.close()
    assert await store.query(lambda db: ledger.cursor(db, CURSOR)) == store.last_seq


async def test_a_webhook_that_never_answers_is_a_failed_attempt_worth_another() -> None:
    done = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # the request; no answer until the test ends
        await done.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = Sender(timeout=0.3)
    body = {"id": "1-x", "summary": "s"}
    try:
        with pytest.raises(AttemptFailed) as silent:
            await sender.send(Notifier(webhook=f"http://127.0.0.1:{port}/t0k3n"), body)
        assert (silent.value.message, silent.value.retry) == ("no answer within 0.3s", True)
        server.close()
        await server.wait_closed()
        with pytest.raises(AttemptFailed) as refused:  # nothing listens there now
            await sender.send(Notifier(webhook=f"http://127.0.0.1:{port}/t0k3n"), body)
        assert refused.value.retry and "t0k3n" not in refused.value.message
    finally:
        done.set()
        server.close()
        await sender.close()
