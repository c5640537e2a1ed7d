"""Workflow statuses and events as the daemon's API sends them, for the CLI's tests."""

from __future__ import annotations

import io
import itertools
import time
from typing import Any

from rich.console import Console, RenderableType

#: 12:00:00 local time, so the clock in watch lines is predictable in any time zone
T0 = time.mktime((2024, 1, 1, 12, 0, 0, 0, 0, -1))
#: event sequence numbers: increasing, like the daemon's
SEQ = itertools.count(1)


def make_job(name: str, state: str = "pending", **fields: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": name,
        "state": state,
        "progress": None,
        "message": None,
        "attempt": 0,
        "exit_code": None,
        "reason": None,
        "host": "localhost",
        "executor": "local",
        "needs": [],
        "started": None,
        "ended": None,
        "outputs": {},
    }
    job.update(fields)
    return job


def make_status(*jobs: dict[str, Any], state: str = "running") -> dict[str, Any]:
    return {
        "id": "a1b2c3d4",
        "name": "mnist",
        "state": state,
        "created": T0 - 60,
        "updated": T0,
        "ended": None,
        "source": "mnist.yaml",
        "jobs": list(jobs),
    }


def event(kind: str, job: str | None, data: dict[str, Any], at: float = 0.0) -> dict[str, Any]:
    return {
        "seq": next(SEQ),
        "workflow_id": "a1b2c3d4",
        "job": job,
        "time": T0 + at,
        "kind": kind,
        "data": data,
    }


def render(renderable: RenderableType, width: int = 100, height: int = 30) -> list[str]:
    console = Console(width=width, height=height, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()
