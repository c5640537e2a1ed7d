"""The ASGI app the TCP listener serves: the API and the dashboard, behind the guard."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from ccd.api import Services, create_app
from ccd.web import pages, views
from ccd.web.guard import Guard, csrf_value, host_names

STATIC: Final = Path(__file__).parent / "static"


def create_web_app(services: Services, token: str, bind_host: str) -> ASGIApp:
    """The API's own app (so its routes, errors and /docs are the socket's), plus the
    pages and their files; `Guard` checks every request before any of it runs."""
    app = create_app(services)
    # the pages live outside /v1 and /docs, so no path is served twice
    for route in (*pages.router.routes, *views.router.routes):
        app.router.routes.append(route)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.csrf = csrf_value(token)
    return Guard(app, token, host_names(bind_host))
