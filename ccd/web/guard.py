"""What stands between the TCP port and the API: the token, the cookie, CSRF, Host.

The Unix socket is private by its file mode; a TCP port on 127.0.0.1 is open to
every local user and to any web page the user's browser visits.  So every request
on the port must carry the token: in the query once (``?token=…``, which `Guard`
swaps for an ``HttpOnly; SameSite=Strict`` cookie and a redirect that drops it
from the address bar and the history), then in that cookie, or as ``Authorization:
Bearer …`` for scripts.  A request authenticated by the cookie that changes
something must also send `CSRF_HEADER` with the value the page embeds, which a
page of another origin can neither read nor send without a CORS preflight that
the daemon never grants.  `Host` (and `Origin` when sent) must name this listener:
a rebinding DNS name that resolves to 127.0.0.1 is refused, token or not.

A pure ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: the event and log
streams pass through it unbuffered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the file in the state directory that holds the token (mode 0600)
TOKEN_FILE: Final = "web-token"
#: the cookie's name, or its prefix (``ccd_session_8787``: see `Guard._exchange`)
COOKIE: Final = "ccd_session"
CSRF_HEADER: Final = "x-ccd-csrf"
#: host names that always mean this machine (the port may differ: ``ssh -L`` picks one)
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "[::1]"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

#: sent with every answer: no framing (clickjacking of the cancel button), no
#: Referer (a page's URL once held the token), no sniffing of log text as HTML
_HEADERS: Final = [
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
#: the dashboard runs only its own files; Swagger UI's page (/docs) has an inline script
_CSP: Final = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    b"frame-ancestors 'none'; form-action 'self'"
)


def load_token(state_dir: Path) -> str:
    """The dashboard's token, created (random, 0600) on first use and kept after: a
    bookmarked page keeps working across daemon restarts; delete the file to rotate."""
    path = state_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # a copy restored with a looser mode is tightened
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
        path.unlink()  # empty or truncated: a short token is no secret
        return load_token(state_dir)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def csrf_value(token: str) -> str:
    """The CSRF header's value: derived from the token, so the page can be given it
    without being given the token (the cookie that holds that is HttpOnly)."""
    return hmac.new(token.encode(), b"ccd-csrf", hashlib.sha256).hexdigest()


def host_names(bind_host: str) -> frozenset[str]:
    """The names a request's Host may use to reach a listener bound to `bind_host`."""
    name = f"[{bind_host}]" if ":" in bind_host else bind_host
    wildcard = bind_host in ("0.0.0.0", "::")
    return LOOPBACK if wildcard else LOOPBACK | {name.lower()}


def _split_host(value: str) -> str:
    """The name part of a Host header value (``[::1]:8787`` → ``[::1]``)."""
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """The ASGI app in front of the dashboard and the API on the TCP port."""

    def __init__(self, app: ASGIApp, token: str, hosts: Iterable[str]) -> None:
        self.app = app
        self._token = token.encode()
        self._csrf = csrf_value(token).encode()
        self._hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # nothing here speaks WebSocket, and an upgrade would skip the checks below
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan (the daemon turns it off)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self._refusal(scope, headers)
        if refused is not None:
            status, message = refused
            await _answer(send, status, message, headers)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:
            await self._exchange(scope, send, query, headers)
            return
        await self.app(scope, receive, _with_headers(send, scope["path"]))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """Why this request is refused (status, message), or None to let it through."""
        host = headers.get("host", "")
        if _split_host(host.lower()) not in self._hosts:
            return 421, f"this listener does not serve the host name {host!r}"
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host.lower()}":
            return 403, f"cross-origin request from {origin!r} refused"
        if "token" in dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))):
            return None  # checked by `_exchange`
        bearer = headers.get("authorization", "")
        if bearer.startswith("Bearer ") and self._same(bearer[7:]):
            return None  # a script's header: no ambient credential, so no CSRF
        if not any(self._same(value) for value in _session_cookies(headers.get("cookie", ""))):
            return 401, "no valid token: open the link `ccctl ui` prints"
        if scope["method"] not in SAFE_METHODS:
            sent = headers.get(CSRF_HEADER, "").encode()
            if not hmac.compare_digest(sent, self._csrf):
                return 403, f"missing or wrong {CSRF_HEADER} header (send it from the page)"
        return None

    def _same(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token)

    async def _exchange(
        self, scope: Scope, send: Send, query: dict[str, str], headers: dict[str, str]
    ) -> None:
        """``?token=`` → the cookie, and a redirect to the same address without it."""
        if scope["method"] != "GET" or not self._same(query.pop("token")):
            await _answer(send, 401, "wrong token: open the link `ccctl ui` prints", headers)
            return
        # the path as it was sent (still percent-encoded: nothing to inject into the
        # header), and never "//host", which a browser would take for another site
        path = scope.get("raw_path") or scope["path"].encode()
        path = b"/" + path.lstrip(b"/")
        location = path.decode("latin-1") + ("?" + urlencode(query) if query else "")
        # named by the port the browser sees: cookies are kept apart by host only, and
        # two daemons' dashboards on one machine must not overwrite each other's
        port = headers.get("host", "").rpartition(":")[2]
        name = f"{COOKIE}_{port}" if port.isdigit() else COOKIE
        cookie = f"{name}={self._token.decode()}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode()),
                    (b"set-cookie", cookie.encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                    *_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _session_cookies(header: str) -> list[str]:
    """The values of our cookies in a Cookie header.  Split by hand: SimpleCookie
    gives up on the whole header at the first cookie it cannot parse, and other
    programs on 127.0.0.1 set cookies that are sent here too."""
    values = []
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE or name.startswith(COOKIE + "_"):
            values.append(value)
    return values


def _with_headers(send: Send, path: str) -> Send:
    extra = (
        [*_HEADERS] if path.startswith("/docs") else [*_HEADERS, (b"content-security-policy", _CSP)]
    )

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sender


async def _answer(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    """The refusal: a line of HTML for a browser's page load, the API's JSON otherwise."""
    if "text/html" in headers.get("accept", ""):
        body = (
            "<!doctype html><title>ccd</title><h1>ccd</h1><p>"
            + message.replace("&", "&amp;").replace("<", "&lt;")
            + "</p>"
        ).encode()
        media = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message}).encode()
        media = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
