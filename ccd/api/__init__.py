"""The HTTP API (FastAPI), served by the daemon on its Unix socket.

Routes are thin: they validate input, call the engine or the store, and shape
JSON.  They are grouped in routers by what they serve: `workflows` (submit,
validate, list, show, cancel, retry), `streams` (a job's log, the event log),
`hosts` (list, check), `admin` (health, shutdown, gc) and `ui` (the web
dashboard's port, opened from the socket only); `docs` serves /docs
from the package, `models` declares bodies and answers.  Routes reach the
daemon only through the `Services` protocol (`ccd.api.services`), which the
daemon hands to `create_app` (`ccd.api.app`).
"""

from __future__ import annotations

from ccd.api.app import create_app
from ccd.api.services import Services

__all__ = ["Services", "create_app"]
