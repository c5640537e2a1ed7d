"""Jobs added to a running workflow through a real daemon: ccctl add, the API and
the Python client; refused with 409 once it ended, with the problem's line on a cycle."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ccd import Client, Workflow
from ccd.cli.client import ApiError
from ccd.errors import CcdError
from tests.conftest import DaemonProc
from tests.integration.test_unknown import ccctl


def running(daemon: DaemonProc, tmp_path: Path) -> str:
    gate = tmp_path / "gate"
    return daemon.submit(
        textwrap.dedent(f"""
        name: grow
        jobs:
          first: {{run: 'echo "::ccd output v=one"'}}
          broken: {{run: 'exit 4'}}
          wait: {{run: 'while [ ! -f {gate} ]; do sleep 0.05; done'}}
    """)
    )


def test_ccctl_add_runs_new_jobs_on_old_ones_and_refuses_once_ended(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    wf = running(daemon, tmp_path)
    daemon.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["job"] == "broken"
        and e["data"]["state"] == "failed",
    )  # fmt: skip
    (tmp_path / "tool.sh").write_text('echo "tool saw $1"\n')
    more = tmp_path / "more.yaml"
    more.write_text(
        "jobs:\n"
        "  next: {needs: [first], script: tool.sh, args: ['${{ jobs.first.outputs.v }}']}\n"
        "  never: {needs: [broken], run: 'true'}\n"
        "  last: {needs: [wait, next], run: 'echo last'}\n"
    )
    done = ccctl(daemon, "add", wf, str(more))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"added 3 job(s) to {wf}: next, never, last\n"
    (tmp_path / "gate").touch()
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert (jobs["next"]["state"], jobs["never"]["state"], jobs["last"]["state"]) == (
        "succeeded", "skipped", "succeeded",
    )  # fmt: skip
    assert daemon.log_of(wf, "next") == "tool saw one\n"
    assert any(e["kind"] == "workflow.jobs_added" for e in daemon.events(wf))
    refused = ccctl(daemon, "add", wf, str(more))
    assert refused.returncode == 1
    assert f"workflow {wf} has ended" in refused.stderr and "ccctl retry" in refused.stderr


def test_the_api_locates_a_cycle_and_the_client_adds_built_jobs(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    wf = running(daemon, tmp_path)
    cycle = b"jobs:\n  a: {needs: [b], run: x}\n  b: {needs: [a], run: x}\n"
    with pytest.raises(ApiError) as err:
        daemon.client.call("POST", f"/v1/workflows/{wf}/jobs", body=cycle)
    assert err.value.status == 422
    assert [p["code"] for p in err.value.body["problems"]] == ["cycle"]
    built = Workflow("more")
    built.job("extra", needs=["first"], run="echo extra")
    client = Client(daemon.socket)
    assert client.add_jobs(wf, built).added == ["extra"]
    with pytest.raises(CcdError, match="has a job 'extra' already"):
        client.add_jobs(wf, built)
    (tmp_path / "gate").touch()
    status = client.wait(wf)
    assert {j.name: j.state for j in status.jobs}["extra"] == "succeeded"
