"""`ccctl ui`: open the web dashboard (the daemon listens; this prints and opens the link)."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from ccd.cli.common import client

#: addresses that only this machine can reach
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def on_desktop() -> bool:
    """Whether a browser here would show a window (not over ssh, not on a bare console)."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    return sys.platform == "darwin" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def ui(
    port: Annotated[
        int | None, typer.Option(help="The port (default: the one it has, else a free one).")
    ] = None,
    host: Annotated[
        str,
        typer.Option(help="The address to listen on; anything but 127.0.0.1 reaches the network."),
    ] = "127.0.0.1",
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Print the link only; do not start a browser.")
    ] = False,
) -> None:
    """Serve the web dashboard on 127.0.0.1 and print (and on a desktop open) its link.

    The link holds a token that logs the browser in; keep it to yourself. On a cluster
    login node, forward the port instead of listening on the network:
    ``ssh -L 8787:127.0.0.1:8787 login-node``, then ``ccctl ui --port 8787 --no-open``
    there, and open the printed link here.
    """
    if host not in LOOPBACK:
        print(
            f"warning: listening on {host} lets other machines reach the dashboard (the token "
            "still guards it, but it travels unencrypted); prefer --host 127.0.0.1 with "
            "`ssh -L PORT:127.0.0.1:PORT` from your machine",
            file=sys.stderr,
        )
    body = json.dumps({"host": host, "port": port}).encode()
    result = client().call(
        "POST", "/v1/ui", body=body, headers={"Content-Type": "application/json"}
    )
    url = str(result["url"])
    print(url)
    if not no_open and on_desktop():
        import webbrowser

        webbrowser.open(url)
