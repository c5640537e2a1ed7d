"""The API over its `Services` protocol: served in-process, without a daemon."""

from __future__ import annotations

import ast
import re
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
from ccd.events import Event, EventKind
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
    platform: dict[str, str] = field(default_factory=lambda: {"exits": "poll"})

    def request_stop(self) -> None:
        self.stops += 1


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[FakeServices]:
    config = DaemonConfig(
        state_dir=tmp_path,
        hosts={"far": HostConfig(hostname="far.invalid")},
        environment={"CCD_TEST_VAR": "hello", "PATH": "/opt/x/bin:$PATH"},
    )
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
    # the names the config's environment: block set, never their values
    assert health["environment"] == ["CCD_TEST_VAR", "PATH"]
    assert health["platform"] == {"exits": "poll"}
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


#: the POST routes whose body is the workflow file, and the JSON routes' answers
YAML_BODIES = ("/v1/workflows", "/v1/validate")
JSON_ANSWERS = [
    ("get", "/v1/health", "200"),
    ("post", "/v1/shutdown", "202"),
    ("get", "/v1/workflows", "200"),
    ("post", "/v1/workflows", "201"),
    ("post", "/v1/validate", "200"),
    ("get", "/v1/workflows/{ref}", "200"),
    ("post", "/v1/workflows/{ref}/cancel", "200"),
    ("post", "/v1/workflows/{ref}/jobs/{job}/cancel", "200"),
    ("post", "/v1/workflows/{ref}/retry", "200"),
    ("get", "/v1/workflows/{ref}/report", "200"),
]


async def test_the_openapi_document_declares_bodies_and_answers(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in YAML_BODIES:
        body = paths[path]["post"]["requestBody"]
        assert body["required"] is True, path
        for media in ("application/yaml", "text/plain"):
            assert body["content"][media]["schema"] == {"type": "string"}, (path, media)
    assert "requestBody" in paths["/v1/gc"]["post"]
    for method, path, status in JSON_ANSWERS:
        schema = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
        assert schema.get("$ref") or schema.get("type") == "array", (method, path, schema)
    # errors are {"error": ...} (a 400, not FastAPI's 422, for a bad parameter)
    for path, methods in paths.items():
        for method, operation in methods.items():
            answers = operation["responses"]
            assert "422" not in answers, (method, path)
            error = answers["4XX"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    log = paths["/v1/workflows/{ref}/jobs/{job}/log"]["get"]["responses"]["200"]["content"]
    assert list(log) == ["text/plain"]
    events = paths["/v1/events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["application/x-ndjson", "text/event-stream"]


async def test_a_workflow_uploaded_as_the_document_says_is_submitted(
    client: httpx.AsyncClient, services: FakeServices
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    media = next(iter(paths["/v1/workflows"]["post"]["requestBody"]["content"]))
    reply = await client.post(
        "/v1/workflows",
        content=b"name: doc\njobs:\n  a: {run: 'true'}\n",
        headers={"Content-Type": media},
    )
    assert reply.status_code == 201
    assert reply.json() == {"id": "wf-fake", "name": "doc", "jobs": 1}


async def test_the_docs_page_loads_nothing_from_the_network(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    urls = re.findall(r"""(?:src|href)="([^"]+)"|url: '([^']+)'""", page)
    assets = [a or b for a, b in urls]
    assert len(assets) >= 4, page  # the script, the style, the icon, the document
    assert not re.search(r"https?://", page), page
    for url in assets:
        reply = await client.get(url)
        assert reply.status_code == 200 and reply.content, url
    # the document the page shows is one its Swagger UI renders (OpenAPI 3.0.n)
    document = (await client.get(assets[-1])).json()
    assert document["openapi"].startswith("3.0."), document["openapi"]
    assert document["paths"] == (await client.get("/openapi.json")).json()["paths"]
    assert (await client.get("/redoc")).status_code == 404


@pytest.mark.parametrize(
    ("job", "words"),
    [
        ("{script: train.py}", "script 'train.py'"),
        ("{script: ./sub/train.py}", "script './sub/train.py'"),
        ("{run: 'true', workdir: data}", "workdir 'data'"),
    ],
)
async def test_a_relative_path_without_a_source_is_refused(
    client: httpx.AsyncClient,
    services: FakeServices,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    job: str,
    words: str,
) -> None:
    # the files exist where the daemon runs: they used to be found there
    (tmp_path / "sub").mkdir()
    for name in ("train.py", "sub/train.py"):
        (tmp_path / name).write_text("print(1)\n")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    for route in ("/v1/workflows", "/v1/validate"):
        reply = await client.post(route, content=f"name: rel\njobs:\n  a: {job}\n".encode())
        assert 400 <= reply.status_code < 500, reply.text
        assert words in reply.text and "?source=" in reply.text, reply.text
    assert services.engine.submitted == []


async def test_paths_with_a_source_or_absolute_ones_need_no_base(
    client: httpx.AsyncClient, services: FakeServices, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text("print(1)\n")
    text = b"name: ok\njobs:\n  a: {script: train.py}\n"
    reply = await client.post("/v1/workflows", content=text, params={"source": str(script)})
    assert reply.status_code == 201, reply.text
    absolute = f"name: abs\njobs:\n  a: {{script: {script}}}\n  b: {{run: 'true'}}\n"
    reply = await client.post("/v1/workflows", content=absolute.encode())
    assert reply.status_code == 201, reply.text
    jobs = services.engine.submitted[-1].jobs
    assert jobs["a"].script == str(script)
    # without its file, a local job starts in the home directory, as a remote one does
    # (not in the daemon's working directory, an accident of how it was started)
    assert jobs["b"].workdir == str(Path.home())
    reply = await client.post("/v1/workflows", content=text, params={"source": "wf.yaml"})
    assert reply.status_code == 400 and "absolute" in reply.json()["error"]


async def test_the_report_answers_each_attempt_s_cost(
    client: httpx.AsyncClient, services: FakeServices
) -> None:
    store = services.store
    spec = {"name": "costly", "jobs": {"a": {"needs": []}, "b": {"needs": ["a"]}}}
    await store.record(Event("w1", None, EventKind.WORKFLOW_SUBMITTED, {"spec": spec}, 100.0))
    for kind, data, when in [
        (EventKind.JOB_STATE, {"state": "running", "attempt": 1, "handle": {"pid": 1}}, 101.0),
        (
            EventKind.JOB_USAGE,
            {"attempt": 1, "outcome": "failed", "exit_code": 2, "ended": 103.0,
             "usage": {"cpu_user": 1.5, "cpu_sys": 0.5, "maxrss_kb": 2048, "source": "kernel"}},
            103.5,
        ),
        (EventKind.JOB_STATE, {"state": "failed", "attempt": 1, "exit_code": 2}, 103.5),
    ]:  # fmt: skip
        await store.record(Event("w1", "a", kind, data, when))
    await store.record(Event("w1", "b", EventKind.JOB_STATE, {"state": "skipped"}, 103.6))
    reply = await client.get("/v1/workflows/costly/report")
    assert reply.status_code == 200
    report = reply.json()
    assert set(report) == {"workflow", "generated", "attempts", "totals", "groups"}
    assert report["workflow"]["id"] == "w1"
    a, b = report["attempts"]
    assert (a["job"], a["attempt"], a["state"], a["exit_code"]) == ("a", 1, "failed", 2)
    assert (a["wall"], a["cpu"], a["cpu_percent"], a["maxrss_kb"]) == (2.0, 2.0, 100.0, 2048)
    assert (b["job"], b["attempt"], b["state"]) == ("b", 0, "skipped")
    assert report["totals"]["attempts"] == 1
    # the answer is what the document declares
    paths = (await client.get("/openapi.json")).json()
    schema = paths["components"]["schemas"]["AttemptCost"]["properties"]
    assert set(schema) == set(a)
    assert (await client.get("/v1/workflows/nope/report")).status_code == 404
