"""The API over its `Services` protocol: served in-process, without a daemon."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import ccd.api
from ccd.api import Services, create_app
from ccd.config import DaemonConfig, HostConfig
from ccd.executors.base import LaunchError
from ccd.executors.filewatch import FileWatcher
from ccd.spec.model import Workflow
from ccd.store import Store

API_DIR = Path(ccd.api.__file__).parent


@dataclass
class FakeEngine:
    submitted: list[Workflow] = field(default_factory=list)
    cancels: list[tuple[str, str | None]] = field(default_factory=list)

    def is_running(self, workflow_id: str) -> bool:
        return False

    async def submit(self, spec: Workflow) -> str:
        self.submitted.append(spec)
        return "wf-fake"

    def cancel(self, workflow_id: str, job: str | None = None) -> None:
        self.cancels.append((workflow_id, job))

    async def retry(self, workflow_id: str) -> list[str]:
        return []


class UnreachableSsh:
    async def check(self, host: str) -> dict[str, Any]:
        raise LaunchError(f"cannot connect to {host}")

    async def remove_runs(self, host: str, paths: list[str]) -> None:
        raise LaunchError(f"cannot connect to {host}")


@dataclass
class FakeServices:
    store: Store
    config: DaemonConfig
    engine: FakeEngine = field(default_factory=FakeEngine)
    filewatch: FileWatcher = field(default_factory=FileWatcher)
    ssh: UnreachableSsh = field(default_factory=UnreachableSsh)
    started: float = 0.0
    stopping: bool = False
    stops: int = 0

    def request_stop(self) -> None:
        self.stops += 1


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[FakeServices]:
    config = DaemonConfig(state_dir=tmp_path, hosts={"far": HostConfig(hostname="far.invalid")})
    store = await Store.open(config.database)
    try:
        yield FakeServices(store=store, config=config)
    finally:
        await store.close()


@pytest.fixture
async def client(services: FakeServices) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_as_services(services))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ccd") as client:
        yield client


def _as_services(fake: FakeServices) -> Services:
    return fake  # the assignment is the check: the fake satisfies the protocol


def test_the_api_package_never_imports_the_daemon() -> None:
    # statically, TYPE_CHECKING blocks included: that is where the old circle hid
    for module in API_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n == "ccd.daemon" or n.startswith("ccd.daemon.") for n in names), module
    # and at run time, in a fresh interpreter
    code = (
        "import sys, ccd.api; print(sorted(m for m in sys.modules if m.startswith('ccd.daemon')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_health_and_shutdown_use_the_services(
    client: httpx.AsyncClient, services: FakeServices
) -> None:
    health = (await client.get("/v1/health")).json()
    assert health["status"] == "ok" and health["state_dir"] == str(services.config.state_dir)
    assert health["uptime"] > 0
    reply = await client.post("/v1/shutdown")
    assert reply.status_code == 202 and services.stops == 1


async def test_submit_goes_to_the_engine(client: httpx.AsyncClient, services: FakeServices) -> None:
    reply = await client.post("/v1/workflows", content=b"name: one\njobs:\n  a: {run: 'true'}\n")
    assert reply.status_code == 201
    assert reply.json() == {"id": "wf-fake", "name": "one", "jobs": 1}
    assert [spec.name for spec in services.engine.submitted] == ["one"]


async def test_an_unknown_workflow_is_a_404_that_says_so(
    client: httpx.AsyncClient, services: FakeServices
) -> None:
    reply = await client.post("/v1/workflows/nope/cancel")
    assert reply.status_code == 404
    assert reply.json() == {"error": "no workflow with id or name 'nope' (see: ccctl ls)"}
    assert services.engine.cancels == []


async def test_a_host_check_reports_an_unreachable_host_as_unusable(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/v1/hosts/localhost/check")).json()["usable"] is True
    far = (await client.post("/v1/hosts/far/check")).json()
    assert far == {"host": "far", "usable": False, "error": "cannot connect to far"}
    assert (await client.post("/v1/hosts/nowhere/check")).status_code == 404
