"""What the API's routes need from the daemon, stated as protocols.

The routes know the daemon only through `Services`: the store they read, the
engine's control surface (`EngineControl`), the daemon's config, the file watcher
that wakes log followers, the SSH executor for host checks and gc, and the
lifecycle facts (start time, whether it is stopping, how to ask it to stop).  The
daemon satisfies `Services` structurally, so this package never imports
`ccd.daemon`, and a test can serve the routes over a small fake.  Members are
read-only properties: an implementation may hold a narrower type (the real
`Engine` for `EngineControl`) and may change a value over time (`stopping`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ccd.retention import RemoteRuns

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ccd.config import DaemonConfig
    from ccd.spec.model import Job, Workflow
    from ccd.store import Store


class EngineControl(Protocol):
    """The engine as the routes drive it: workflows in, cancels and retries."""

    def is_running(self, workflow_id: str) -> bool: ...

    async def submit(self, spec: Workflow) -> str: ...

    def cancel(self, workflow_id: str, job: str | None = None) -> None: ...

    async def retry(self, workflow_id: str) -> list[str]: ...

    async def rerun(self, workflow_id: str, job: str, downstream: bool = False) -> list[str]: ...

    def live_spec(self, workflow_id: str) -> Workflow:
        """The running workflow's DAG now; Conflict once it has ended."""
        ...

    async def add_jobs(self, workflow_id: str, jobs: Mapping[str, Job]) -> list[str]: ...


class SshHosts(RemoteRuns, Protocol):
    """The SSH executor as `hosts check` and `gc` use it."""

    async def check(self, host: str) -> dict[str, Any]: ...

    def link_stats(self, host: str) -> dict[str, Any] | None:
        """The connection's state and counters; None if it was never used."""
        ...


class LogWatch(Protocol):
    """One subscription to a run directory: `changed` is set when a file in it moves."""

    changed: asyncio.Event

    @property
    def timeout(self) -> float | None:
        """None with inotify; else how often a follower should look anyway."""
        ...

    def close(self) -> None: ...


class LogWatcher(Protocol):
    def watch(self, path: Path) -> LogWatch: ...


class Services(Protocol):
    """Everything a route may use; the daemon passes it to `create_app`."""

    @property
    def store(self) -> Store: ...

    @property
    def engine(self) -> EngineControl: ...

    @property
    def config(self) -> DaemonConfig: ...

    @property
    def filewatch(self) -> LogWatcher: ...

    @property
    def ssh(self) -> SshHosts:
        """Read only when a route needs it: the first read imports asyncssh."""
        ...

    @property
    def platform(self) -> Mapping[str, str]:
        """By mechanism (exits, files, processes, service), what this daemon uses."""
        ...

    @property
    def started(self) -> float:
        """When the daemon started (`time.time()`)."""
        ...

    @property
    def stopping(self) -> bool:
        """True once shutdown began: following streams end instead of waiting."""
        ...

    def request_stop(self) -> None: ...
