"""``POST /v1/ui``: have the daemon serve the web dashboard on a TCP port.

Only the Unix socket's app can open it: the daemon puts its listener on that app's
state (`WebControl`), and the app the TCP port serves has none, so a page holding
the token cannot rebind the port to another address.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ccd.api.models import ERRORS
from ccd.errors import NotFound

router = APIRouter(responses=ERRORS)


class WebControl(Protocol):
    async def open(self, host: str, port: int | None) -> dict[str, Any]:
        """Listen on `host`:`port` (None: keep the port it has, else a free one)."""
        ...


class UiRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    #: None or 0: the port it listens on already, else a free one
    port: int | None = Field(default=None, ge=0, le=65535)


class UiAddress(BaseModel):
    #: the page, with the token that logs the browser in
    url: str
    host: str
    port: int
    #: where the token is kept (mode 0600)
    token_file: str


@router.post("/v1/ui", response_model=UiAddress)
async def open_ui(body: UiRequest, request: Request) -> dict[str, Any]:
    """Serve the dashboard (and this API, behind its token) on `host`:`port`."""
    web: WebControl | None = getattr(request.app.state, "web", None)
    if web is None:
        raise NotFound("the dashboard is opened through the daemon's Unix socket: ccctl ui")
    return await web.open(body.host, body.port or None)
