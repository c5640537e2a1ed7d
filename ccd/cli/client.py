"""HTTP over the daemon's Unix socket, with the standard library only.

httpx takes ~190 ms to import here and `http.client` ~30 ms; the client's whole
budget for `ccctl status` is 200 ms including Python's own start-up, so requests
go through `ccd.cli.wire`, the small part of HTTP/1.1 the daemon speaks (see
docs/decisions.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ccd import paths
from ccd.cli import wire
from ccd.errors import CcdError, DaemonUnreachable

#: how long `ccctl` waits for a daemon it started to answer
AUTOSTART_TIMEOUT = 15.0


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
    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> wire.Response:
        """Send a request; the response (status < 400) with its body still to read."""
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        target = path + ("?" + urlencode(query) if query else "")
        try:
            response = wire.request(self.socket_path, method, target, body, headers, timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnreachable(self.unreachable(exc)) from exc
        except OSError as exc:
            raise lost(exc) from exc
        if response.status >= 400:
            raise api_error(response.status, _read_all(response))
        return response

    def unreachable(self, exc: OSError) -> str:
        """What to tell the user when the daemon's socket does not answer."""
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
        """One request; the answer's JSON (None for an empty body)."""
        data = _read_all(self._request(method, path, params, body, headers, self.timeout))
        return json.loads(data) if data else None

    def stream(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[bytes]:
        """Yield the body of a streaming response as it arrives; each read waits at
        most `timeout` seconds (then TimeoutError), by default for ever."""
        response = self._request("GET", path, params, None, headers, timeout)
        try:
            yield from response.chunks()
        except TimeoutError:
            raise  # the caller's own limit, not a lost daemon
        except OSError as exc:  # also a body cut off, e.g. the daemon died
            raise lost(exc) from exc
        finally:
            response.close()

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
            raise DaemonUnreachable(self.unreachable(ConnectionRefusedError("not running")))
        start_daemon(self)


def start_daemon(client: Client) -> int:
    """Start `ccd run` detached, log to the state dir; wait until it answers. Returns its pid."""
    import subprocess  # only here: the common commands never start a daemon

    log_path = paths.state_dir() / "ccd.log"
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = [sys.executable, "-m", "ccd.daemon.main", "run", "--socket", str(client.socket_path)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=daemon_environment(os.environ, sys.executable),
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


def daemon_environment(environ: Mapping[str, str], python: str) -> dict[str, str]:
    """The environment an autostarted daemon (and so its jobs) gets: this one, with the
    directory of the interpreter running ccctl first on PATH.  A ccctl run as
    ``.venv/bin/ccctl`` without activating the venv then gives jobs the venv's
    ``python3``, ``papermill`` and other tools, as an activated shell would."""
    env = dict(environ)
    bin_dir = os.path.dirname(python)
    entries = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry]
    if bin_dir and entries[:1] != [bin_dir]:
        env["PATH"] = os.pathsep.join([bin_dir, *(e for e in entries if e != bin_dir)])
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_all(response: wire.Response) -> bytes:
    """The whole body, the connection closed; an answer cut off is a lost daemon."""
    try:
        return response.read()
    except OSError as exc:
        raise lost(exc) from exc
    finally:
        response.close()


def lost(exc: OSError) -> DaemonUnreachable:
    """The error for a connection to the daemon that broke off."""
    return DaemonUnreachable(f"lost the connection to the ccd daemon: {exc}")


def api_error(status: int, data: bytes) -> ApiError:
    """The error for the daemon's refusal `data` (its JSON ``{"error": ...}``)."""
    try:
        body = json.loads(data)
        message = body.get("error") or data.decode(errors="replace")
    except (ValueError, AttributeError):
        body, message = None, data.decode(errors="replace") or f"HTTP {status}"
    return ApiError(status, message, body if isinstance(body, dict) else None)
