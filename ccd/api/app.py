"""The FastAPI application: its routers, the services they share, and error bodies.

Every error leaves the API as ``{"error": message}`` (plus ``problems`` for an
invalid workflow): expected failures are `CcdError`s with their own status, an
unknown route or method says where the routes are listed, and a request that
fails validation says which parameter and why, as a 400 rather than FastAPI's 422
(which ccd keeps for workflows that do not validate).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccd import __version__
from ccd.api import additions, admin, docs, hosts, reports, streams, ui, why, workflows
from ccd.api.services import Services
from ccd.errors import CcdError


def create_app(services: Services) -> FastAPI:
    # The routers' routes are handed to the app as they are, not through
    # `include_router`: FastAPI matches an included router through a layer of
    # include contexts on every request (~80 Python calls more, where a whole
    # health check was ~260), and these routers have no prefix, tags or
    # dependencies to combine.  (So `app.dependency_overrides` does not reach
    # them: a test passes its own `Services` instead.)
    routers = (
        admin.router,
        workflows.router,
        additions.router,
        hosts.router,
        streams.router,
        ui.router,
        why.router,
        reports.router,
    )
    app = FastAPI(
        title="ccd",
        version=__version__,
        description="Workflow coordinator daemon: submit, watch and control workflows.",
        routes=[route for router in routers for route in router.routes],
        docs_url=None,  # served by `docs`, without a CDN
        redoc_url=None,
    )
    docs.install(app)
    app.state.services = services
    app.exception_handler(CcdError)(_ccd_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(RequestValidationError)(_bad_request)
    return app


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _ccd_error(_: Request, exc: CcdError) -> JSONResponse:
    problems = [p.to_dict() for p in getattr(exc, "problems", [])]
    extra = {"problems": problems} if problems else {}
    return _error(exc.http_status, exc.message, **extra)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404 and exc.detail == "Not Found":
        # a workflow or job name with a '/' in it lands here, not on its route
        message = (
            f"no such API route: {request.method} {request.url.path} "
            "(see /docs; names with '/' are not workflow names)"
        )
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path} (see /docs)"
    else:
        message = str(exc.detail)
    return _error(exc.status_code, message)


async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return _error(400, "bad request: " + "; ".join(parts))
