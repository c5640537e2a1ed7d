"""`Client` and `AsyncClient` against a real daemon: submit, list, status, follow logs
and events to their end, wait, cancel, retry, and the daemon's refusals as CcdError."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccd import AsyncClient, Client, Workflow
from ccd.errors import CcdError, DaemonUnreachable
from ccd.sdk.results import Event, WorkflowRef, WorkflowStatus
from tests.conftest import WAIT, DaemonProc, proc_alive

HERE = str(Path(__file__).resolve())


def counting(base_dir: Path, name: str = "sdk") -> Workflow:
    """Two jobs: one prints three lines with progress and an output, one uses it."""
    wf = Workflow(name, base_dir=base_dir)
    count = wf.job(
        "count",
        run='for i in 1 2 3; do echo "line $i"; echo "::ccd progress=$((i * 33))"; done; '
        'echo "::ccd output n=3"',
    )
    wf.job("report", needs=count, run=f"echo total {count.outputs['n']}")
    return wf


COUNT_LOG = [
    *(text for i in (1, 2, 3) for text in (f"line {i}", f"::ccd progress={i * 33}")),
    "::ccd output n=3",
]


def sleeping(base_dir: Path, name: str = "sleepy") -> Workflow:
    wf = Workflow(name, base_dir=base_dir)
    wf.job("slow", run="sleep 60")
    wf.job("quick", run="true")
    return wf


def until_running(events: Iterator[Event], job: str) -> None:
    for event in events:
        if event.kind == "job.state" and event.job == job and event.data["state"] == "running":
            return
    raise AssertionError(f"the workflow ended before {job} ran")


def test_submit_follow_and_wait(daemon: DaemonProc, tmp_path: Path) -> None:
    client = Client()  # found where ccctl finds it: $XDG_RUNTIME_DIR/ccd/ccd.sock
    assert client.socket_path == daemon.socket
    ref = client.submit(counting(tmp_path))
    assert isinstance(ref, WorkflowRef) and (ref.name, ref.jobs) == ("sdk", 2)

    # the log from before the job started to its attempt's end, markers and all
    assert list(client.logs(ref, "count", follow=True)) == COUNT_LOG
    events = list(client.events(ref, follow=True))
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[0].kind == "workflow.submitted"
    assert (events[-1].kind, events[-1].data["state"]) == ("workflow.state", "succeeded")
    progress = [e.data["progress"] for e in events if e.kind == "job.progress"]
    assert progress[-1] == 99  # (progress close together is sent as its latest value)

    final = client.wait(ref, timeout=WAIT)
    assert isinstance(final, WorkflowStatus) and final.final
    assert (final.id, final.state, final.source) == (ref.id, "succeeded", HERE)
    assert final.job("count").outputs == {"n": "3"}
    assert [j.name for j in final.jobs] == ["count", "report"]
    assert list(client.logs(ref, "report")) == ["total 3"]

    assert client.status(ref.id) == client.status("sdk")
    listed = client.ls()
    assert [(w.id, w.state, w.counts) for w in listed] == [(ref.id, "succeeded", {"succeeded": 2})]


def test_a_workflow_file_by_path_or_extended(
    daemon: DaemonProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hello.sh").write_text("echo hello from a script\n")
    file = tmp_path / "wf.yaml"
    file.write_text("name: by-path\njobs:\n  hello: {script: hello.sh}\n")
    client = Client(daemon.socket)
    ref = client.submit(file)
    assert client.wait(ref).state == "succeeded"
    assert list(client.logs(ref, "hello")) == ["hello from a script"]
    assert client.status(ref).source == str(file)

    monkeypatch.chdir(tmp_path)
    wf = Workflow.from_yaml("wf.yaml")  # a relative path: the script is still found
    wf.job("after", needs=wf.jobs["hello"], run="echo after")
    extended = client.wait(client.submit(wf))
    assert [(j.name, j.state) for j in extended.jobs] == [
        ("hello", "succeeded"),
        ("after", "succeeded"),
    ]
    assert extended.source == str(file)


def test_cancel_a_job_then_the_workflow_and_wait_with_a_timeout(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    client = Client(daemon.socket)
    ref = client.submit(sleeping(tmp_path))
    until_running(client.events(ref, follow=True), "slow")
    started = time.monotonic()
    with pytest.raises(
        CcdError, match=rf"workflow {ref.id} \(sleepy\) is still running after 0\.3s"
    ):
        client.wait(ref, timeout=0.3)
    assert time.monotonic() - started < 5

    cancelled = client.cancel(ref, job="slow")
    assert (cancelled.id, cancelled.cancelled) == (ref.id, "slow")
    final = client.wait(ref, timeout=WAIT)
    assert final.job("slow").state == "cancelled" and final.job("quick").state == "succeeded"

    other = client.submit(sleeping(tmp_path, "sleepy2"))
    until_running(client.events(other, follow=True), "slow")
    assert client.cancel(other).cancelled == "workflow"
    assert client.wait(other, timeout=WAIT).state == "cancelled"


def test_retry_runs_the_failed_job_again(daemon: DaemonProc, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    wf = Workflow("flag", base_dir=tmp_path)
    wf.job("check", run=f"test -f {flag}")
    client = Client(daemon.socket)
    ref = client.submit(wf)
    assert client.wait(ref).state == "failed"
    flag.touch()
    assert client.retry(ref).retried == ["check"]
    final = client.wait(ref)
    assert final.state == "succeeded" and final.job("check").attempt == 2


def test_the_daemon_s_refusals_are_ccd_errors_with_its_message(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    client = Client(daemon.socket)
    with pytest.raises(CcdError) as missing:
        client.status("nope")
    assert missing.value.message == "no workflow with id or name 'nope' (see: ccctl ls)"

    # hosts are the daemon's to check, against its own config
    wf = Workflow("far", base_dir=tmp_path)
    wf.job("a", run="true", host="faraway")
    with pytest.raises(CcdError, match="unknown host 'faraway'"):
        client.submit(wf)

    ref = client.submit(sleeping(tmp_path))
    with pytest.raises(CcdError, match=f"workflow {ref.id} is still running; wait for it"):
        client.retry(ref)
    client.cancel(ref)
    client.wait(ref)

    # a problem the builder finds never reaches the daemon: it points at the Python line
    bad = Workflow("bad", base_dir=tmp_path)
    bad.job("a", run="true", retries=-1)
    with pytest.raises(CcdError, match=rf"{HERE}:\d+:\d+: retries cannot be negative"):
        client.submit(bad)
    assert [w.name for w in client.ls()] == ["sleepy"]


def test_no_daemon_and_no_autostart_says_how_to_start_one(tmp_path: Path) -> None:
    client = Client(tmp_path / "none.sock", autostart=False)
    with pytest.raises(DaemonUnreachable, match=r"cannot reach the ccd daemon at .*none\.sock"):
        client.ls()


def test_a_client_starts_a_daemon_as_ccctl_does(
    ccd_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CCD_NO_AUTOSTART")
    client = Client()
    pid = None
    try:
        assert client.ls() == []
        health = client._client().call("GET", "/v1/health")
        pid = int(health["pid"])
        assert health["state_dir"] == str(Path(ccd_env["XDG_STATE_HOME"]) / "ccd")
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + WAIT
            while proc_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.01)  # waiting for another process to exit
            assert not proc_alive(pid)


async def test_the_async_client_does_the_same(daemon: DaemonProc, tmp_path: Path) -> None:
    async with AsyncClient() as client:
        assert client.socket_path == daemon.socket
        ref = await client.submit(counting(tmp_path, "async"))
        assert ref.name == "async"
        lines = [line async for line in client.logs(ref, "count", follow=True)]
        assert lines == COUNT_LOG
        events = [e async for e in client.events(ref, follow=True)]
        assert (events[-1].kind, events[-1].data["state"]) == ("workflow.state", "succeeded")
        final = await client.wait(ref, timeout=WAIT)
        assert final.state == "succeeded" and final.job("count").outputs == {"n": "3"}
        assert [line async for line in client.logs(ref, "report")] == ["total 3"]
        assert (await client.status("async")).id == ref.id
        assert [w.id for w in await client.ls()] == [ref.id]

        slow = await client.submit(sleeping(tmp_path))
        async for event in client.events(slow, follow=True):
            if (event.kind, event.job, event.data.get("state")) == ("job.state", "slow", "running"):
                break
        with pytest.raises(CcdError, match=r"still running after 0\.2s"):
            await client.wait(slow, timeout=0.2)
        with pytest.raises(CcdError, match="is still running; wait for it or cancel it"):
            await client.retry(slow)
        assert (await client.cancel(slow, job="slow")).cancelled == "slow"
        assert (await client.wait(slow)).job("slow").state == "cancelled"
        retried = await client.retry(slow)
        assert retried.retried == ["slow"]
        await client.cancel(slow)
        assert (await client.wait(slow)).state == "cancelled"

        with pytest.raises(CcdError) as missing:
            await client.status("nope")
        assert missing.value.message == "no workflow with id or name 'nope' (see: ccctl ls)"
        exported = await client.export(ref)
        assert exported.startswith("name: async\n")


async def test_the_async_client_without_a_daemon(tmp_path: Path) -> None:
    async with AsyncClient(tmp_path / "none.sock", autostart=False) as client:
        with pytest.raises(DaemonUnreachable, match="cannot reach the ccd daemon"):
            await client.ls()
        with pytest.raises(DaemonUnreachable, match="cannot reach the ccd daemon"):
            _ = [e async for e in client.events("x")]


def test_events_are_what_ccctl_events_json_prints(daemon: DaemonProc, tmp_path: Path) -> None:
    client = Client(daemon.socket)
    ref = client.submit(counting(tmp_path))
    client.wait(ref)
    raw = daemon.events(ref.id)
    assert [Event.from_json(json.loads(json.dumps(e))) for e in raw] == list(client.events(ref))
