"""`Client`: the daemon's API from a Python program, as ``ccctl`` uses it.

It is ``ccctl``'s own client underneath (`ccd.cli.client`: the standard library's
socket and the small HTTP/1.1 of `ccd.cli.wire`), so the socket is found the same
way (``$CCD_SOCKET``, else ``$XDG_RUNTIME_DIR/ccd/ccd.sock``), a daemon is started
on first use under the same rules (not with ``CCD_NO_AUTOSTART=1`` or
``autostart=False``), and a refusal is the same `CcdError` with the daemon's
message.  Answers are the dataclasses of `ccd.sdk.results`.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ccd.cli import client as http
from ccd.errors import CcdError
from ccd.sdk.results import (
    Added,
    Cancelled,
    Event,
    Retried,
    WorkflowRef,
    WorkflowStatus,
    WorkflowSummary,
)

if TYPE_CHECKING:
    from ccd.sdk.builder import Workflow

__all__ = ["Client", "Ref", "submission"]

#: a workflow, as the API takes it: its id or name (the newest of that name), or a ref
Ref = WorkflowRef | str
#: while `wait` follows a workflow, it asks again at least this often, so it notices
#: its own deadline within about this long even when no event arrives
WAIT_SLICE = 1.0


class Client:
    """A client of the ccd daemon: ``Client()`` talks to the one ``ccctl`` talks to."""

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 60.0,
        autostart: bool = True,
    ) -> None:
        self._http = http.Client(None if socket_path is None else Path(socket_path), timeout)
        self.autostart = autostart
        self._ready = False

    @property
    def socket_path(self) -> Path:
        return self._http.socket_path

    def _client(self) -> http.Client:
        """The HTTP client, a daemon started first if none answers (once per Client)."""
        if not self._ready:
            if self.autostart:
                self._http.ensure_daemon()
            self._ready = True
        return self._http

    def _get(self, *parts: str, params: dict[str, Any] | None = None) -> Any:
        return self._client().call("GET", http.path_of(*parts), params=params)

    # Workflows ---------------------------------------------------------------

    def submit(
        self,
        workflow: Workflow | str | os.PathLike[str],
        params: Mapping[str, Any] | None = None,
        *,
        resume: bool = False,
    ) -> WorkflowRef:
        """Submit a built `Workflow`, or the workflow file at a path; `params`: values
        for its ``params:`` (as ``ccctl submit --set``); `resume`: reuse the earlier
        run of each job whose cache key is unchanged (``ccctl submit --resume``)."""
        body, source = submission(workflow, params)
        params = submit_query(source, params, resume)
        headers = {"Content-Type": "application/yaml"}
        result = self._client().call("POST", "/v1/workflows", params, body, headers)
        return WorkflowRef.from_json(result)

    def add_jobs(self, ref: Ref, jobs: Workflow | str | os.PathLike[str]) -> Added:
        """Add the jobs of a built `Workflow` (its jobs and defaults), or of a file
        holding ``jobs:``, to the running workflow `ref`; its jobs may be their
        parents. The daemon checks them against the workflow's jobs."""
        body, source = fragment(jobs)
        path = http.path_of("workflows", str(ref), "jobs")
        headers = {"Content-Type": "application/yaml"}
        return Added.from_json(self._client().call("POST", path, {"source": source}, body, headers))

    def ls(self, limit: int = 100) -> list[WorkflowSummary]:
        """The newest workflows first."""
        rows = self._get("workflows", params={"limit": limit})
        return [WorkflowSummary.from_json(row) for row in rows]

    def status(self, ref: Ref) -> WorkflowStatus:
        return WorkflowStatus.from_json(self._get("workflows", str(ref)))

    def cancel(self, ref: Ref, job: str | None = None) -> Cancelled:
        """Cancel the workflow, or one job and its descendants (returns at once; the
        events after `Cancelled.seq` tell how it went, `wait` waits for the end)."""
        path = http.path_of("workflows", str(ref), "cancel")
        return Cancelled.from_json(self._client().call("POST", path, {"job": job}))

    def retry(self, ref: Ref) -> Retried:
        """Run failed, timed-out, cancelled and skipped jobs again."""
        path = http.path_of("workflows", str(ref), "retry")
        return Retried.from_json(self._client().call("POST", path))

    def rerun(self, ref: Ref, job: str, *, downstream: bool = False) -> Retried:
        """Run `job` of a finished workflow again (and, with `downstream`, what needs
        it), even if it succeeded; the other jobs keep their outcome."""
        path = http.path_of("workflows", str(ref), "jobs", job, "rerun")
        return Retried.from_json(self._client().call("POST", path, {"downstream": downstream}))

    def export(self, ref: Ref) -> str:
        """The submitted workflow as canonical YAML (``ccctl export``)."""
        chunks = self._client().stream(http.path_of("workflows", str(ref), "spec"))
        return b"".join(chunks).decode()

    # Streams -----------------------------------------------------------------

    def logs(
        self, ref: Ref, job: str, *, follow: bool = False, attempt: int | None = None
    ) -> Iterator[str]:
        """The job's log, line by line (without line ends); `follow`: until its
        attempt ends (waiting for it to start)."""
        path = http.path_of("workflows", str(ref), "jobs", job, "log")
        params = {"follow": follow, "attempt": attempt}
        yield from _lines(self._client().stream(path, params))

    def events(self, ref: Ref, *, follow: bool = False, since: int = 0) -> Iterator[Event]:
        """The workflow's events after `since`; `follow`: until the workflow ends."""
        path = http.path_of("workflows", str(ref), "events")
        for line in _lines(self._client().stream(path, {"follow": follow, "since": since})):
            if line.strip():  # an empty line is the stream's heartbeat
                yield Event.from_json(json.loads(line))

    def wait(self, ref: Ref, timeout: float | None = None) -> WorkflowStatus:
        """Wait until the workflow has ended; its final status.  Raises `CcdError` if
        it still runs after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status(ref)  # by id from here on: a newer namesake is not this one
        while not status.final:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise CcdError(
                    f"workflow {status.id} ({status.name}) is still {status.state} "
                    f"after {timeout:g}s"
                )
            self._follow(status.id, status.seq, remaining)
            status = self.status(status.id)
        return status

    def _follow(self, workflow_id: str, since: int, remaining: float | None) -> None:
        """Follow the events until the stream ends (the workflow did), or for about
        `remaining` seconds."""
        path = http.path_of("workflows", workflow_id, "events")
        params = {"follow": True, "since": since}
        started = time.monotonic()
        # a generator: closed when left early, so the connection is too
        stream = cast(
            Generator[bytes, None, None], self._client().stream(path, params, timeout=remaining)
        )
        with contextlib.closing(stream) as chunks:
            try:
                for _chunk in chunks:
                    if remaining is not None and time.monotonic() - started > WAIT_SLICE:
                        return  # ask again with what is left of the time
            except TimeoutError:
                return


def submit_query(
    source: str | None, params: Mapping[str, Any] | None, resume: bool = False
) -> dict[str, Any] | None:
    """The query of a submit: the file the workflow came from, the params' values,
    whether to resume."""
    query: dict[str, Any] = {} if source is None else {"source": source}
    if resume:
        query["resume"] = "true"
    if params:
        from ccd.spec.params import param_text

        query["params"] = json.dumps({name: param_text(v) for name, v in params.items()})
    return query or None


def submission(
    workflow: Workflow | str | os.PathLike[str], params: Mapping[str, Any] | None = None
) -> tuple[bytes, str | None]:
    """The body and ``?source=`` of a submit: a file as it is, a built workflow as its
    canonical YAML (checked here first, so problems point at the Python lines; what
    depends on the daemon's config, its hosts and the environment of its local jobs,
    is the daemon's to check)."""
    if isinstance(workflow, str | os.PathLike):
        path = Path(workflow)
        try:
            return path.read_bytes(), str(path.resolve())
        except OSError as exc:
            raise CcdError(f"cannot read {path}: {exc.strerror or exc}") from None
    from ccd.spec.export import workflow_yaml

    given = None
    if params:
        from ccd.spec.params import param_text

        given = {name: param_text(value) for name, value in params.items()}
    spec = workflow.validate(known_hosts=workflow.hosts(), local_environment=True, params=given)
    # the file that built it (or that `from_yaml` read), for `ccctl ls` to show
    source = None if workflow.source.startswith("<") else os.path.abspath(workflow.source)
    return workflow_yaml(spec).encode(), source


def fragment(jobs: Workflow | str | os.PathLike[str]) -> tuple[bytes, str]:
    """The body and ``?source=`` of an add: a file as it is; a built workflow's jobs
    (and defaults) as YAML, not checked here (their parents may be the running
    workflow's), relative paths read from its directory."""
    if isinstance(jobs, str | os.PathLike):
        return submission(jobs)  # type: ignore[return-value]  # a path always has a source
    import yaml

    data = jobs.to_dict()
    part = {key: data[key] for key in ("defaults", "jobs") if key in data}
    source = jobs.source if not jobs.source.startswith("<") else str(jobs.base_dir / "<jobs>")
    return yaml.safe_dump(part, sort_keys=False).encode(), source


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Text lines of a byte stream (a character split between chunks stays whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending
