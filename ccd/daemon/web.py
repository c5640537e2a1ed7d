"""The dashboard's TCP listener: a second uvicorn server the daemon owns.

It shares the daemon's event loop and `Services` with the Unix socket's server, so
a page sees exactly what ``ccctl`` sees; it is opened by ``ccctl ui`` (or at start
with ``web: {listen: …}`` in the config) and closed with the daemon.  One address
at a time: asking for another closes the old one first.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from starlette.types import ASGIApp

from ccd.api import Services
from ccd.errors import CcdError, Conflict
from ccd.web import create_web_app
from ccd.web.guard import TOKEN_FILE, load_token

log = logging.getLogger(__name__)

#: seconds the listener's open streams get to end when it closes
CLOSE_GRACE = 3.0


class Server(Protocol):
    """What the daemon's `ApiServer` offers: serve sockets, say when ready, stop."""

    ready: asyncio.Event
    should_exit: bool

    async def serve(self, sockets: list[socket.socket] | None = None) -> None: ...


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: a free port the kernel picks)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CcdError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        # a port the last daemon used is free at once, not after TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        if exc.errno == errno.EADDRINUSE:  # not a bad request: try again, or another port
            raise Conflict(message + " (leave out --port for a free one)") from exc
        raise CcdError(message) from exc
    sock.setblocking(False)
    return sock


def page_url(host: str, port: int, token: str) -> str:
    if host in ("0.0.0.0", "::"):
        host = socket.getfqdn()  # every address: name the machine
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


class WebListener:
    def __init__(
        self,
        services: Services,
        state_dir: Path,
        make_server: Callable[[ASGIApp], Server],
    ) -> None:
        self._services = services
        self._state_dir = state_dir
        self._make_server = make_server
        self._lock = asyncio.Lock()
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self._host = ""
        self._port = 0
        self._token = ""

    async def open(self, host: str, port: int | None) -> dict[str, Any]:
        async with self._lock:  # two `ccctl ui` at once must not bind twice
            token = load_token(self._state_dir)
            # a new token (its file was deleted to revoke the old one) needs a new guard
            same = host == self._host and port in (None, self._port) and token == self._token
            if self._task is None or self._task.done() or not same:
                # no port asked: keep the one it has (a bookmark, an ssh -L), else any
                keep = self._port if host == self._host else 0
                await self._close()
                await self._start(host, port or keep, token)
            return {
                "url": page_url(self._host, self._port, token),
                "host": self._host,
                "port": self._port,
                "token_file": str(self._state_dir / TOKEN_FILE),
            }

    async def _start(self, host: str, port: int, token: str) -> None:
        sock = bind_tcp(host, port)
        server = self._make_server(create_web_app(self._services, token, host))
        task = asyncio.create_task(server.serve(sockets=[sock]), name="web")
        ready = asyncio.ensure_future(server.ready.wait())
        try:
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not server.ready.is_set():
            sock.close()
            error = task.exception() if task.done() else None
            raise CcdError(f"the web listener on {host}:{sock.getsockname()[1]} failed: {error}")
        self._server, self._task, self._sock = server, task, sock
        self._host, self._port, self._token = host, int(sock.getsockname()[1]), token
        log.info("web dashboard on http://%s:%d/ (ccctl ui prints its link)", host, self._port)
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "the web dashboard listens on %s: other machines can reach it and its token "
                "travels unencrypted; prefer 127.0.0.1 and ssh -L",
                host,
            )

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, CLOSE_GRACE + 1)
        if self._sock is not None:
            self._sock.close()
        self._server = self._task = self._sock = None
        self._host, self._port = "", 0
