"""`ccctl export` and ``GET /v1/workflows/{ref}/spec``: the submitted workflow as
canonical YAML that validates and resubmits to the same workflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ccd.cli import wire
from ccd.cli.client import ApiError, path_of
from ccd.spec.validate import load_workflow_file
from tests.conftest import DaemonProc

WORKFLOW = """\
name: exported
concurrency: 3
defaults:
  timeout: 5m
  env: {SEED: "7"}
jobs:
  prepare:
    script: prepare.sh
    env: {ROWS: "10"}
  sweep:
    needs: prepare
    run: echo "::ccd output acc=$CCD_ARRAY_VALUE rows=${{ jobs.prepare.outputs.rows }}"
    array: [0.1, 0.2, 0.5]
    retries: 2
    retry_delay: 2s
  repeat:
    needs: [prepare]
    run: |
      echo "element $CCD_ARRAY_INDEX"
      echo done
    array: 2
    workdir: run
  report:
    needs: [sweep, repeat]
    run: echo "${{ jobs.sweep.outputs.acc }} ${{ jobs.sweep[1].outputs.acc }}"
"""


def ccctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccd.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def stored(daemon: DaemonProc, ref: str) -> dict[str, Any]:
    """The workflow as the daemon stores and runs it, without the file it came from."""
    spec: dict[str, Any] = daemon.client.call(
        "GET", path_of("workflows", ref, "spec"), params={"format": "json"}
    )
    spec.pop("source")
    return spec


@pytest.fixture
def submitted(daemon: DaemonProc, tmp_path: Path) -> str:
    (tmp_path / "prepare.sh").write_text("echo '::ccd output rows=10'\n")
    file = tmp_path / "wf.yaml"
    file.write_text(WORKFLOW)
    return daemon.submit(WORKFLOW, source=file)


def test_export_resubmits_to_the_same_workflow(
    daemon: DaemonProc, submitted: str, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere" / "exported.yaml"
    out.parent.mkdir()
    result = ccctl(daemon.env, "export", submitted, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out}\n"
    text = out.read_text()
    # arrays as written, not as their elements; defaults written into each job
    assert "array: ['0.1', '0.2', '0.5']" in text and "array: 2" in text
    assert "sweep[" not in text.replace("jobs.sweep[1]", "")
    assert "defaults" not in text and text.count("timeout: 300.0") == 4

    original = stored(daemon, submitted)
    checked = load_workflow_file(out).model_dump(mode="json")
    assert checked.pop("source") == str(out)
    assert checked == original

    again = ccctl(daemon.env, "submit", str(out), "--json")
    assert again.returncode == 0, again.stderr
    resubmitted = json.loads(again.stdout)["id"]
    assert resubmitted != submitted
    assert stored(daemon, resubmitted) == original
    # and its export is the same text
    assert ccctl(daemon.env, "export", resubmitted).stdout == text
    assert daemon.wait_final(resubmitted)["state"] == "succeeded"


def test_the_api_answers_yaml_and_the_cli_prints_it(daemon: DaemonProc, submitted: str) -> None:
    response = wire.request(daemon.socket, "GET", path_of("workflows", "exported", "spec"))
    try:
        assert response.status == 200
        assert response.headers["content-type"] == "application/yaml"
        body = response.read().decode()
    finally:
        response.close()
    printed = ccctl(daemon.env, "export", "exported")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == body
    assert body.startswith("name: exported\nconcurrency: 3\njobs:\n")

    with pytest.raises(ApiError) as missing:
        daemon.client.call("GET", path_of("workflows", "nope", "spec"))
    assert missing.value.status == 404
    assert missing.value.message == "no workflow with id or name 'nope' (see: ccctl ls)"
    refused = ccctl(daemon.env, "export", "nope")
    assert refused.returncode == 1
    assert refused.stderr == "ccctl: no workflow with id or name 'nope' (see: ccctl ls)\n"


def test_the_openapi_document_declares_the_spec_route(daemon: DaemonProc) -> None:
    document = daemon.client.call("GET", "/openapi.json")
    route = document["paths"]["/v1/workflows/{ref}/spec"]["get"]
    content = route["responses"]["200"]["content"]
    assert content["application/yaml"] == {"schema": {"type": "string"}}
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Workflow"}
    assert "jobs" in document["components"]["schemas"]["Workflow"]["properties"]
    (param,) = [p for p in route["parameters"] if p["name"] == "format"]
    assert param["schema"]["enum"] == ["yaml", "json"]
