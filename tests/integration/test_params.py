"""Submit-time parameters through a real daemon: ccctl submit --set, validate --set,
and Client.submit(params=)."""

from __future__ import annotations

import json
from pathlib import Path

from ccd import Client, Workflow
from tests.conftest import DaemonProc
from tests.integration.test_unknown import ccctl

FLOW = """\
name: params
params:
  epochs: 2
  tag: {type: str}
jobs:
  show: {run: 'echo "epochs=${{ params.epochs }} tag=${{ params.tag }} env=$CCD_PARAM_TAG"'}
"""


def test_ccctl_submit_set_gives_values_and_validate_checks_them(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    spec = tmp_path / "wf.yaml"
    spec.write_text(FLOW)
    missing = ccctl(daemon, "validate", str(spec))
    assert missing.returncode == 2 and "param tag has no default" in missing.stderr
    bad = ccctl(daemon, "submit", str(spec), "--set", "tag=x", "--set", "epochs=many")
    assert bad.returncode == 2, bad.stderr
    assert "param epochs is int: 'many' given at submit is not one" in bad.stderr
    ok = ccctl(daemon, "submit", str(spec), "--set", "tag=$(id)", "--set", "epochs=5", "--json")
    assert ok.returncode == 0, ok.stderr
    wf = json.loads(ok.stdout)["id"]
    assert daemon.wait_final(wf)["state"] == "succeeded"
    assert daemon.log_of(wf, "show") == "epochs=5 tag=$(id) env=$(id)\n"
    assert "params:\n  epochs: 5\n  tag: $(id)\n" in ccctl(daemon, "export", wf).stdout


def test_the_python_client_submits_with_params(daemon: DaemonProc) -> None:
    wf = Workflow("built", params={"n": 1, "who": {"type": "str"}})
    wf.job("hi", run="echo ${{ params.who }} x${{ params.n }}")
    client = Client(daemon.socket)
    ref = client.submit(wf, params={"who": "world", "n": 3})
    assert client.wait(ref).state == "succeeded"
    assert list(client.logs(ref, "hi")) == ["world x3"]
