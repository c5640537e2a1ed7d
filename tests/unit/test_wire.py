"""ccd.cli.wire against a Unix socket that answers with exactly the bytes a test gives.

The real daemon (uvicorn) is exercised by every e2e test; here the answers are the
ones uvicorn rarely sends: chunks split across writes, trailers, cut-off bodies,
garbage instead of HTTP.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ccd.cli import wire
from ccd.cli.client import Client
from ccd.errors import DaemonUnreachable


class CannedServer:
    """Accepts one connection per answer, records the request, writes the answer's
    pieces one `sendall` each (waiting where a piece is an Event), then closes."""

    def __init__(self, path: Path, answers: list[list[bytes | threading.Event]]) -> None:
        self.path = path
        self.requests: list[bytes] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen()
        self._thread = threading.Thread(target=self._serve, args=(answers,), daemon=True)
        self._thread.start()

    def _serve(self, answers: list[list[bytes | threading.Event]]) -> None:
        for pieces in answers:
            conn, _ = self._listener.accept()
            with conn:
                self.requests.append(_read_request(conn))
                for piece in pieces:
                    if isinstance(piece, threading.Event):
                        piece.wait(timeout=10)
                    else:
                        conn.sendall(piece)

    def close(self) -> None:
        self._thread.join(timeout=10)
        self._listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            while len(rest) < length:
                rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


Serve = Callable[..., CannedServer]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    servers: list[CannedServer] = []

    def start(*answers: list[bytes | threading.Event]) -> CannedServer:
        server = CannedServer(tmp_path / f"s{len(servers)}.sock", list(answers))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_a_sized_body_arrives_whole_and_the_request_is_http_1_1(serve: Serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello", b" world"])
    response = wire.request(server.path, "POST", "/v1/x?a=1", b'{"k": 1}', {"X-Y": "z"})
    assert (response.status, response.read()) == (200, b"hello world")
    response.close()
    request = server.requests[0]
    assert request.startswith(b"POST /v1/x?a=1 HTTP/1.1\r\n")
    assert b"\r\nX-Y: z\r\n" in request and b"\r\nContent-Length: 8\r\n" in request
    assert request.endswith(b'\r\n\r\n{"k": 1}')


def test_chunks_come_as_they_arrive_with_extensions_and_trailers_skipped(serve: Serve) -> None:
    first_read = threading.Event()
    server = serve(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nab",
            first_read,  # the rest only after the client has yielded the first bytes
            b"cde\r\n",
            b"3\r\nfgh\r\n0\r\nX-Trailer: 1\r\n\r\n",
        ]
    )
    response = wire.request(server.path, "GET", "/")
    chunks = response.chunks()
    assert next(chunks) == b"ab"
    first_read.set()
    assert b"".join(chunks) == b"cdefgh"
    response.close()


def test_a_body_without_length_ends_when_the_connection_closes(serve: Serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\n\r\nall ", b"of it"])
    response = wire.request(server.path, "GET", "/")
    assert response.read() == b"all of it"
    response.close()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"], "5 bytes before its end"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"], "before its end"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"], "bad chunk size"),
        ([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"], "not an HTTP response"),
        ([b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"], "bad header line"),
        ([b"HTTP/1.1 200 OK\r\ncontent-le"], "closed early"),
        ([], "closed early"),
    ],
)
def test_a_broken_answer_is_an_error_never_a_shorter_body(
    serve: Serve, answer: list[bytes], problem: str
) -> None:
    server = serve(answer)
    with pytest.raises(wire.ProtocolError, match=problem):
        response = wire.request(server.path, "GET", "/")
        try:
            response.read()
        finally:
            response.close()


def test_the_client_reports_a_cut_off_answer_as_a_lost_daemon(serve: Serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n[1, 2"])
    with pytest.raises(DaemonUnreachable, match="lost the connection to the ccd daemon"):
        Client(server.path, timeout=10).call("GET", "/v1/workflows")


def test_the_client_decodes_json_and_turns_4xx_into_the_daemons_message(serve: Serve) -> None:
    ok = b'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{"a": [1]}'
    refused = b'HTTP/1.1 404 Not Found\r\ncontent-length: 24\r\n\r\n{"error": "no such one"}'
    server = serve([ok], [refused])
    client = Client(server.path, timeout=10)
    assert client.call("GET", "/v1/a", params={"x": True, "skip": None}) == {"a": [1]}
    assert server.requests[0].startswith(b"GET /v1/a?x=true HTTP/1.1\r\n")
    with pytest.raises(Exception, match="no such one") as caught:
        client.call("GET", "/v1/b")
    assert getattr(caught.value, "status", None) == 404


def test_no_socket_is_an_unreachable_daemon_with_the_way_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachable, match="ccctl daemon start"):
        Client(tmp_path / "none.sock", timeout=5).call("GET", "/v1/health")
