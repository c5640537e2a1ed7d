"""Local resource slots (#18 A4) in a real daemon: a local job that asks for GPUs sees
the devices it holds in CUDA_VISIBLE_DEVICES (fake device ids: no GPU is needed), a job
asking for more than the host has is refused at submit, and after a restart a running
job keeps its device."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ccd.cli.client import ApiError
from tests.conftest import DaemonProc

CONFIG = "hosts:\n  localhost:\n    gpus: [0, 1]\n"


def running(job: str) -> Callable[[dict[str, object]], bool]:
    def check(event: dict[str, object]) -> bool:
        data = event["data"]
        assert isinstance(data, dict)
        return event["kind"] == "job.state" and event["job"] == job and data["state"] == "running"

    return check


def test_a_local_job_sees_the_gpus_it_holds(daemon_factory: Callable[..., DaemonProc]) -> None:
    d = daemon_factory(CONFIG)
    d.start()
    wf = d.submit(
        textwrap.dedent("""
        name: gpus
        jobs:
          one:
            resources: {gpus: 1}
            run: 'echo "$CUDA_VISIBLE_DEVICES $CCD_GPUS"'
          both:
            needs: [one]
            resources: {gpus: 2}
            run: 'echo "$CUDA_VISIBLE_DEVICES $CCD_GPUS"'
          none:
            run: 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"'
    """)
    )
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert d.log_of(wf, "one") == "0 0\n"
    assert d.log_of(wf, "both") == "0,1 0,1\n"
    assert d.log_of(wf, "none") == "[unset]\n"
    with pytest.raises(ApiError, match="job 'big' asks for gpus: 4, but host 'localhost' has 2"):
        d.submit("jobs:\n  big: {run: 'true', resources: {gpus: 4}}\n")


def test_after_a_restart_a_running_job_keeps_its_gpu(
    daemon_factory: Callable[..., DaemonProc], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    d = daemon_factory(CONFIG)
    d.start()
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    first = d.submit(
        textwrap.dedent(f"""
        jobs:
          holder:
            resources: {{gpus: 1}}
            run: 'echo "$CUDA_VISIBLE_DEVICES"; {wait}'
    """)
    )
    d.wait_for_event(first, running("holder"))
    d.stop(signal.SIGKILL)  # the job runs on, holding device 0
    d.start()
    second = d.submit(
        textwrap.dedent("""
        jobs:
          next:
            resources: {gpus: 1}
            run: 'echo "$CUDA_VISIBLE_DEVICES"'
    """)
    )
    assert d.wait_final(second)["state"] == "succeeded"
    assert d.log_of(second, "next") == "1\n"
    gate.touch()
    assert d.wait_final(first)["state"] == "succeeded"
    assert d.log_of(first, "holder") == "0\n"


def test_validate_refuses_what_submit_would(
    daemon_factory: Callable[..., DaemonProc], tmp_path: Path
) -> None:
    d = daemon_factory(CONFIG)
    d.start()
    spec = tmp_path / "big.yaml"
    spec.write_text("name: big\njobs:\n  huge: {resources: {gpus: 3}, run: 'true'}\n")
    with pytest.raises(ApiError) as err:
        d.client.call("POST", "/v1/validate", body=spec.read_bytes())
    assert "asks for gpus: 3" in str(err.value)
    # ccctl validate reads the same daemon config (CCD_CONFIG), no daemon needed
    done = subprocess.run(
        [sys.executable, "-m", "ccd.cli", "validate", str(spec)],
        env={**os.environ, **d.env, "CCD_CONFIG": str(tmp_path / "ccd.yaml")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"{spec}: job 'huge' asks for gpus: 3")
