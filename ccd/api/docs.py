"""The interactive API docs at ``/docs``, served from the package (no CDN).

Clusters are often offline, so Swagger UI's script, style and icon come from the
`swagger_ui_bundle` package, mounted under `ASSETS`.  That bundle is Swagger UI 4,
which renders OpenAPI 3.0 documents only: the page reads `DOCUMENT`, the app's
own document (``/openapi.json``, OpenAPI 3.1) relabelled 3.0.3.  ReDoc is off: no
package ships it.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

#: where Swagger UI's files are served
ASSETS: Final = "/docs/static"
#: the document the docs page shows
DOCUMENT: Final = "/docs/openapi.json"


def install(app: FastAPI) -> None:
    """Serve the docs page, its document and its assets on `app`."""
    assets = Path(import_module("swagger_ui_bundle").swagger_ui_path)
    app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")
    app.add_api_route("/docs", _page, include_in_schema=False)
    app.add_api_route(DOCUMENT, _document, include_in_schema=False)


async def _page(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=DOCUMENT,
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )


async def _document(request: Request) -> dict[str, Any]:
    document: dict[str, Any] = request.app.openapi()
    return {**document, "openapi": "3.0.3"}
