"""The notifier: a daemon task that follows committed events and sends what is due.

It reads the event log as the event streams do (woken by the store's commits),
asks `ccd.notify` which notices each trigger makes (the daemon config's notifiers
and the workflow's own), and gives each notice a task of its own that tries it
(`ccd.daemon.deliver`) and waits between attempts.  The engine never waits for
any of it: a notice is only ever started from an event that is already committed.
Every outcome is an event: ``notify.sent`` or, once the attempts are spent,
``notify.failed``.

Restarts: the store keeps a cursor, the seq up to which every trigger's notices
are settled (recorded) or none were due.  A new daemon reads on from there,
skipping the notices whose outcome is already recorded, so a notice owed when the
last daemon stopped (or died) is sent by the next one, and a settled one is not
sent again.  A notice whose attempt was under way when its daemon died is sent
again (at least once, docs/decisions.md).  A first start, with no cursor, begins
at the end of the log: old workflows do not notify.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from functools import partial
from typing import Any

from pydantic import ValidationError

from ccd.config import DaemonConfig
from ccd.daemon.deliver import AttemptFailed, Sender
from ccd.events import Event, EventKind
from ccd.fold import BadEvent
from ccd.notify import Facts, Notice, due, outcome_data, payload, retry_delays, trigger_of
from ccd.spec.notify import Notifier
from ccd.store import Store
from ccd.store import notify as ledger

log = logging.getLogger(__name__)

#: the notifier's row in the store's cursors table
CURSOR = "notify"
#: events read per query
BATCH = 1000
#: a busy log commits hundreds of batches a second: the notifier looks at most this
#: often (bench/notify.py: following costs the store nothing measurable, and a webhook
#: arrives ~10 ms after the commit; a query per commit would be hundreds a second)
LOOK_EVERY = 0.02
#: while events flow, the cursor is written at most this often (and at shutdown);
#: a daemon that dies reads the events since the last write again, and sends none twice
CURSOR_EVERY = 10.0
#: seconds before the follower reads the log again after failing to
AGAIN = 5.0
#: attempts under way at once (commands and mails are processes)
PARALLEL = 8
#: workflows whose own notifiers are remembered (a job's failures ask again and again)
REMEMBERED = 256


class Notifications:
    """Owns the follower task and one task per notice being sent."""

    def __init__(self, store: Store, config: DaemonConfig) -> None:
        self._store = store
        self._configured = list(config.notify)
        self._policy = config.notify_delivery
        self._sender = Sender(config.notify_delivery.timeout)
        self._slots = asyncio.Semaphore(PARALLEL)
        #: notices being sent: id -> the seq of their trigger
        self._pending: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self._own: OrderedDict[str, list[Notifier]] = OrderedDict()
        #: every trigger up to this seq has been looked at
        self._seen = 0
        self._looked = 0.0
        self._saved = 0
        self._saved_at = 0.0
        #: notices recorded by an earlier daemon after the cursor (read once, at start)
        self._settled: set[str] = set()
        self._earlier = 0

    async def start(self) -> None:
        """Read the cursor (before the engine records anything) and start following."""
        stored = await self._store.query(lambda db: ledger.cursor(db, CURSOR))
        if stored is None:
            stored = self._store.last_seq
            await self._store.exclusive(lambda db: ledger.save_cursor(db, CURSOR, stored))
        self._seen = self._saved = stored
        self._saved_at = time.monotonic()
        self._earlier = self._store.last_seq
        self._settled = await self._store.query(lambda db: ledger.settled(db, stored))
        self._follower = asyncio.create_task(self._follow(), name="ccd notifier")

    async def close(self) -> None:
        """Stop sending (what is owed stays owed: the next daemon sends it) and keep
        the cursor.  The store must still be open."""
        tasks = [t for t in (self._follower, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # what this daemon committed is judged by its own notifiers, also the events
        # it had not looked at yet: the next daemon's config may have others
        with contextlib.suppress(Exception):  # else the next daemon judges them
            while await self._look(send=False):
                pass
            if self._position() != self._saved:
                await self._save(self._position())
        await self._sender.close()

    # -- following the log ------------------------------------------------------------
    async def _follow(self) -> None:
        while True:
            try:
                await self._follow_log()
                return
            except Exception:  # a bug, or a database locked for long by another program
                log.exception("notifier: could not read the event log; again in %gs", AGAIN)
                await asyncio.sleep(AGAIN)

    async def _follow_log(self) -> None:
        while True:
            while await self._look():
                pass
            if await self._store.wait_for_seq(self._seen) <= self._seen:
                return  # no new event, so the store let its waiters go: the daemon stops
            # the first commit after a quiet spell is looked at at once; a busy log
            # is looked at every LOOK_EVERY, whatever number of commits that is
            pause = self._looked + LOOK_EVERY - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)

    async def _look(self, send: bool = True) -> bool:
        """Judge the triggers committed since the last look (`send`: start sending
        their notices; else only count them as owed); True if there may be more."""
        upto = self._store.last_seq
        if upto <= self._seen:
            return False
        self._looked = time.monotonic()
        read = partial(ledger.triggers, after=self._seen, upto=upto, limit=BATCH)
        rows = await self._store.query(read)
        for row in rows:
            await self._consider(*row, send=send)
        more = len(rows) == BATCH
        self._seen = rows[-1][0] if more else upto
        if self._seen >= self._earlier:
            self._settled.clear()  # only an earlier daemon's notices are in it
        if send:
            await self._keep_cursor()
        return more

    async def _consider(
        self,
        seq: int,
        workflow_id: str,
        job: str | None,
        when: float,
        kind: str,
        data: Any,
        send: bool = True,
    ) -> None:
        trigger = trigger_of(seq, workflow_id, job, when, kind, data)
        if trigger is None:
            return
        notifiers = [*self._configured, *await self._own_notifiers(workflow_id)]
        for notice in due(trigger, notifiers):
            if notice.id in self._settled or notice.id in self._pending:
                continue
            self._pending[notice.id] = seq
            if send:
                task = asyncio.create_task(self._deliver(notice), name=f"notify {notice.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _own_notifiers(self, workflow_id: str) -> list[Notifier]:
        known = self._own.get(workflow_id)
        if known is None:
            raw = await self._store.query(lambda db: ledger.notifiers(db, workflow_id))
            try:
                known = [Notifier.model_validate(item) for item in raw or []]
            except ValidationError:
                log.exception("workflow %s: its stored notifiers are not valid", workflow_id)
                known = []
            self._own[workflow_id] = known
            if len(self._own) > REMEMBERED:
                self._own.popitem(last=False)
        return known

    # -- the cursor --------------------------------------------------------------------
    def _position(self) -> int:
        """The seq up to which nothing is owed: just before the oldest notice being sent."""
        return min(self._pending.values(), default=self._seen + 1) - 1

    async def _keep_cursor(self) -> None:
        position = self._position()
        if position != self._saved and time.monotonic() - self._saved_at >= CURSOR_EVERY:
            await self._save(position)

    async def _save(self, position: int) -> None:
        await self._store.exclusive(lambda db: ledger.save_cursor(db, CURSOR, position))
        self._saved, self._saved_at = position, time.monotonic()

    # -- one notice --------------------------------------------------------------------
    async def _deliver(self, notice: Notice) -> None:
        try:
            await self._attempts(notice)
        except asyncio.CancelledError:
            raise  # still pending: the next daemon sends it
        except Exception as exc:  # a bug: say so in the log, and let the cursor move on
            log.exception("notice %s: could not be sent", notice.id)
            await self._record(notice, EventKind.NOTIFY_FAILED, 1, f"internal error: {exc!r}")
        self._pending.pop(notice.id, None)

    async def _attempts(self, notice: Notice) -> None:
        body = await self._body(notice)
        if body is None:
            return  # the workflow was deleted meanwhile
        policy = self._policy
        waits = retry_delays(policy.attempts, policy.delay, policy.backoff, policy.max_delay)
        error, attempts = "", 0
        for wait in [0.0, *waits]:
            if wait:
                await asyncio.sleep(wait)  # the retry's backoff, not a wait for state
            attempts += 1
            try:
                async with self._slots:
                    await self._sender.send(notice.notifier, body)
            except AttemptFailed as failure:
                error = failure.message
                log.info("notice %s: attempt %d failed: %s", notice.id, attempts, error)
                if failure.retry:
                    continue
                break
            await self._record(notice, EventKind.NOTIFY_SENT, attempts)
            return
        await self._record(notice, EventKind.NOTIFY_FAILED, attempts, error)

    async def _body(self, notice: Notice) -> dict[str, Any] | None:
        trigger = notice.trigger
        wid, counts = trigger.workflow_id, trigger.job is None
        found = await self._store.query(lambda db: ledger.facts(db, wid, counts))
        if found is None:
            return None
        (name, state, source, created), per_state = found
        return payload(notice, Facts(name, state, source, created, per_state))

    async def _record(
        self, notice: Notice, kind: EventKind, attempts: int, error: str | None = None
    ) -> None:
        data = outcome_data(notice, attempts, error)
        event = Event(notice.trigger.workflow_id, notice.trigger.job, kind, data)
        if kind is EventKind.NOTIFY_FAILED:
            log.warning("notice %s to %s failed: %s", notice.id, data["to"], error)
        try:
            await self._store.record(event)
        except BadEvent:
            log.info("notice %s: its workflow was deleted meanwhile", notice.id)
