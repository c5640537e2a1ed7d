"""`AsyncClient`: `Client`'s twin for asyncio programs, with async iterators.

Requests go through httpx over the daemon's Unix socket (``ccctl`` needs no event
loop, so it speaks HTTP with the standard library; a program that has one gets a
real connection pool).  Everything else is the sync client's: the socket is found
and the daemon started by `ccd.cli.client` (autostart runs in a worker thread),
and a refusal is the same `CcdError` with the daemon's message.

    async with AsyncClient() as client:
        ref = await client.submit(wf)
        async for event in client.events(ref, follow=True):
            ...
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ccd.cli import client as http
from ccd.errors import CcdError, DaemonUnreachable
from ccd.sdk.client import Ref, fragment, submission, submit_query
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

__all__ = ["AsyncClient"]


class AsyncClient:
    """An asyncio client of the ccd daemon; close it with ``aclose`` or ``async with``."""

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 60.0,
        autostart: bool = True,
    ) -> None:
        # ccctl's client: discovery, autostart and the wording of errors
        self._sync = http.Client(None if socket_path is None else Path(socket_path), timeout)
        self.autostart = autostart
        self._ready = False
        self._http: httpx.AsyncClient | None = None

    @property
    def socket_path(self) -> Path:
        return self._sync.socket_path

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # Plumbing ----------------------------------------------------------------

    async def _client(self) -> httpx.AsyncClient:
        if not self._ready:
            if self.autostart:
                await asyncio.to_thread(self._sync.ensure_daemon)
            self._ready = True
        if self._http is None:
            transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path))
            self._http = httpx.AsyncClient(
                transport=transport, base_url="http://ccd", timeout=self._sync.timeout
            )
        return self._http

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        client = await self._client()
        try:
            response = await client.request(
                method, path, params=_query(params), content=body, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            raise http.api_error(response.status_code, response.content)
        return response.json() if response.content else None

    async def _stream(
        self, path: str, params: dict[str, Any] | None = None
    ) -> AsyncIterator[bytes]:
        """The body as it arrives; no time limit once the answer has begun."""
        client = await self._client()
        timeout = httpx.Timeout(self._sync.timeout, read=None)
        try:
            async with client.stream("GET", path, params=_query(params), timeout=timeout) as answer:
                if answer.status_code >= 400:
                    raise http.api_error(answer.status_code, await answer.aread())
                async for chunk in answer.aiter_raw():
                    yield chunk
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.TransportError) -> DaemonUnreachable:
        cause = _os_error(exc)
        if isinstance(exc, httpx.ConnectError):
            return DaemonUnreachable(self._sync.unreachable(cause))
        return http.lost(cause)

    # Workflows ---------------------------------------------------------------

    async def submit(
        self,
        workflow: Workflow | str | os.PathLike[str],
        params: Mapping[str, Any] | None = None,
        *,
        resume: bool = False,
    ) -> WorkflowRef:
        """Submit a built `Workflow`, or the workflow file at a path (see `Client.submit`)."""
        body, source = await asyncio.to_thread(submission, workflow, params)  # CPU work
        params = submit_query(source, params, resume)
        headers = {"Content-Type": "application/yaml"}
        return WorkflowRef.from_json(
            await self._call("POST", "/v1/workflows", params, body, headers)
        )

    async def add_jobs(self, ref: Ref, jobs: Workflow | str | os.PathLike[str]) -> Added:
        """Add jobs to the running workflow `ref` (see `Client.add_jobs`)."""
        body, source = await asyncio.to_thread(fragment, jobs)
        path = http.path_of("workflows", str(ref), "jobs")
        headers = {"Content-Type": "application/yaml"}
        return Added.from_json(await self._call("POST", path, {"source": source}, body, headers))

    async def ls(self, limit: int = 100) -> list[WorkflowSummary]:
        rows = await self._call("GET", "/v1/workflows", {"limit": limit})
        return [WorkflowSummary.from_json(row) for row in rows]

    async def status(self, ref: Ref) -> WorkflowStatus:
        return WorkflowStatus.from_json(
            await self._call("GET", http.path_of("workflows", str(ref)))
        )

    async def cancel(self, ref: Ref, job: str | None = None) -> Cancelled:
        path = http.path_of("workflows", str(ref), "cancel")
        return Cancelled.from_json(await self._call("POST", path, {"job": job}))

    async def retry(self, ref: Ref) -> Retried:
        path = http.path_of("workflows", str(ref), "retry")
        return Retried.from_json(await self._call("POST", path))

    async def rerun(self, ref: Ref, job: str, *, downstream: bool = False) -> Retried:
        path = http.path_of("workflows", str(ref), "jobs", job, "rerun")
        return Retried.from_json(await self._call("POST", path, {"downstream": downstream}))

    async def export(self, ref: Ref) -> str:
        chunks = [c async for c in self._stream(http.path_of("workflows", str(ref), "spec"))]
        return b"".join(chunks).decode()

    # Streams -----------------------------------------------------------------

    async def logs(
        self, ref: Ref, job: str, *, follow: bool = False, attempt: int | None = None
    ) -> AsyncIterator[str]:
        """The job's log, line by line (without line ends)."""
        path = http.path_of("workflows", str(ref), "jobs", job, "log")
        async for line in _lines(self._stream(path, {"follow": follow, "attempt": attempt})):
            yield line

    async def events(
        self, ref: Ref, *, follow: bool = False, since: int = 0
    ) -> AsyncIterator[Event]:
        path = http.path_of("workflows", str(ref), "events")
        async for line in _lines(self._stream(path, {"follow": follow, "since": since})):
            if line.strip():  # an empty line is the stream's heartbeat
                yield Event.from_json(json.loads(line))

    # `timeout` as in `Client.wait`, the twin's signature (asyncio.timeout inside)
    async def wait(self, ref: Ref, timeout: float | None = None) -> WorkflowStatus:  # noqa: ASYNC109
        """Wait until the workflow has ended; its final status (`CcdError` if it
        still runs after `timeout` seconds)."""
        status = await self.status(ref)
        try:
            async with asyncio.timeout(timeout):
                while not status.final:
                    path = http.path_of("workflows", status.id, "events")
                    async for _chunk in self._stream(path, {"follow": True, "since": status.seq}):
                        pass
                    status = await self.status(status.id)
        except TimeoutError:
            raise CcdError(
                f"workflow {status.id} ({status.name}) is still {status.state} after {timeout:g}s"
            ) from None
        return status


def _query(params: dict[str, Any] | None) -> dict[str, str]:
    """Query parameters as ccctl sends them: None left out, booleans as true/false."""
    query: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is not None:
            query[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def _os_error(exc: BaseException) -> OSError:
    """The OSError under httpx's error (no such socket, refused), for the message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return OSError(str(exc))


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending
