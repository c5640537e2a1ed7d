"""Retention (`ccctl gc`): delete finished workflows older than an age, here and on their hosts.

The database goes first, in one writer operation that chooses and deletes the
workflows atomically (a workflow retried meanwhile is not chosen), then their run
directories: locally (``runs_dir/<workflow>``, which also holds the mirrors of
remote logs) and on each SSH host.  A crash between the two leaves local run
directories without a workflow; the next `gc` removes those as well once they
are older than its cutoff.  Remote directories are found through the stored
executor handles, so they go in the same run as their rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Container, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ccd.executors.base import LaunchError
from ccd.store import Store
from ccd.store.gc import Expired

log = logging.getLogger(__name__)

#: how long one host may take to answer before its directories are reported as left
REMOTE_TIMEOUT = 30.0


class RemoteRuns(Protocol):
    """What deleting remote run directories needs of the SSH executor.

    A protocol, not the executor's class: the daemon creates that executor (and
    imports asyncssh) only once an SSH host is used.
    """

    async def remove_runs(self, host: str, paths: list[str]) -> None: ...


async def collect(
    store: Store,
    runs_dir: Path,
    ssh: RemoteRuns,
    *,
    older_than: float,
    dry_run: bool,
    running: Container[str],
) -> dict[str, Any]:
    """Delete (or, for a dry run, list) finished workflows that ended `older_than` s ago."""
    cutoff = time.time() - older_than
    if dry_run:
        expired = await store.expired(cutoff, running)
    else:
        expired = await store.delete_expired(cutoff, running)
    local = [runs_dir / wid for wid in expired.ids]
    if not dry_run:
        local += await _orphans(store, runs_dir, cutoff, set(expired.ids))
    local_bytes = await asyncio.to_thread(_tree_sizes, local)
    remote = _remote_workflow_dirs(expired)
    result: dict[str, Any] = {
        "dry_run": dry_run,
        "older_than": older_than,
        "cutoff": cutoff,
        **expired.to_dict(),
        "local_dirs": [str(p) for p in local if p.exists()],
        "local_bytes": local_bytes,
        "remote_dirs": {host: dirs for host, dirs in sorted(remote.items())},
        "remote_errors": {},
    }
    if not dry_run:
        await asyncio.to_thread(_remove_trees, local)
        result["remote_errors"] = await _remove_remote(ssh, remote)
    return result


def _remote_workflow_dirs(expired: Expired) -> dict[str, list[str]]:
    """Per host, the remote directories to delete: each workflow's directory there.

    An attempt runs in ``<root>/<workflow>/<job>/<attempt>``; the workflow's
    directory is taken only when the path really has that shape, so a stored
    handle can never make `gc` delete anything but a run directory.
    """
    by_host: dict[str, set[str]] = {}
    for workflow_id, host, run_dir in expired.ssh_dirs:
        path = PurePosixPath(run_dir)
        if not path.is_absolute() or len(path.parts) < 5:
            log.warning("gc: not removing %s:%s (not a run directory)", host, run_dir)
            continue
        target = path.parent.parent if path.parent.parent.name == workflow_id else path
        if workflow_id not in target.parts:
            log.warning("gc: not removing %s:%s (not a run directory)", host, run_dir)
            continue
        by_host.setdefault(host, set()).add(str(target))
    return {host: sorted(dirs) for host, dirs in by_host.items()}


async def _remove_remote(ssh: RemoteRuns, remote: dict[str, list[str]]) -> dict[str, str]:
    """Remove each host's directories (hosts in parallel); the errors by host."""

    async def one(host: str, dirs: list[str]) -> str | None:
        try:
            await asyncio.wait_for(ssh.remove_runs(host, dirs), REMOTE_TIMEOUT)
        except TimeoutError:
            return f"'{host}' did not answer within {REMOTE_TIMEOUT:g}s"
        except LaunchError as exc:
            return str(exc)
        return None

    hosts = sorted(remote)
    errors = await asyncio.gather(*(one(h, remote[h]) for h in hosts))
    return {h: e for h, e in zip(hosts, errors, strict=True) if e is not None}


async def _orphans(store: Store, runs_dir: Path, cutoff: float, skip: set[str]) -> list[Path]:
    """Local run directories older than `cutoff` whose workflow is gone (an earlier gc
    that crashed between its two steps)."""
    try:
        entries = await asyncio.to_thread(lambda: list(os.scandir(runs_dir)))
    except FileNotFoundError:
        return []
    orphans = []
    for entry in entries:
        if entry.name in skip or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(FileNotFoundError):
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            if await store.get_spec(entry.name) is None:
                orphans.append(Path(entry.path))
    return orphans


def _tree_sizes(paths: Iterable[Path]) -> int:
    """Bytes of the files under `paths` (symlinks are not followed)."""
    total = 0
    for root in paths:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _remove_trees(paths: Iterable[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
