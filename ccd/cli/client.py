"""HTTP over the daemon's Unix socket, with the standard library only.

`http.client` imports in ~25 ms where httpx takes ~190 ms here; the client's
whole budget for `ccctl ls` is 300 ms including Python's own start-up, so the
client speaks HTTP/1.1 itself (see docs/decisions.md).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ccd import paths
from ccd.errors import CcdError, DaemonUnreachable

#: how long `ccctl` waits for a daemon it started to answer
AUTOSTART_TIMEOUT = 15.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float | None) -> None:
        super().__init__("ccd", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


class ApiError(CcdError):
    """The daemon refused a request; its message says why."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}
        self.exit_code = 2 if status in (400, 422) else 1


def path_of(*parts: str) -> str:
    return "/v1/" + "/".join(quote(p, safe="") for p in parts)


class Client:
    def __init__(self, socket_path: Path | None = None, timeout: float = 60.0) -> None:
        self.socket_path = socket_path or paths.socket_path()
        self.timeout = timeout

    # -- plumbing -------------------------------------------------------------------
    def _open(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: bytes | None,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = path + ("?" + urlencode(query) if query else "")
        conn = _UnixConnection(self.socket_path, timeout)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            response = conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            conn.close()
            raise DaemonUnreachable(self._unreachable(exc)) from exc
        except OSError as exc:
            conn.close()
            raise DaemonUnreachable(f"lost the connection to the ccd daemon: {exc}") from exc
        if response.status >= 400:
            data = response.read()
            conn.close()
            raise _api_error(response.status, data)
        return conn, response

    def _unreachable(self, exc: OSError) -> str:
        return (
            f"cannot reach the ccd daemon at {self.socket_path} ({exc.strerror or exc}).\n"
            "Start it with `ccctl daemon start` (or `ccd run` in a terminal, or "
            "`systemctl --user start ccd`)."
        )

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        conn, response = self._open(method, path, params, body, headers, self.timeout)
        try:
            data = response.read()
        finally:
            conn.close()
        return json.loads(data) if data else None

    def stream(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[bytes]:
        """Yield the body of a streaming response as it arrives (no timeout)."""
        conn, response = self._open("GET", path, params, None, headers, None)
        try:
            while True:
                chunk = response.read1(1 << 20)
                if not chunk:
                    return
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            # HTTPException: the body was cut off (IncompleteRead), e.g. the daemon died
            raise DaemonUnreachable(f"lost the connection to the ccd daemon: {exc}") from exc
        finally:
            conn.close()

    def stream_lines(self, path: str, params: dict[str, Any] | None = None) -> Iterator[bytes]:
        pending = b""
        for chunk in self.stream(path, params):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

    # -- daemon ---------------------------------------------------------------------
    def ping(self) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.call("GET", "/v1/health")
        except DaemonUnreachable:
            return None
        return result

    def ensure_daemon(self) -> None:
        """Start a daemon in the background unless one answers (or autostart is off)."""
        if self.ping() is not None:
            return
        if os.environ.get("CCD_NO_AUTOSTART") == "1":
            raise DaemonUnreachable(self._unreachable(ConnectionRefusedError("not running")))
        start_daemon(self)


def start_daemon(client: Client) -> int:
    """Start `ccd run` detached, log to the state dir; wait until it answers. Returns its pid."""
    log_path = paths.state_dir() / "ccd.log"
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = [sys.executable, "-m", "ccd.daemon.main", "run", "--socket", str(client.socket_path)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + AUTOSTART_TIMEOUT
    while time.monotonic() < deadline:
        if client.ping() is not None:
            return proc.pid
        if proc.poll() is not None:
            raise DaemonUnreachable(
                f"the ccd daemon exited at start-up (code {proc.returncode}); "
                f"its log {log_path} ends with:\n{_tail(log_path)}"
            )
        time.sleep(0.02)  # waiting for another process to bind its socket
    raise DaemonUnreachable(
        f"started the ccd daemon (pid {proc.pid}) but it did not answer within "
        f"{AUTOSTART_TIMEOUT:g}s; see {log_path}"
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _api_error(status: int, data: bytes) -> ApiError:
    try:
        body = json.loads(data)
        message = body.get("error") or data.decode(errors="replace")
    except (ValueError, AttributeError):
        body, message = None, data.decode(errors="replace") or f"HTTP {status}"
    return ApiError(status, message, body if isinstance(body, dict) else None)
