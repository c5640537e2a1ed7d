"""The dashboard's guard and helpers in-process: the real app over a real store.

`create_web_app` is served through httpx's ASGI transport, so each check sends
exactly the headers it names (the browser tests, tests/e2e/test_ui_*.py, cover
what a real browser sends).
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ccd.config import DaemonConfig
from ccd.states import FINAL_JOB_STATES
from ccd.store import Store
from ccd.web import create_web_app
from ccd.web.guard import COOKIE, CSRF_HEADER, TOKEN_FILE, csrf_value, host_names, load_token
from ccd.web.pages import DONE_ORDER, duration
from ccd.web.views import _read_tail
from tests.unit.test_api_services import FakeServices, _as_services

TOKEN = "t" * 43


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = DaemonConfig(state_dir=tmp_path)
    store = await Store.open(config.database)
    fake = FakeServices(store=store, config=config)
    app = create_web_app(_as_services(fake), TOKEN, "127.0.0.1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
        yield client
    await store.close()


def test_the_token_is_made_once_private_and_kept(tmp_path: Path) -> None:
    token = load_token(tmp_path)
    path = tmp_path / TOKEN_FILE
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(tmp_path) == token
    os.chmod(path, 0o644)
    assert load_token(tmp_path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n")  # no secret: a new one replaces it
    fresh = load_token(tmp_path)
    assert fresh != "short" and len(fresh) >= 40


def test_the_csrf_value_is_not_the_token() -> None:
    assert csrf_value(TOKEN) != TOKEN
    assert csrf_value(TOKEN) == csrf_value(TOKEN) != csrf_value(TOKEN + "x")


@pytest.mark.parametrize(
    ("bind", "names"),
    [
        ("127.0.0.1", {"127.0.0.1", "localhost", "[::1]"}),
        ("0.0.0.0", {"127.0.0.1", "localhost", "[::1]"}),
        ("10.1.2.3", {"127.0.0.1", "localhost", "[::1]", "10.1.2.3"}),
        ("fd00::5", {"127.0.0.1", "localhost", "[::1]", "[fd00::5]"}),
    ],
)
def test_host_names_a_listener_answers_to(bind: str, names: set[str]) -> None:
    assert host_names(bind) == names


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8787", 200),
        ("LOCALHOST:9000", 200),
        ("[::1]:8787", 200),
        ("127.0.0.1", 200),
        ("evil.example:8787", 421),
        ("127.0.0.1.evil.example", 421),
        ("", 421),
    ],
)
async def test_host_header(web: httpx.AsyncClient, host: str, status: int) -> None:
    answer = await web.get("/v1/health", headers={"Host": host, "Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == status, answer.text


async def test_a_browser_refused_gets_a_page_and_a_script_gets_json(
    web: httpx.AsyncClient,
) -> None:
    page = await web.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "ccctl ui" in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = await web.get("/v1/workflows")
    assert api.status_code == 401 and "ccctl ui" in api.json()["error"]


async def test_the_exchange_keeps_other_parameters_and_is_get_only(
    web: httpx.AsyncClient,
) -> None:
    answer = await web.get("/", params={"token": TOKEN, "state": "failed"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?state=failed"
    assert answer.headers["cache-control"] == "no-store"
    assert (await web.post("/", params={"token": TOKEN})).status_code == 401


async def test_pages_carry_security_headers(web: httpx.AsyncClient) -> None:
    answer = await web.get("/", headers={"Cookie": f"{COOKIE}={TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in answer.headers["content-security-policy"]  # default-src 'self'
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert f'content="{csrf_value(TOKEN)}"' in answer.text


async def test_a_bearer_request_needs_no_csrf_but_a_cookie_one_does(
    web: httpx.AsyncClient,
) -> None:
    body = b"name: x\njobs:\n  a: {run: 'true'}\n"
    cookie = await web.post("/v1/validate", content=body, headers={"Cookie": f"{COOKIE}={TOKEN}"})
    assert cookie.status_code == 403 and CSRF_HEADER in cookie.json()["error"]
    with_header = await web.post(
        "/v1/validate",
        content=body,
        headers={"Cookie": f"{COOKIE}={TOKEN}", CSRF_HEADER: csrf_value(TOKEN)},
    )
    assert with_header.status_code == 200, with_header.text
    bearer = await web.post(
        "/v1/validate", content=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert bearer.status_code == 200


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0, "0s"), (59.9, "59s"), (65, "1m 05s"), (3600 * 2 + 7 * 60, "2h 07m")],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_a_log_tail_starts_at_a_line(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"first line\nsecond\nthird\n")
    assert _read_tail(str(log), None, 1000) == (0, 24, b"first line\nsecond\nthird\n")
    # the last 10 bytes begin inside "second": they start at "third" instead
    assert _read_tail(str(log), None, 10) == (18, 24, b"third\n")
    # the 10 bytes before 18 begin inside "first line": they start at "second"
    assert _read_tail(str(log), 18, 10) == (11, 18, b"second\n")
    assert _read_tail(str(tmp_path / "missing"), None, 10) == (0, 0, b"")


async def test_a_websocket_is_closed_before_anything_else() -> None:
    app = create_web_app(_as_services(None), TOKEN, "127.0.0.1")  # type: ignore[arg-type]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/", "headers": []}, receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.parametrize(
    ("path", "location"),
    [("/w/abc", "/w/abc"), ("//evil.example/x", "/evil.example/x"), ("/a%0d%0ab", "/a%0d%0ab")],
)
async def test_the_redirect_stays_on_this_site(
    web: httpx.AsyncClient, path: str, location: str
) -> None:
    # the target exactly as given (httpx would read "//evil.example" as a host)
    url = httpx.URL("http://127.0.0.1:8787/", raw_path=f"{path}?token={TOKEN}".encode())
    answer = await web.get(url)
    assert answer.status_code == 303
    assert answer.headers["location"] == location


@pytest.mark.parametrize(
    "cookie",
    [
        f"{COOKIE}={TOKEN}",
        f"{COOKIE}_8787={TOKEN}",
        # another program's cookies on 127.0.0.1, one SimpleCookie cannot parse
        f'theme="dark; x"; other={{"a":1,"b":[2]}}; {COOKIE}_8787={TOKEN}; z=1',
        # another daemon's dashboard on another port
        f"{COOKIE}_9000=someone-elses; {COOKIE}_8787={TOKEN}",
    ],
)
async def test_our_cookie_is_found_among_others(web: httpx.AsyncClient, cookie: str) -> None:
    assert (await web.get("/v1/health", headers={"Cookie": cookie})).status_code == 200


async def test_the_cookie_is_named_by_the_port(web: httpx.AsyncClient) -> None:
    answer = await web.get(f"/?token={TOKEN}", headers={"Host": "localhost:9000"})
    assert answer.headers["set-cookie"].startswith(f"{COOKIE}_9000={TOKEN};")


def test_the_done_bar_has_a_piece_for_every_final_state() -> None:
    assert set(DONE_ORDER) == set(FINAL_JOB_STATES)
