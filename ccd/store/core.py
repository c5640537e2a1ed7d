"""The `Store`: one writer task that batches events into transactions, plus reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ccd.events import Event
from ccd.fold import BadEvent, Fold, dumps_data
from ccd.heap import gc_paused
from ccd.store import gc, reads, rows, schema
from ccd.store.cache import CacheReads

log = logging.getLogger(__name__)

#: Most events in one transaction: bounds the memory a batch holds and how long
#: the event loop spends folding before it yields.
BATCH_CAP = 5000
#: batches this big are written with the cyclic garbage collector paused
BIG_BATCH = 1000

_Item = tuple[Event, "asyncio.Future[int]"]
_Result = int | BaseException
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Op:
    """Maintenance the writer runs between two batches, with the write connection."""

    run: Callable[[aiosqlite.Connection], Awaitable[Any]]
    future: asyncio.Future[Any]


_Queued = _Item | _Op | None

# max() of both: sqlite_sequence remembers seqs of deleted events, max(seq)
# covers a database whose sqlite_sequence row was lost (e.g. a .dump/.read).
_LAST_SEQ = """
    SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
               coalesce((SELECT max(seq) FROM events), 0))
"""


class Store:
    """The event log and the current state folded from it.

    Writes go through `emit`/`record` only; one writer task owns the write
    connection and commits whatever is queued as one transaction.  Reads use a
    second connection, so in WAL mode they never wait for the writer.
    """

    def __init__(
        self,
        write_db: aiosqlite.Connection,
        read_db: aiosqlite.Connection,
        last_seq: int,
        batch_cap: int,
        file: Path,
    ) -> None:
        self._file = file
        self._write_db = write_db
        self._read_db = read_db
        #: the cache table (``--resume``, ``ccctl why``)
        self.cache = CacheReads(read_db)
        self._last_seq = last_seq
        self._batch_cap = batch_cap
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        # Set and replaced after every batch: waiters wake without polling.
        self._changed = asyncio.Event()
        # emitted/processed count events, so `flush` needs no caller's future.
        self._emitted = 0
        self._processed = 0
        self._closing = False
        self._released = False
        self._closed = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name="ccd store writer")
        self._writer.add_done_callback(self._writer_stopped)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: str = schema.SYNCHRONOUS,
        batch_cap: int = BATCH_CAP,
    ) -> Store:
        """Open (creating it and its directory if needed) and migrate the database."""
        if synchronous not in schema.SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(schema.SYNCHRONOUS_MODES)}")
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        _create_private(file)
        async with contextlib.AsyncExitStack() as cleanup:
            write_db = await aiosqlite.connect(file, isolation_level=None)
            cleanup.push_async_callback(write_db.close)
            await schema.configure(write_db, synchronous=synchronous, writer=True)
            await schema.migrate(write_db)
            last_seq = await _scalar(write_db, _LAST_SEQ)
            read_db = await aiosqlite.connect(file, isolation_level=None)
            cleanup.push_async_callback(read_db.close)
            await schema.configure(read_db, synchronous=synchronous, writer=False)
            store = cls(write_db, read_db, last_seq, batch_cap, file)
            cleanup.pop_all()
        return store

    async def close(self) -> None:
        """Commit everything emitted so far, stop the writer, close the connections."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._queue.put_nowait(None)  # the writer stops when it reaches this
        try:
            # wait() rather than await: a writer that crashed was logged already
            # and must not make close() fail before the connections are closed.
            await asyncio.wait({self._writer})
        finally:
            # Only if close() itself was cancelled: do not leave the writer behind.
            if not self._writer.done():
                self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._fail_queued(RuntimeError("the store was closed before the event was written"))
            await self._write_db.close()
            await self._read_db.close()
            self._closed.set()
            self._notify()

    # -- writing ------------------------------------------------------------------------
    def emit(self, event: Event) -> asyncio.Future[int]:
        """Queue `event`; the future resolves to its seq once its transaction committed."""
        if self._closing or self._writer.done():
            raise RuntimeError(
                f"the event store is closed; cannot record {event.kind} for {event.workflow_id}"
            )
        future: asyncio.Future[int] = self._loop.create_future()
        self._queue.put_nowait((event, future))
        self._emitted += 1
        return future

    async def record(self, event: Event) -> int:
        """Emit `event` and wait until it is durable; returns its seq."""
        # shield: a cancelled caller must not cancel the future other code may await.
        return await asyncio.shield(self.emit(event))

    async def flush(self) -> None:
        """Wait until every event emitted so far was committed (or failed)."""
        target = self._emitted
        while self._processed < target and not self._writer.done():
            await self._changed.wait()

    @property
    def last_seq(self) -> int:
        """The highest committed seq."""
        return self._last_seq

    # The timeout is part of the contract: callers (event streams) wake on either.
    async def wait_for_seq(self, after: int, timeout: float | None = None) -> int:  # noqa: ASYNC109
        """Return `last_seq` as soon as it is above `after`, or when `timeout` passes."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._last_seq <= after and not (self._closed.is_set() or self._released):
                    await self._changed.wait()
        return self._last_seq

    def release_waiters(self) -> None:
        """Make every `wait_for_seq`, now and later, return at once (shutdown has begun)."""
        self._released = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- maintenance ----------------------------------------------------------------------
    async def exclusive(self, run: Callable[[aiosqlite.Connection], Awaitable[_T]]) -> _T:
        """Run `run(write connection)` in the writer, in queue order with the events.

        Every event emitted before this call is committed first; events emitted
        after it wait until `run` has returned.  This keeps the writer the only
        writer, so the tables stay the fold of the log.
        """
        if self._closing or self._writer.done():
            raise RuntimeError("the event store is closed")
        future: asyncio.Future[_T] = self._loop.create_future()
        self._queue.put_nowait(_Op(run, future))
        return await asyncio.shield(future)

    async def query(self, run: Callable[[aiosqlite.Connection], Awaitable[_T]]) -> _T:
        """`run(read connection)`: a read of this package's own (`ccd.store.notify`)."""
        return await run(self._read_db)

    async def expired(self, cutoff: float, exclude: Container[str] = ()) -> gc.Expired:
        """Finished workflows that ended before `cutoff`: what `delete_expired` would delete."""
        return await gc.select_expired(self._read_db, cutoff, exclude)

    async def delete_expired(self, cutoff: float, exclude: Container[str] = ()) -> gc.Expired:
        """Delete finished workflows that ended before `cutoff` (events, jobs, rows), VACUUM."""
        return await self.exclusive(lambda db: gc.delete_expired(db, self._file, cutoff, exclude))

    async def _run_op(self, op: _Op) -> None:
        try:
            result = await op.run(self._write_db)
        except asyncio.CancelledError:
            if not op.future.done():
                op.future.set_exception(RuntimeError("the store was closed mid-operation"))
            raise
        except Exception as exc:  # the operation's own error, for its caller
            await self._rollback()
            if not op.future.done():
                op.future.set_exception(exc)
        else:
            if not op.future.done():
                op.future.set_result(result)
        finally:
            self._notify()

    async def _write_loop(self) -> None:
        while True:
            batch, op, stop = await self._next_batch()
            if batch:
                await self._write_batch(batch)
            if op is not None:
                await self._run_op(op)
            if stop:
                return

    async def _next_batch(self) -> tuple[list[_Item], _Op | None, bool]:
        """Wait for one item, then take the events already queued (up to the cap).

        A batch ends before an operation, which runs right after it: events keep
        their order relative to operations.
        """
        item = await self._queue.get()
        batch: list[_Item] = []
        while isinstance(item, tuple):
            batch.append(item)
            if len(batch) >= self._batch_cap or self._queue.empty():
                return batch, None, False
            item = self._queue.get_nowait()
        if item is None:
            return batch, None, True
        return batch, item, False

    async def _write_batch(self, batch: list[_Item]) -> None:
        # a batch of thousands of events (a big workflow's jobs all queued at once)
        # makes rows and event texts, none garbage: no cyclic collection meanwhile
        pause = gc_paused() if len(batch) >= BIG_BATCH else contextlib.nullcontext()
        with pause:
            await self._write_batch_now(batch)

    async def _write_batch_now(self, batch: list[_Item]) -> None:
        results: list[_Result] = []
        try:
            await self._write_db.execute("BEGIN IMMEDIATE")
            fold = await rows.load(self._write_db, [event for event, _ in batch])
            events, results = self._fold(fold, batch)
            await rows.persist(self._write_db, fold, events)
            await self._write_db.execute("COMMIT")
            self._last_seq += len(events)
        except asyncio.CancelledError:
            # Only close() cancels the writer; closing the connection rolls back.
            self._resolve(batch, results, RuntimeError("the store was closed mid-commit"))
            raise
        except Exception as exc:
            # A bug or a full disk: fail this batch, keep the writer alive for the next.
            log.exception("could not commit a batch of %d events", len(batch))
            await self._rollback()
            self._resolve(batch, results, exc)
        else:
            self._resolve(batch, results, None)
        finally:
            self._processed += len(batch)
            self._notify()

    def _fold(self, fold: Fold, batch: list[_Item]) -> tuple[list[tuple[Any, ...]], list[_Result]]:
        """Apply the batch in order; returns the event rows to insert and each event's outcome."""
        rows: list[tuple[Any, ...]] = []
        results: list[_Result] = []
        seq = self._last_seq
        for event, _ in batch:
            try:
                data = dumps_data(event.data)
                kind = fold.apply(event)
            except Exception as exc:
                results.append(_rejected(event, exc))
                continue
            seq += 1
            rows.append((seq, event.workflow_id, event.job, float(event.time), kind, data))
            results.append(seq)
        return rows, results

    async def _rollback(self) -> None:
        try:
            if self._write_db.in_transaction:
                await self._write_db.execute("ROLLBACK")
        except Exception:
            log.exception("rollback failed")

    def _resolve(self, batch: list[_Item], results: list[_Result], error: Exception | None) -> None:
        """Settle every future of the batch; `error` replaces the seqs of a failed commit."""
        for index, (_, future) in enumerate(batch):
            if future.done():  # the caller cancelled it; the event is recorded anyway
                continue
            # results is short when the batch failed before (or while) folding.
            outcome = results[index] if index < len(results) else None
            if isinstance(outcome, BaseException):  # rejected: keeps its own error
                future.set_exception(outcome)
            elif error is not None or outcome is None:
                future.set_exception(error or RuntimeError("the store lost this event"))
            else:
                future.set_result(outcome)

    def _fail_queued(self, error: Exception) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            future = item.future if isinstance(item, _Op) else item[1] if item else None
            if future is not None and not future.done():
                future.set_exception(error)

    def _writer_stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the store's writer crashed", exc_info=task.exception())
        # Nothing will take events from the queue any more: do not leave callers hanging.
        self._fail_queued(RuntimeError("the event store's writer stopped"))
        self._notify()

    # -- reading ------------------------------------------------------------------------
    async def list_workflows(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: id, name, state, source, created, updated, ended, counts {state: n}."""
        return await reads.list_workflows(self._read_db, limit)

    async def list_workflows_page(
        self, state: str, name: str, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first, of a state and with `name` in the name ('' for any): a page of
        `list_workflows`' rows, and how many match in all."""
        return await reads.list_workflows_page(self._read_db, state, name, limit, offset)

    async def find_workflow(self, ref: str) -> dict[str, Any] | None:
        """The workflow with id `ref`, else the newest one named `ref`."""
        return await reads.find_workflow(self._read_db, ref)

    async def get_jobs(self, workflow_id: str) -> list[dict[str, Any]]:
        """The workflow's jobs in file order, JSON columns decoded."""
        return await reads.get_jobs(self._read_db, workflow_id)

    async def get_jobs_json(
        self, workflow_id: str, fields: Sequence[str] | None = None, rows: bool = False
    ) -> str:
        """`get_jobs` as a JSON array text, ready to send (no decode/encode in Python);
        only `fields` of each job when given (each must be in `reads.JOB_FIELDS`), as
        arrays in that order if `rows`."""
        if fields is not None and not set(fields) <= reads.JOB_FIELDS:
            raise ValueError(f"unknown job fields: {sorted(set(fields) - reads.JOB_FIELDS)}")
        return await reads.get_jobs_json(self._read_db, workflow_id, fields, rows)

    async def get_job(self, workflow_id: str, name: str) -> dict[str, Any] | None:
        return await reads.get_job(self._read_db, workflow_id, name)

    async def events_json(
        self, workflow_id: str | None, after_seq: int, limit: int = 1000
    ) -> list[tuple[int, str]]:
        """Events with seq > `after_seq` (of one workflow, or all), oldest first, as (seq,
        JSON text) pairs ready to send: no decode/encode."""
        return await reads.events_json(self._read_db, workflow_id, after_seq, limit)

    async def events_of_kinds(
        self, workflow_id: str, kinds: Sequence[str]
    ) -> list[tuple[str | None, float, str, str]]:
        return await reads.events_of_kinds(self._read_db, workflow_id, kinds)

    async def unfinished_workflows(self) -> list[dict[str, Any]]:
        """Workflows still running (e.g. when the daemon stopped), spec decoded."""
        return await reads.unfinished_workflows(self._read_db)

    async def get_job_spec(self, workflow_id: str, name: str) -> dict[str, Any] | None:
        return await reads.get_job_spec(self._read_db, workflow_id, name)

    async def get_spec(self, workflow_id: str) -> dict[str, Any] | None:
        return await reads.get_spec(self._read_db, workflow_id)


def _create_private(file: Path) -> None:
    """Create the database file readable by its owner only, unless it exists.

    Specs hold commands and environment variables; SQLite gives the -wal and
    -shm files the permissions of the database file.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


async def _scalar(db: aiosqlite.Connection, sql: str) -> int:
    async with db.execute(sql) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def _rejected(event: Event, error: Exception) -> BadEvent:
    where = event.workflow_id if event.job is None else f"{event.workflow_id}/{event.job}"
    if isinstance(error, BadEvent):
        rejected = error
    else:
        rejected = BadEvent(f"{event.kind} for {where} rejected: {error!r}")
        rejected.__cause__ = error
    log.error("event not recorded: %s", rejected)
    return rejected
