"""`ccctl ui` and the dashboard's port: the token, the cookie, CSRF, Host and Origin.

Everything goes over real TCP on loopback to a real daemon, with `http.client`
(which sends exactly the headers a test sets, like a hostile page's browser would).
"""

from __future__ import annotations

import http.client
import json
import socket
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ccd.web.guard import COOKIE, CSRF_HEADER, TOKEN_FILE, csrf_value
from tests.conftest import WAIT, DaemonProc
from tests.e2e.conftest import Ccctl


def open_ui(ccctl: Ccctl, *args: str) -> tuple[str, int, str]:
    """Run `ccctl ui --no-open ARGS`; (host, port, token) of the link it prints."""
    result = ccctl("ui", "--no-open", *args)
    assert result.code == 0, str(result)
    url = urlsplit(result.lines[-1])
    assert url.scheme == "http" and url.path == "/", str(result)
    token = parse_qs(url.query)["token"][0]
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port, token


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.read()  # so the caller can look at it after the connection closed
    conn.close()
    return response


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def body_of(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def test_the_link_logs_in_once_and_nothing_else_gets_in(ccctl: Ccctl, daemon: DaemonProc) -> None:
    host, port, token = open_ui(ccctl)
    assert host == "127.0.0.1"
    token_file = daemon.state_dir / TOKEN_FILE
    assert token_file.read_text().strip() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    # no token, a wrong token: 401 for pages and API alike
    for path in ("/", "/v1/workflows", "/docs", "/static/ccd.js", "/?token=wrong"):
        assert request(port, "GET", path).status == 401, path
    assert request(port, "GET", "/v1/health", {"Cookie": f"{COOKIE}=nope"}).status == 401

    # the token is swapped for a cookie and dropped from the address
    first = request(port, "GET", f"/?token={token}")
    assert first.status == 303
    assert first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}_{port}={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

    with_cookie = {"Cookie": f"{COOKIE}={token}", "Accept": "text/html"}
    status, page = body_of(port, "/", with_cookie)
    assert status == 200 and b"Workflows" in page
    assert csrf_value(token).encode() in page  # the page carries what its requests send
    assert csrf_value(token) != token
    status, docs = body_of(port, "/docs", with_cookie)
    assert status == 200 and b"swagger" in docs.lower()
    assert request(port, "GET", "/v1/health", with_cookie).status == 200
    # scripts: a bearer header instead of the cookie
    assert request(port, "GET", "/v1/workflows", {"Authorization": f"Bearer {token}"}).status == 200


def test_state_changes_need_the_csrf_header_and_the_right_origin(
    ccctl: Ccctl, daemon: DaemonProc
) -> None:
    _, port, token = open_ui(ccctl)
    wf = daemon.submit("name: slow\njobs:\n  a: {run: 'sleep 60'}\n")
    cookie = {"Cookie": f"{COOKIE}={token}"}
    cancel = f"/v1/workflows/{wf}/cancel"
    assert request(port, "POST", cancel, cookie).status == 403
    assert request(port, "POST", cancel, {**cookie, CSRF_HEADER: "guess"}).status == 403
    assert daemon.status(wf)["state"] == "running"
    evil = {**cookie, CSRF_HEADER: csrf_value(token), "Origin": "http://evil.example"}
    assert request(port, "POST", cancel, evil).status == 403
    same = {**cookie, CSRF_HEADER: csrf_value(token), "Origin": f"http://127.0.0.1:{port}"}
    assert request(port, "POST", cancel, same).status == 200
    assert daemon.wait_final(wf)["state"] == "cancelled"


def test_a_rebinding_host_name_is_refused_even_with_the_token(
    ccctl: Ccctl, daemon: DaemonProc
) -> None:
    _, port, token = open_ui(ccctl)
    cookie = {"Cookie": f"{COOKIE}={token}"}
    assert (
        request(port, "GET", "/v1/health", {**cookie, "Host": f"evil.example:{port}"}).status == 421
    )
    assert request(port, "GET", f"/?token={token}", {"Host": "evil.example"}).status == 421
    # what `ssh -L 9000:127.0.0.1:PORT` makes the browser send is fine
    assert request(port, "GET", "/v1/health", {**cookie, "Host": "localhost:9000"}).status == 200


def test_the_tcp_port_cannot_open_or_move_itself(ccctl: Ccctl, daemon: DaemonProc) -> None:
    _, port, token = open_ui(ccctl)
    headers = {
        "Cookie": f"{COOKIE}={token}",
        CSRF_HEADER: csrf_value(token),
        "Content-Type": "application/json",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/ui", body=json.dumps({"host": "0.0.0.0"}), headers=headers)
    response = conn.getresponse()
    assert response.status == 404
    assert "Unix socket" in json.loads(response.read())["error"]
    conn.close()


def test_ui_again_keeps_the_port_and_port_moves_it(ccctl: Ccctl, daemon: DaemonProc) -> None:
    _, port, token = open_ui(ccctl)
    assert open_ui(ccctl)[1:] == (port, token)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        wanted = probe.getsockname()[1]
    _, moved, again = open_ui(ccctl, "--port", str(wanted))
    assert (moved, again) == (wanted, token)
    with pytest.raises(ConnectionRefusedError):
        request(port, "GET", "/")  # the old port was closed
    assert request(wanted, "GET", f"/?token={token}").status == 303


def test_another_address_warns_and_is_served_under_its_own_name(
    ccctl: Ccctl, daemon: DaemonProc
) -> None:
    result = ccctl("ui", "--no-open", "--host", "127.0.0.2")
    assert result.code == 0, str(result)
    assert "ssh -L" in result.err and "warning" in result.err
    url = urlsplit(result.lines[-1])
    assert url.hostname == "127.0.0.2" and url.port is not None
    token = parse_qs(url.query)["token"][0]
    assert request(url.port, "GET", f"/?token={token}", host="127.0.0.2").status == 303
    assert "dashboard listens on 127.0.0.2" in daemon.log.read_text()  # the daemon's log too


def test_configured_listener_is_on_from_the_start_and_closes_with_the_daemon(
    daemon_factory: object, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    d: DaemonProc = daemon_factory(f"web:\n  listen: 127.0.0.1:{port}\n")  # type: ignore[operator]
    d.start()
    # the API answers a moment before the dashboard's port is open
    token_file = d.state_dir / TOKEN_FILE
    deadline = time.monotonic() + WAIT
    while not listening(port) and time.monotonic() < deadline:
        time.sleep(0.01)
    token = token_file.read_text().strip()
    assert request(port, "GET", f"/?token={token}").status == 303
    assert d.stop() == 0
    with pytest.raises(ConnectionRefusedError):
        request(port, "GET", "/")


def test_a_deleted_token_file_revokes_the_token(ccctl: Ccctl, daemon: DaemonProc) -> None:
    _, port, old = open_ui(ccctl)
    (daemon.state_dir / TOKEN_FILE).unlink()
    _, again, new = open_ui(ccctl)
    assert new != old and again == port  # the same port, under the new token only
    assert request(port, "GET", "/v1/health", {"Authorization": f"Bearer {old}"}).status == 401
    assert request(port, "GET", "/v1/health", {"Authorization": f"Bearer {new}"}).status == 200


def test_on_a_desktop_ui_opens_the_link_and_not_over_ssh(
    ccctl: Ccctl, daemon: DaemonProc, tmp_path: Path
) -> None:
    opened = tmp_path / "opened"
    recorder = tmp_path / "browser.sh"
    recorder.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    recorder.chmod(0o755)
    desktop = ccctl.environ(DISPLAY=":0", BROWSER=str(recorder), SSH_CONNECTION=None, SSH_TTY=None)
    assert ccctl("ui", "--no-open", env=desktop).code == 0
    over_ssh = {**desktop, "SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}
    assert ccctl("ui", env=over_ssh).code == 0
    console = ccctl.environ(DISPLAY=None, WAYLAND_DISPLAY=None, BROWSER=str(recorder))
    assert ccctl("ui", env=console).code == 0
    assert not opened.exists()  # --no-open, ssh, no display: printed only
    result = ccctl("ui", env=desktop)
    assert result.code == 0, str(result)
    assert opened.read_text().splitlines() == [result.lines[-1]]


def test_a_port_in_use_is_an_error_that_says_so_and_the_daemon_runs_on(
    daemon_factory: object, ccctl: Ccctl
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        d: DaemonProc = daemon_factory(f"web:\n  listen: 127.0.0.1:{port}\n")  # type: ignore[operator]
        d.start()
        assert d.client.call("GET", "/v1/health")["status"] == "ok"
        deadline = time.monotonic() + WAIT
        while "web dashboard not started" not in d.log.read_text():
            assert time.monotonic() < deadline, d.log.read_text()
            time.sleep(0.01)  # waiting for another process to write its log
        result = ccctl("ui", "--no-open", "--port", str(port))
        assert result.code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.err, str(result)
        assert "in use" in result.err.lower()
