"""Routes that stream: a job attempt's log, one workflow's events, every event.

A stream sends what exists from the requested offset or sequence number; with
`follow` it then waits for more and ends when the thing it follows has ended (the
attempt, the workflow) or when the daemon stops.  Waiting costs no timer per
stream: a log follower is woken by the file watcher, an event follower by the
store's commit of new events, and an idle one sends a heartbeat line now and then
so a client that went away is noticed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from ccd.api.deps import ServicesDep, find_job, find_workflow
from ccd.api.models import ERRORS
from ccd.api.services import LogWatch, Services
from ccd.errors import Conflict, NotFound
from ccd.executors.wrapper import EXIT, LOG, attempt_dir
from ccd.states import JobState
from ccd.store import Store

router = APIRouter(responses=ERRORS)

#: an idle stream sends an empty line this often, so dead clients are noticed
HEARTBEAT = 15.0
#: bytes a log stream reads and sends at a time (below the daemon's mmap threshold:
#: ccd/daemon/memory.py)
LOG_CHUNK = 512 * 1024
#: a followed log that has not changed this long is checked for its attempt's end anyway
LOG_SAFETY_WAIT = 1.0
#: while a followed log grows, the store is asked at most this often whether it ended
LOG_STORE_CHECK = 0.25
#: events read from the store per query (and sent per write)
EVENT_BATCH = 1000

#: what the streams send, for the OpenAPI document (they build their bodies themselves)
_TEXT = {"schema": {"type": "string"}}
_LOG: dict[int | str, dict[str, Any]] = {
    200: {"description": "the attempt's log", "content": {"text/plain": _TEXT}}
}
_EVENT_LINES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "events, one JSON object a line (as Server-Sent Events if asked)",
        "content": {"application/x-ndjson": _TEXT, "text/event-stream": _TEXT},
    }
}


@router.get("/v1/workflows/{ref}/jobs/{job}/log", response_class=StreamingResponse, responses=_LOG)
async def job_log(
    ref: str,
    job: str,
    services: ServicesDep,
    attempt: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    follow: bool = False,
) -> Response:
    store = services.store
    row = await find_workflow(store, ref)
    jrow = await find_job(store, row["id"], job)
    number = attempt or jrow["attempt"]
    if attempt is not None and number > jrow["attempt"]:
        raise NotFound(f"job '{job}' has no attempt {number} (it has {jrow['attempt']})")
    owner, name = row["id"], job
    reused = await store.cache.of_job(owner, job) if jrow["attempt"] == 0 else None
    if reused is not None and attempt is None:
        # a job reused from an earlier workflow (--resume): that run's log
        owner, name, number = reused.origin_workflow, reused.origin_job, reused.origin_attempt
    elif follow and attempt is None and jrow["attempt"] == 0:
        number = await _first_attempt(services, row["id"], job)
    run_dir = attempt_dir(services.config.runs_dir, owner, name, number)
    if number < 1 or not run_dir.is_dir():
        raise NotFound(f"job '{job}' has not started, so it has no log")
    end = _AttemptEnd(store, owner, name, number, run_dir)
    stream = _log_stream(services, end, run_dir, offset, follow)
    return StreamingResponse(stream, media_type="text/plain; charset=utf-8")


@router.get("/v1/workflows/{ref}/events", response_class=StreamingResponse, responses=_EVENT_LINES)
async def workflow_events(
    ref: str,
    request: Request,
    services: ServicesDep,
    since: Annotated[int, Query(ge=0)] = 0,
    follow: bool = False,
) -> Response:
    row = await find_workflow(services.store, ref)
    sse = "text/event-stream" in request.headers.get("accept", "")
    stream = _event_stream(services, row["id"], since, follow, sse)
    media = "text/event-stream" if sse else "application/x-ndjson"
    return StreamingResponse(stream, media_type=media)


@router.get("/v1/events", response_class=StreamingResponse, responses=_EVENT_LINES)
async def all_events(
    services: ServicesDep, since: Annotated[int, Query(ge=0)] = 0, follow: bool = False
) -> Response:
    stream = _event_stream(services, None, since, follow, sse=False)
    return StreamingResponse(stream, media_type="application/x-ndjson")


async def _log_stream(
    services: Services, end: _AttemptEnd, run_dir: Path, offset: int, follow: bool
) -> AsyncIterator[bytes]:
    watch = services.filewatch.watch(run_dir) if follow else None
    # the wrapper may not have created the log yet; creating it empty is harmless
    fd = os.open(run_dir / LOG, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        ended = quiet = False
        while True:
            # a worker thread: a log that is not in the page cache would block the loop
            data = await asyncio.to_thread(os.pread, fd, LOG_CHUNK, offset)
            if data:
                offset += len(data)
                yield data
                continue
            if ended:
                return
            # asked only when caught up (not per chunk), and then read once more, so
            # output written just before the end is not missed
            ended = not follow or services.stopping or await end.reached(quiet)
            if not ended:
                assert watch is not None
                quiet = await _wait_change(watch)
    finally:
        os.close(fd)
        if watch is not None:
            watch.close()


async def _first_attempt(services: Services, workflow_id: str, job: str) -> int:
    """Wait until the job's first attempt starts (0 if it ends without starting)."""
    store = services.store
    while True:
        seen = store.last_seq
        row = await store.get_job(workflow_id, job)
        if row is None or row["attempt"] > 0 or JobState(row["state"]).is_final:
            return 0 if row is None else int(row["attempt"])
        if services.stopping:
            raise Conflict(f"the daemon is stopping before job '{job}' started; ask again later")
        await store.wait_for_seq(seen, timeout=HEARTBEAT)


async def _wait_change(watch: LogWatch) -> bool:
    """Wait for the inotify wake-up, with a slow safety net in case the attempt ends
    silently (or the poll interval, without inotify); True if nothing changed."""
    timeout = LOG_SAFETY_WAIT if watch.timeout is None else watch.timeout
    try:
        async with asyncio.timeout(timeout):  # not wait_for: no task per wake-up
            await watch.changed.wait()
    except TimeoutError:
        return True
    finally:
        watch.changed.clear()
    return False


class _AttemptEnd:
    """Whether a followed attempt is over: its exit file says so, else the store.

    The store also knows of ends without an exit file (a wrapper killed with the
    daemon away, a remote attempt whose log is mirrored here), but asking it is a
    query: while the log keeps growing it is asked at most every `LOG_STORE_CHECK`
    seconds, not at every catch-up with the writer (hundreds a second in a flood).
    """

    def __init__(
        self, store: Store, workflow_id: str, job: str, attempt: int, run_dir: Path
    ) -> None:
        self._store = store
        self._workflow_id = workflow_id
        self._job = job
        self._attempt = attempt
        self._exit = run_dir / EXIT
        self._asked = float("-inf")

    async def reached(self, quiet: bool) -> bool:
        """`quiet`: the log has not changed for a while, so ask the store anyway."""
        if self._exit.exists():
            return True
        now = time.monotonic()
        if not quiet and now - self._asked < LOG_STORE_CHECK:
            return False
        self._asked = now
        row = await self._store.get_job(self._workflow_id, self._job)
        if row is None:
            return True
        return row["attempt"] != self._attempt or JobState(row["state"]) is not JobState.RUNNING


async def _event_stream(
    services: Services, workflow_id: str | None, since: int, follow: bool, sse: bool
) -> AsyncIterator[bytes]:
    store = services.store
    last = since
    final = False
    while True:
        seen = store.last_seq
        batch = await store.events_json(workflow_id, last, limit=EVENT_BATCH)
        if batch:
            last = batch[-1][0]
            # one write per batch: a busy workflow sends hundreds of events a second
            if sse:
                yield "".join(f"id: {seq}\ndata: {text}\n\n" for seq, text in batch).encode()
            else:
                yield ("\n".join(text for _, text in batch) + "\n").encode()
        if len(batch) == EVENT_BATCH:
            continue  # more are waiting: no pause, no end check
        # a stopping daemon ends its streams (after what was committed) so it can exit
        if not follow or final or services.stopping:
            return
        if workflow_id is not None and await _workflow_final(services, workflow_id):
            final = True  # drain once more: the final event may have landed just now
            continue
        if await store.wait_for_seq(max(seen, last), timeout=HEARTBEAT) == max(seen, last):
            yield b": keep-alive\n\n" if sse else b"\n"


async def _workflow_final(services: Services, workflow_id: str) -> bool:
    if services.engine.is_running(workflow_id):
        return False
    row = await services.store.find_workflow(workflow_id)
    return row is None or row["state"] != "running"
