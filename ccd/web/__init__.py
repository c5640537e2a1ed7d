"""The web dashboard: pages, their assets, and the guard of the TCP port (issue #14).

`create_web_app` serves the API (the same routes as the Unix socket) and the pages
behind `guard.Guard`; the daemon owns the listener (`ccd.daemon.web`).  Pages are
rendered here (Jinja2, `pages`, `views`) and brought to life by htmx and one small
script of ours (``static/ccd.js``) that follows the event stream.
"""

from __future__ import annotations

from ccd.web.app import create_web_app

__all__ = ["create_web_app"]
