"""What `ccctl gc` prints: the workflows that go (or would go) and what was freed."""

from __future__ import annotations

import time
from typing import Any


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def gc_report(result: dict[str, Any]) -> list[str]:
    """Lines for a terminal: one per workflow, then a summary (and any host left undone)."""
    cutoff = time.strftime("%Y-%m-%d %H:%M", time.localtime(result["cutoff"]))
    workflows = result["workflows"]
    kept = _kept_lines(result.get("kept") or [])
    if not workflows:
        return [f"no finished workflow ended before {cutoff}; nothing to delete", *kept]
    verb = "would delete" if result["dry_run"] else "deleted"
    lines = [f"{verb} {len(workflows)} workflow(s) that ended before {cutoff}:", *kept]
    for w in workflows:
        ended = time.strftime("%Y-%m-%d %H:%M", time.localtime(w["ended"]))
        lines.append(
            f"  {w['id']}  {w['name']:<24} {w['state']:<10} ended {ended}  {w['events']} events"
        )
    remote = result["remote_dirs"]
    where = ", ".join(f"{len(dirs)} on {host}" for host, dirs in remote.items())
    summary = (
        f"{result['events']} events; local run directories: {len(result['local_dirs'])} "
        f"({human_bytes(result['local_bytes'])})"
    )
    lines.append(summary + (f"; remote run directories: {where}" if where else ""))
    if result["dry_run"]:
        lines.append("dry run: nothing was deleted")
        return lines
    freed = result["db_bytes_freed"] + result["local_bytes"]
    lines.append(
        f"freed {human_bytes(freed)} (database {human_bytes(result['db_bytes_freed'])}, "
        f"run directories {human_bytes(result['local_bytes'])})"
    )
    for host, error in result["remote_errors"].items():
        dirs = " ".join(remote.get(host, []))
        lines.append(f"warning: run directories on {host} were not removed ({error}): {dirs}")
    return lines


def _kept_lines(kept: list[dict[str, Any]]) -> list[str]:
    """Old workflows kept because newer ones reuse their runs (and logs): --resume."""
    lines = []
    for k in kept:
        users = k["reused_by"]
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        lines.append(
            f"  kept {k['id']}  {k['name']}: its runs are reused by {shown}; it goes once they do"
        )
    return lines
