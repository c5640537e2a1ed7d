"""`ccctl watch`: a live view of one workflow, fed by its event stream.

On a terminal a rich Live table is redrawn at most `FPS` times a second; a
reader thread turns the blocking HTTP stream into a queue so the view keeps
ticking (elapsed times) while no event arrives.  Without a terminal, one plain
line is printed per change, which is what logs and CI want.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from typing import Any

from ccd.cli.client import Client, path_of
from ccd.cli.render import WatchModel, summary_line, watch_renderable
from ccd.errors import DaemonUnreachable

FPS = 8
_END = object()


def event_line(event: dict[str, Any]) -> str:
    """One human line for any event (``ccctl events``)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
    data = event.get("data") or {}
    who = event.get("job") or "workflow"
    kind = event["kind"]
    if kind in ("job.state", "workflow.state"):
        text = data.get("state", "?")
        if data.get("attempt"):
            text += f" (attempt {data['attempt']})"
        if data.get("exit_code") is not None:
            text += f" exit={data['exit_code']}"
        if data.get("reason"):
            text += f": {data['reason']}"
    elif kind == "job.progress":
        pct = data.get("progress")
        text = "progress" + (f" {pct:g}%" if pct is not None else "")
        if data.get("message"):
            text += f" {data['message']}"
    elif kind == "job.output":
        text = f"output {data.get('key')}={data.get('value')}"
    elif kind == "job.warning":
        text = f"warning: {data.get('message')}"
    elif kind == "job.launched":
        text = f"launched attempt {data.get('attempt')}"
    elif kind == "workflow.submitted":
        text = f"submitted {data.get('name')}"
    else:
        text = kind
    return f"{event['seq']:>6} {stamp} {who} {text}"


def follow(client: Client, ref: str) -> str:
    """Follow a workflow until it is final; return its final state."""
    status: dict[str, Any] = client.call("GET", path_of("workflows", ref))
    model = WatchModel(status)
    stream = client.stream_lines(
        path_of("workflows", status["id"], "events"),
        {"follow": True, "since": status.get("seq", 0)},
    )
    if sys.stdout.isatty():
        _live(model, stream)
    else:
        _plain(model, stream)
    print(summary_line(model.status))
    if model.status["state"] == "running":
        # the stream ended before the workflow did: the daemon stopped
        raise DaemonUnreachable(
            "the ccd daemon stopped while watching; the jobs keep running and the next "
            f"daemon picks them up (then: ccctl watch {status['id']})"
        )
    return str(model.status["state"])


def _plain(model: WatchModel, stream: Any) -> None:
    for raw in stream:
        if not raw.strip():
            continue
        for line in model.apply(json.loads(raw)):
            sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _live(model: WatchModel, stream: Any) -> None:
    from rich.console import Console
    from rich.live import Live

    events: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            for raw in stream:
                if raw.strip():
                    events.put(json.loads(raw))
        except Exception as exc:  # shown by the main thread
            events.put(exc)
        events.put(_END)

    threading.Thread(target=read, name="events", daemon=True).start()
    console = Console()

    def view() -> Any:
        return watch_renderable(
            model, height=max(5, console.height - 1), width=console.width, now=time.time()
        )

    with Live(view(), console=console, auto_refresh=False, transient=False) as live:
        while True:
            try:
                item = events.get(timeout=1 / FPS)
            except queue.Empty:
                live.update(view(), refresh=True)
                continue
            if item is _END:
                live.update(view(), refresh=True)
                return
            if isinstance(item, Exception):
                raise item
            model.apply(item)
            while True:  # take everything queued before redrawing
                try:
                    nxt = events.get_nowait()
                except queue.Empty:
                    break
                if nxt is _END or isinstance(nxt, Exception):
                    events.put(nxt)
                    break
                model.apply(nxt)
            live.update(view(), refresh=True)
