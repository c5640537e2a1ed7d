"""The checks of a workflow's top-level settings besides its jobs: ``concurrency``
and ``resume`` (each returns the checked value and the problems found)."""

from __future__ import annotations

from typing import Any

from ccd.spec.hints import what
from ccd.spec.positions import Report


def top_concurrency(data: dict[Any, Any]) -> tuple[int | None, list[Report]]:
    value = data.get("concurrency")
    if value is None:
        return None, []
    if isinstance(value, bool) or not isinstance(value, int):
        message = f"concurrency must be a whole number, not {what(value)}"
        return None, [(("concurrency",), "wrong-type", message, False)]
    if value < 1:
        message = "concurrency must be at least 1; leave it out for no per-workflow limit"
        return None, [(("concurrency",), "bad-value", message, False)]
    return value, []


def top_resume(data: dict[Any, Any]) -> tuple[bool, list[Report]]:
    """``resume: true``: reuse earlier runs of unchanged jobs, as ``--resume`` does."""
    value = data.get("resume", False)
    if isinstance(value, bool):
        return value, []
    message = (
        f"resume must be true or false, not {what(value)}; true reuses the earlier "
        "run of each job whose cache key is unchanged"
    )
    return False, [(("resume",), "wrong-type", message, False)]
