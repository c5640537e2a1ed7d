"""The HTTP API on the Unix socket: permissions, errors, streams, robustness."""

from __future__ import annotations

import json
import re
import stat
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccd.cli.client import ApiError, Client, path_of
from tests.conftest import DaemonProc


def test_socket_is_private(daemon: DaemonProc) -> None:
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.socket.parent.stat().st_mode) == 0o700


def test_health_and_openapi(daemon: DaemonProc) -> None:
    health = daemon.client.call("GET", "/v1/health")
    assert health["status"] == "ok" and health["pid"] == daemon.proc.pid  # type: ignore[union-attr]
    spec = daemon.client.call("GET", "/openapi.json")
    assert "/v1/workflows" in spec["paths"]
    assert "/v1/workflows/{ref}/events" in spec["paths"]
    conn_docs = b"".join(daemon.client.stream("/docs"))
    assert b"swagger" in conn_docs.lower()


def test_invalid_workflow_is_a_422_listing_every_problem(daemon: DaemonProc) -> None:
    text = textwrap.dedent("""
        name: bad
        jobs:
          a: {run: "true", retires: 2}
          b: {needs: [nope], run: "true"}
    """)
    with pytest.raises(ApiError) as err:
        daemon.client.call("POST", "/v1/workflows", body=text.encode())
    assert err.value.status == 422
    problems = err.value.body["problems"]
    codes = {p["code"] for p in problems}
    assert len(problems) >= 2, problems
    assert any("retires" in p["message"] and "retries" in p["message"] for p in problems)
    assert all(p["line"] > 0 for p in problems), problems
    assert codes  # stable identifiers are present
    assert daemon.client.call("GET", "/v1/workflows") == []


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "words"),
    [
        ("GET", "/v1/workflows/nope", None, 404, "no workflow"),
        ("POST", "/v1/workflows/nope/cancel", None, 404, "no workflow"),
        ("GET", "/v1/workflows", {"limit": "0"}, 400, "limit"),
        ("GET", "/v1/workflows", {"limit": "many"}, 400, "limit"),
        ("GET", "/v1/nothing-here", None, 404, ""),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(
    daemon: DaemonProc,
    method: str,
    path: str,
    params: dict[str, str] | None,
    status: int,
    words: str,
) -> None:
    with pytest.raises(ApiError) as err:
        daemon.client.call(method, path, params=params)
    assert err.value.status == status
    assert words in str(err.value).lower()


def test_state_conflicts_are_409(daemon: DaemonProc) -> None:
    wf = daemon.submit("name: quick\njobs:\n  a: {run: 'true'}\n")
    daemon.wait_final(wf)
    for action in ("cancel", "retry"):
        with pytest.raises(ApiError) as err:
            daemon.client.call("POST", path_of("workflows", wf, action))
        assert err.value.status == 409
    with pytest.raises(ApiError) as err:
        daemon.client.call(
            "GET", path_of("workflows", wf, "jobs", "a", "log"), params={"attempt": 2}
        )
    assert err.value.status == 404


def test_log_from_an_offset_and_events_as_sse(daemon: DaemonProc) -> None:
    wf = daemon.submit("name: log\njobs:\n  a: {run: 'echo hello; echo world'}\n")
    daemon.wait_final(wf)
    rest = b"".join(
        daemon.client.stream(path_of("workflows", wf, "jobs", "a", "log"), {"offset": 6})
    )
    assert rest == b"world\n"
    lines = [
        json.loads(x)
        for x in daemon.client.stream_lines(path_of("workflows", wf, "events"))
        if x.strip()
    ]
    assert [e["seq"] for e in lines] == sorted(e["seq"] for e in lines)
    assert lines[0]["kind"] == "workflow.submitted" and lines[-1]["kind"] == "workflow.state"
    since = lines[2]["seq"]
    later = [
        json.loads(x)
        for x in daemon.client.stream_lines(path_of("workflows", wf, "events"), {"since": since})
        if x.strip()
    ]
    assert [e["seq"] for e in later] == [e["seq"] for e in lines[3:]]
    # the same events as Server-Sent Events for a browser
    sse = b"".join(
        daemon.client.stream(
            path_of("workflows", wf, "events"), headers={"Accept": "text/event-stream"}
        )
    ).decode()
    blocks = [b for b in sse.split("\n\n") if b]
    assert [b.splitlines()[0] for b in blocks] == [f"id: {e['seq']}" for e in lines]
    assert [json.loads(b.splitlines()[1].removeprefix("data: ")) for b in blocks] == lines


def test_workflow_found_by_name_is_the_newest(daemon: DaemonProc) -> None:
    first = daemon.submit("name: same\njobs:\n  a: {run: 'true'}\n")
    daemon.wait_final(first)
    second = daemon.submit("name: same\njobs:\n  a: {run: 'true'}\n")
    daemon.wait_final(second)
    assert daemon.status("same")["id"] == second
    assert daemon.status(first)["id"] == first


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(str.encode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_random_bodies_never_crash_the_daemon(daemon: DaemonProc, body: bytes) -> None:
    client = Client(daemon.socket, timeout=30)
    try:
        client.call("POST", "/v1/validate", body=body)
    except ApiError as err:
        assert 400 <= err.status < 500, err
    assert client.ping() is not None


def test_status_with_only_some_job_fields(daemon: DaemonProc) -> None:
    wf = daemon.submit("name: few\njobs:\n  a: {run: 'true'}\n  b: {needs: [a], run: 'true'}\n")
    daemon.wait_final(wf)
    full = daemon.client.call("GET", path_of("workflows", wf))
    slim = daemon.client.call("GET", path_of("workflows", wf), params={"fields": "name,state"})
    assert slim["jobs"] == [{"name": j["name"], "state": j["state"]} for j in full["jobs"]]
    assert slim["state"] == full["state"] == "succeeded"
    with pytest.raises(ApiError) as err:
        daemon.client.call("GET", path_of("workflows", wf), params={"fields": "name,pid"})
    assert err.value.status == 400
    assert "unknown job fields ['pid']" in str(err.value)


def test_status_as_rows_of_named_fields(daemon: DaemonProc) -> None:
    wf = daemon.submit("name: rows\njobs:\n  a: {run: 'exit 4'}\n  b: {run: 'true'}\n")
    daemon.wait_final(wf)
    shaped = daemon.client.call(
        "GET", path_of("workflows", wf), params={"fields": "state,name,exit_code", "rows": True}
    )
    assert shaped["job_fields"] == ["state", "name", "exit_code"]
    assert shaped["jobs"] == [["failed", "a", 4], ["succeeded", "b", 0]]
    with pytest.raises(ApiError) as err:
        daemon.client.call("GET", path_of("workflows", wf), params={"rows": True})
    assert err.value.status == 400 and "rows needs fields" in str(err.value)


def test_progress_is_still_seen_after_a_logs_f_of_the_job_ends(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    # The engine and `logs -f` watch the same run directory; a follower that
    # left once took the engine's watch with it, and progress stopped until exit.
    go, end = tmp_path / "go", tmp_path / "end"
    wait = "while [ ! -e {} ]; do sleep 0.02; done"
    run = (
        f"echo '::ccd progress=10'; {wait.format(go)}; echo '::ccd progress=60'; {wait.format(end)}"
    )
    wf = daemon.submit(f"name: two-readers\njobs:\n  a: {{run: {json.dumps(run)}, timeout: 30s}}\n")
    daemon.wait_for_event(wf, lambda e: e["data"].get("progress") == 10)
    log = daemon.client.stream(path_of("workflows", wf, "jobs", "a", "log"), {"follow": True})
    assert next(log) == b"::ccd progress=10\n"
    log.close()  # the client hangs up while the job runs on
    go.touch()
    seen = daemon.wait_for_event(
        wf, lambda e: e["data"].get("progress") == 60 or e["data"].get("state") == "timed_out"
    )
    end.touch()
    assert seen["data"].get("progress") == 60
    assert daemon.wait_final(wf)["state"] == "succeeded"


def test_docs_work_offline_and_take_the_documented_upload(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    page = b"".join(daemon.client.stream("/docs")).decode()
    assert "http://" not in page and "https://" not in page, page
    for url in re.findall(r"""(?:src|href)="(/[^"]+)"|url: '(/[^']+)'""", page):
        assert b"".join(daemon.client.stream(url[0] or url[1])), url
    # a script next to the file, found through ?source= as "Try it out" sends it
    (tmp_path / "hello.sh").write_text("echo hello\n")
    body = daemon.client.call("GET", "/openapi.json")["paths"]["/v1/workflows"]["post"]
    media = next(iter(body["requestBody"]["content"]))
    answer = daemon.client.call(
        "POST",
        "/v1/workflows",
        params={"source": str(tmp_path / "wf.yaml")},
        body=b"name: docs\njobs:\n  a: {script: hello.sh}\n",
        headers={"Content-Type": media},
    )
    assert daemon.wait_final(answer["id"])["state"] == "succeeded"
    with pytest.raises(ApiError) as err:
        daemon.client.call(
            "POST", "/v1/workflows", body=b"name: x\njobs:\n  a: {script: hello.sh}\n"
        )
    assert err.value.status == 422 and "?source=" in str(err.value)
