"""The daemon's lifecycle: start the parts in order, serve, stop them in reverse.

Shutdown never kills jobs: they run detached under the job protocol, and the
next daemon adopts them from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from ccd.api import create_app
from ccd.config import DaemonConfig
from ccd.daemon.notifier import Notifications
from ccd.daemon.sockets import bind_unix_socket, notify_systemd, systemd_socket
from ccd.daemon.web import WebListener
from ccd.engine import Engine
from ccd.errors import CcdError
from ccd.executors.files import HostFiles
from ccd.executors.filewatch import FileWatcher
from ccd.executors.registry import Executors
from ccd.platform import Mechanisms, choose
from ccd.store import Store

if TYPE_CHECKING:
    from ccd.executors.ssh import SshExecutor

log = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: how long in-flight requests get to finish at shutdown
SHUTDOWN_GRACE = 3
#: the kernel's send buffer for each API connection (a limit, not an allocation): a
#: log stream writes 512 KiB chunks, and with the default ~208 KiB most of each chunk
#: was copied into asyncio's write buffer and sent from there piece by piece
SEND_BUFFER = 2 * 1024 * 1024


class ApiProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a send buffer that holds a log chunk."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # above net.core.wmem_max: the kernel's cap
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        super().connection_made(transport)


class ApiServer(uvicorn.Server):
    """uvicorn, minus its signal handling (the daemon's decides), plus a ready event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class Daemon:
    """The running daemon; to its API it is the `ccd.api.Services` the routes use.

    It satisfies that protocol structurally (store, engine, config, filewatch, ssh,
    started, stopping, request_stop), so the API knows only the protocol and never
    imports this module.
    """

    def __init__(self, config: DaemonConfig, fallbacks: frozenset[str] | None = None) -> None:
        self.config = config
        #: the platform's mechanisms, chosen once (`fallbacks`: forced to the portable ones)
        self.mechanisms: Mechanisms = choose(fallbacks)
        self.started = time.time()
        self._stop = asyncio.Event()
        self._signals = 0
        #: set once shutdown begins: following streams end instead of waiting on
        #: (they would hold the API server open for its whole grace period)
        self.stopping = False
        self.store: Store
        self.engine: Engine
        self.filewatch: FileWatcher
        self.executors: Executors

    @property
    def ssh(self) -> SshExecutor:
        """The SSH executor (imports asyncssh the first time: hosts check, gc)."""
        return self.executors.ssh

    @property
    def platform(self) -> dict[str, str]:
        """What each platform mechanism is, as `/v1/health` names it."""
        # inotify may have been chosen and then been unavailable (its instance limit)
        files = self.filewatch.mechanism
        forced = " (forced)" if "files" in self.mechanisms.forced else ""
        return {**self.mechanisms.names(), "files": files + forced}

    def request_stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: int, _frame: FrameType | None = None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("received %s: stopping (jobs keep running)", signal.Signals(sig).name)
        self._stop.set()

    async def run(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        passed = systemd_socket()
        sock = passed or bind_unix_socket(cfg.socket)
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig, None)
        self.store = await Store.open(cfg.database)
        # before the engine records anything: its cursor is where the last daemon left off
        notifications = Notifications(self.store, cfg)
        await notifications.start()
        mechanisms = self.mechanisms
        self.filewatch = FileWatcher(inotify=mechanisms.files == "inotify")
        self.filewatch.start()
        # the SSH and Slurm executors (and asyncssh) are created on first use
        self.executors = Executors(cfg, self.filewatch, mechanisms)
        self.engine = Engine(self.store, cfg, self.executors, HostFiles(self.executors.run_on))
        app = create_app(self)
        server = _api_server(app)
        # the dashboard's TCP port, opened through this app only (`ccctl ui`)
        web = app.state.web = WebListener(self, cfg.state_dir, _api_server)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        try:
            recovered = await self.engine.recover()
            if recovered:
                log.info("resumed %d unfinished workflow(s)", recovered)
            await _until_ready(server, serving)
            if cfg.web is not None:
                await _open_web(web, *cfg.web.address)
            notify_systemd("READY=1\nSTATUS=serving")
            log.info("ccd listening on %s (pid %d)", cfg.socket, os.getpid())
            log.info("platform: %s", ", ".join(f"{k} {v}" for k, v in self.platform.items()))
            await self._stop.wait()
        finally:
            notify_systemd("STOPPING=1")
            # 1. stop accepting requests and end open streams
            self.stopping = True
            self.store.release_waiters()
            server.should_exit = True
            await web.close()  # its streams end with the socket's, in the same grace
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, SHUTDOWN_GRACE + 1)
            # 2. stop driving workflows (jobs keep running)
            await self.engine.close()
            # 3. stop notifying: what is owed is sent by the next daemon
            await notifications.close()
            # 4. everything recorded reaches the database
            await self.store.close()
            await self.filewatch.close()
            await self.executors.close()
            for sig in HANDLED_SIGNALS:
                loop.remove_signal_handler(sig)
            sock.close()
            if passed is None:  # a socket systemd passed us is systemd's to remove
                with contextlib.suppress(FileNotFoundError):
                    cfg.socket.unlink()


async def _open_web(web: WebListener, host: str, port: int) -> None:
    """The configured dashboard; a port in use is no reason to leave jobs unwatched."""
    try:
        await web.open(host, port)
    except CcdError as exc:
        log.error("web dashboard not started: %s", exc.message)


def _api_server(app: ASGIApp) -> ApiServer:
    return ApiServer(
        uvicorn.Config(
            app,
            http=ApiProtocol,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
    )


async def _until_ready(server: ApiServer, serving: asyncio.Task[None]) -> None:
    ready = asyncio.ensure_future(server.ready.wait())
    try:
        await asyncio.wait({ready, serving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if not server.ready.is_set():
        serving.result()  # re-raises what stopped the server
        raise RuntimeError("the API server stopped during start-up")
