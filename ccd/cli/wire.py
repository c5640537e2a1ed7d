"""HTTP/1.1 over the daemon's Unix socket: the part of the protocol ccd's API uses.

`ccctl status` has a budget of 200 ms for 10,000 jobs, Python's start-up included.
The standard library's `http.client` costs ~30 ms of it just to import (it pulls
in `email.parser` and `ssl`); one request and one response over a local socket
need none of that.  The daemon (uvicorn) answers with a Content-Length, or
chunked for streams; both are read here, and a body cut short is an error, never
a shorter answer.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from io import BufferedReader
from pathlib import Path

#: the longest status or header line accepted (uvicorn's are far shorter)
MAX_LINE = 65536
#: how much a streamed body is read at a time
READ_SIZE = 1 << 20


class ProtocolError(OSError):
    """The answer was not HTTP/1.1 as ccd's daemon speaks it, or it was cut short."""


class Response:
    """A response whose head has been read; the body is read by `read` or `chunks`."""

    def __init__(
        self, sock: socket.socket, file: BufferedReader, status: int, headers: dict[str, str]
    ) -> None:
        self._sock = sock
        self._file = file  # the reader of the head: it may hold the body's first bytes
        self.status = status
        self.headers = headers

    def read(self) -> bytes:
        """The whole body."""
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives."""
        length = self.headers.get("content-length")
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            yield from self._chunked()
        elif length is not None:
            yield from self._sized(int(length))
        else:  # the body ends when the daemon closes the connection
            while chunk := self._file.read1(READ_SIZE):
                yield chunk

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def _sized(self, length: int) -> Iterator[bytes]:
        while length > 0:
            chunk = self._file.read1(min(length, READ_SIZE))
            if not chunk:
                raise ProtocolError(f"the response ended {length} bytes before its end")
            length -= len(chunk)
            yield chunk

    def _chunked(self) -> Iterator[bytes]:
        while True:
            line = _line(self._file)
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while _line(self._file):  # trailers, up to the empty line
                    pass
                return
            yield from self._sized(size)
            if _line(self._file):
                raise ProtocolError("a chunk did not end with CRLF")


def request(
    path: Path,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Response:
    """Send one request on a new connection and read the response's head.

    Raises OSError (FileNotFoundError, ConnectionRefusedError, ...) when the
    socket cannot be reached and ProtocolError when the answer makes no sense."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
        head = [f"{method} {target} HTTP/1.1", "Host: ccd", "Connection: close"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        return _response(sock)
    except BaseException:
        sock.close()
        raise


def _response(sock: socket.socket) -> Response:
    file = sock.makefile("rb")
    try:
        status_line = _line(file)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP response: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while line := _line(file):
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    except BaseException:
        file.close()
        raise
    return Response(sock, file, int(parts[1]), headers)


def _line(file: BufferedReader) -> bytes:
    """One CRLF-terminated line without its ending; the connection closing is an error."""
    line = file.readline(MAX_LINE + 1)
    if not line.endswith(b"\n"):
        raise ProtocolError(
            "the line is too long" if len(line) > MAX_LINE else "the connection closed early"
        )
    return line.rstrip(b"\r\n")
