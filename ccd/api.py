"""The HTTP API (FastAPI), served by the daemon on its Unix socket.

Routes are thin: they validate input, call the engine or the store, and shape
JSON.  Expected failures are `CcdError`s and become a 4xx whose body says what
to fix; the streams (logs, events) end when the thing they follow has ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccd import __version__, retention
from ccd.errors import CcdError, Conflict, NotFound
from ccd.executors.base import LaunchError
from ccd.executors.wrapper import EXIT, LOG, attempt_dir
from ccd.heap import gc_paused
from ccd.spec.durations import parse_age
from ccd.spec.model import Workflow
from ccd.spec.validate import load_workflow_text
from ccd.states import JobState
from ccd.store.reads import JOB_FIELDS

if TYPE_CHECKING:
    from ccd.daemon.server import Daemon
    from ccd.engine import Engine

#: the largest workflow file the API accepts
MAX_BODY = 32 * 1024 * 1024
#: an idle stream sends an empty line this often, so dead clients are noticed
HEARTBEAT = 15.0
#: bytes a log stream reads and sends at a time (below the daemon's mmap threshold:
#: ccd/daemon/memory.py)
LOG_CHUNK = 512 * 1024
#: a followed log that has not changed this long is checked for its attempt's end anyway
LOG_SAFETY_WAIT = 1.0
#: while a followed log grows, the store is asked at most this often whether it ended
LOG_STORE_CHECK = 0.25


class GcRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: an age with a unit: 30d, 12h, 90m
    older_than: str
    dry_run: bool = False


class _Running:
    """The workflows the engine drives now, asked at the moment `gc` deletes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __contains__(self, workflow_id: object) -> bool:
        return isinstance(workflow_id, str) and self._engine.is_running(workflow_id)


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(daemon: Daemon) -> FastAPI:
    app = FastAPI(
        title="ccd",
        version=__version__,
        description="Workflow coordinator daemon: submit, watch and control workflows.",
    )
    store, engine, config = daemon.store, daemon.engine, daemon.config

    @app.exception_handler(CcdError)
    async def ccd_error(_: Request, exc: CcdError) -> JSONResponse:
        problems = [p.to_dict() for p in getattr(exc, "problems", [])]
        extra = {"problems": problems} if problems else {}
        return _error(exc.http_status, exc.message, **extra)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = (
                f"no such API route: {request.method} {request.url.path} "
                "(see /docs; names with '/' are not workflow names)"
            )
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        else:
            message = str(exc.detail)
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(400, "bad request: " + "; ".join(parts))

    async def workflow(ref: str) -> dict[str, Any]:
        row = await store.find_workflow(ref)
        if row is None:
            raise NotFound(f"no workflow with id or name '{ref}' (see: ccctl ls)")
        return row

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "uptime": time.time() - daemon.started,
            "state_dir": str(config.state_dir),
        }

    @app.post("/v1/shutdown", status_code=202)
    async def shutdown() -> dict[str, str]:
        daemon.request_stop()
        return {"status": "stopping"}

    async def read_spec(request: Request, source: str | None) -> Workflow:
        """The validated workflow in the request body (YAML); `source` is its file."""
        body = await request.body()
        if len(body) > MAX_BODY:
            raise CcdError(f"workflow is {len(body)} bytes; the limit is {MAX_BODY}")
        path = Path(source) if source else None
        if path is not None and not path.is_absolute():
            raise CcdError("source must be the workflow file's absolute path")
        # validation is CPU work that grows with the file: keep it off the loop
        return await asyncio.to_thread(
            load_workflow_text,
            body,
            source=str(path) if path else "<request>",
            base_dir=path.parent if path is not None else Path.cwd(),
            known_hosts=config.known_hosts(),
        )

    @app.post("/v1/validate")
    async def validate(request: Request, source: str | None = None) -> dict[str, Any]:
        """Validate a workflow (the body, YAML) without running it."""
        with gc_paused():
            spec = await read_spec(request, source)
        return {"name": spec.name, "jobs": len(spec.jobs)}

    @app.post("/v1/workflows", status_code=201)
    async def submit(request: Request, source: str | None = None) -> dict[str, Any]:
        """Submit a workflow: the body is the workflow file (YAML)."""
        with gc_paused():  # a big workflow is millions of objects, none garbage
            spec = await read_spec(request, source)
            workflow_id = await engine.submit(spec)
        return {"id": workflow_id, "name": spec.name, "jobs": len(spec.jobs)}

    @app.get("/v1/workflows")
    async def list_workflows(limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> Any:
        return await store.list_workflows(limit)

    @app.get("/v1/workflows/{ref}")
    async def show(ref: str, fields: str | None = None, rows: bool = False) -> Response:
        """The workflow and its jobs (in file order): what `ccctl status` shows.

        `fields` (comma-separated, e.g. ``name,state,progress``) limits what each job
        carries: a 10,000-job status is ~4 MB with handles and outputs.  Besides the
        stored fields, ``elapsed`` is whole seconds from start to end (or to now while
        the job runs).  With `rows`
        each job is an array of those fields in that order (named once, in
        ``job_fields``): half the bytes and a faster decode for big workflows."""
        wanted = None
        if fields is not None:
            wanted = [f for f in fields.split(",") if f]
            unknown = sorted(set(wanted) - JOB_FIELDS)
            if unknown:
                raise CcdError(
                    f"unknown job fields {unknown}; known: {', '.join(sorted(JOB_FIELDS))}"
                )
        if rows and not wanted:
            raise CcdError("rows needs fields: name the job fields the rows hold, in order")
        # events after `seq` may or may not be reflected below; a watcher that
        # applies them again converges, because events carry absolute values
        seq = store.last_seq
        row = await workflow(ref)
        row["seq"] = seq
        row.pop("spec", None)
        # the jobs' JSON comes from SQLite as text: a 10,000-job status is ~4 MB,
        # and decoding then re-encoding it in Python cost most of the request
        jobs = await store.get_jobs_json(row["id"], wanted, rows)
        if rows:
            row["job_fields"] = wanted
        body = json.dumps(row)[:-1] + ', "jobs": ' + jobs + "}"
        return Response(body.encode(), media_type="application/json")

    @app.post("/v1/workflows/{ref}/cancel")
    async def cancel(ref: str, job: str | None = None) -> dict[str, Any]:
        row = await workflow(ref)
        if job is not None and await store.get_job(row["id"], job) is None:
            raise NotFound(f"workflow {row['id']} has no job '{job}'")
        seq = store.last_seq  # events after this one tell how the cancel went
        engine.cancel(row["id"], job)
        return {"id": row["id"], "cancelled": job or "workflow", "seq": seq}

    @app.post("/v1/workflows/{ref}/jobs/{job}/cancel")
    async def cancel_job(ref: str, job: str) -> dict[str, Any]:
        return await cancel(ref, job)

    @app.post("/v1/workflows/{ref}/retry")
    async def retry(ref: str) -> dict[str, Any]:
        row = await workflow(ref)
        jobs = await engine.retry(row["id"])
        return {"id": row["id"], "retried": jobs}

    @app.post("/v1/gc")
    async def collect_garbage(body: GcRequest) -> dict[str, Any]:
        """Delete finished workflows older than `older_than` (events, rows, run directories
        here and on SSH hosts), then shrink the database; `dry_run` only lists them."""
        try:
            seconds = parse_age(body.older_than)
        except ValueError as exc:
            raise CcdError(f"older_than: {exc}") from exc
        return await retention.collect(
            store,
            config.runs_dir,
            daemon.ssh,
            older_than=seconds,
            dry_run=body.dry_run,
            running=_Running(engine),
        )

    @app.get("/v1/hosts")
    async def hosts() -> list[dict[str, Any]]:
        """Hosts the daemon knows: its config's and the ssh_config aliases."""
        configured = config.hosts
        names = sorted(config.known_hosts())
        return [
            {
                "name": name,
                "executor": "local" if name == "localhost" else "ssh",
                "configured": name in configured,
                "hostname": configured[name].hostname if name in configured else None,
                "max_jobs": config.host_slots(name),
            }
            for name in names
        ]

    @app.post("/v1/hosts/{name}/check")
    async def check_host(name: str) -> dict[str, Any]:
        """Connect to a host and report whether jobs can run there."""
        if name not in config.known_hosts():
            raise NotFound(
                f"unknown host '{name}': add it to hosts: in the daemon config "
                "or to your ssh config"
            )
        if name == "localhost":
            return {"host": name, "usable": True, "rtt_ms": 0.0}
        try:
            report = await daemon.ssh.check(name)
        except (LaunchError, TimeoutError) as exc:
            return {"host": name, "usable": False, "error": str(exc) or "timed out connecting"}
        report["usable"] = bool(report["workdir_writable"])
        return report

    @app.get("/v1/workflows/{ref}/jobs/{job}/log")
    async def job_log(
        ref: str,
        job: str,
        attempt: Annotated[int | None, Query(ge=1)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        follow: bool = False,
    ) -> Response:
        row = await workflow(ref)
        jrow = await store.get_job(row["id"], job)
        if jrow is None:
            raise NotFound(f"workflow {row['id']} has no job '{job}'")
        number = attempt or jrow["attempt"]
        if attempt is not None and number > jrow["attempt"]:
            raise NotFound(f"job '{job}' has no attempt {number} (it has {jrow['attempt']})")
        if follow and attempt is None and jrow["attempt"] == 0:
            number = await _first_attempt(daemon, row["id"], job)
        run_dir = attempt_dir(config.runs_dir, row["id"], job, number)
        if number < 1 or not run_dir.is_dir():
            raise NotFound(f"job '{job}' has not started, so it has no log")
        stream = _log_stream(daemon, row["id"], job, number, run_dir, offset, follow)
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8")

    @app.get("/v1/workflows/{ref}/events")
    async def workflow_events(
        ref: str,
        request: Request,
        since: Annotated[int, Query(ge=0)] = 0,
        follow: bool = False,
    ) -> Response:
        row = await workflow(ref)
        sse = "text/event-stream" in request.headers.get("accept", "")
        stream = _event_stream(daemon, row["id"], since, follow, sse)
        media = "text/event-stream" if sse else "application/x-ndjson"
        return StreamingResponse(stream, media_type=media)

    @app.get("/v1/events")
    async def all_events(since: Annotated[int, Query(ge=0)] = 0, follow: bool = False) -> Response:
        stream = _event_stream(daemon, None, since, follow, sse=False)
        return StreamingResponse(stream, media_type="application/x-ndjson")

    return app


async def _log_stream(
    daemon: Daemon,
    workflow_id: str,
    job: str,
    attempt: int,
    run_dir: Path,
    offset: int,
    follow: bool,
) -> AsyncIterator[bytes]:
    watch = daemon.filewatch.watch(run_dir) if follow else None
    end = _AttemptEnd(daemon, workflow_id, job, attempt, run_dir)
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
            ended = not follow or daemon.stopping or await end.reached(quiet)
            if not ended:
                assert watch is not None
                quiet = await _wait_change(watch)
    finally:
        os.close(fd)
        if watch is not None:
            watch.close()


async def _first_attempt(daemon: Daemon, workflow_id: str, job: str) -> int:
    """Wait until the job's first attempt starts (0 if it ends without starting)."""
    store = daemon.store
    while True:
        seen = store.last_seq
        row = await store.get_job(workflow_id, job)
        if row is None or row["attempt"] > 0 or JobState(row["state"]).is_final:
            return 0 if row is None else int(row["attempt"])
        if daemon.stopping:
            raise Conflict(f"the daemon is stopping before job '{job}' started; ask again later")
        await store.wait_for_seq(seen, timeout=HEARTBEAT)


async def _wait_change(watch: Any) -> bool:
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
        self, daemon: Daemon, workflow_id: str, job: str, attempt: int, run_dir: Path
    ) -> None:
        self._daemon = daemon
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
        row = await self._daemon.store.get_job(self._workflow_id, self._job)
        if row is None:
            return True
        return row["attempt"] != self._attempt or JobState(row["state"]) is not JobState.RUNNING


async def _event_stream(
    daemon: Daemon, workflow_id: str | None, since: int, follow: bool, sse: bool
) -> AsyncIterator[bytes]:
    store = daemon.store
    last = since
    final = False
    while True:
        seen = store.last_seq
        batch = await store.events_json(workflow_id, last, limit=1000)
        if batch:
            last = batch[-1][0]
            # one write per batch: a busy workflow sends hundreds of events a second
            if sse:
                yield "".join(f"id: {seq}\ndata: {text}\n\n" for seq, text in batch).encode()
            else:
                yield ("\n".join(text for _, text in batch) + "\n").encode()
        if len(batch) == 1000:
            continue
        # a stopping daemon ends its streams (after what was committed) so it can exit
        if not follow or final or daemon.stopping:
            return
        if workflow_id is not None and await _workflow_final(daemon, workflow_id):
            final = True  # drain once more: the final event may have landed just now
            continue
        if await store.wait_for_seq(max(seen, last), timeout=HEARTBEAT) == max(seen, last):
            yield b": keep-alive\n\n" if sse else b"\n"


async def _workflow_final(daemon: Daemon, workflow_id: str) -> bool:
    if daemon.engine.is_running(workflow_id):
        return False
    row = await daemon.store.find_workflow(workflow_id)
    return row is None or row["state"] != "running"
