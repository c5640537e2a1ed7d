"""--resume with a job on an SSH host (a real sshd): its inputs are read on the host,
by content or by modification time, and a deleted output file there makes it run."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from pytest import FixtureRequest

from tests.conftest import DaemonProc
from tests.integration.test_ssh import MakeDaemon, host_yaml, remote_daemon
from tests.integration.test_unknown import ccctl
from tests.sshd import SshHost


def _submit(daemon: DaemonProc, wf: Path) -> str:
    done = ccctl(daemon, "submit", str(wf), "--json")
    assert done.returncode == 0, done.stderr
    workflow_id = str(json.loads(done.stdout)["id"])
    status = daemon.wait_final(workflow_id)
    assert status["state"] == "succeeded", [(j["name"], j["reason"]) for j in status["jobs"]]
    return workflow_id


def test_remote_inputs_and_outputs_decide_reuse(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost, request: FixtureRequest
) -> None:
    daemon = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host))
    # the host's user is not the test's, and pytest's directories are private
    share = Path(tempfile.mkdtemp(prefix="ccd-resume-"))
    os.chmod(share, 0o777)
    request.addfinalizer(lambda: shutil.rmtree(share, ignore_errors=True))
    data, model, ledger = share / "data.csv", share / "model.bin", share / "ledger"
    data.write_text("1,2\n")
    os.chmod(data, 0o666)
    wf = tmp_path / "remote.yaml"
    wf.write_text(
        "name: remote-resume\nresume: true\njobs:\n"
        f"  bytes: {{host: remote, workdir: {share}, inputs: [data.csv],"
        f" outputs_files: [model.bin], run: 'echo bytes >> ledger; echo w > model.bin'}}\n"
        f"  times: {{host: remote, workdir: {share}, inputs: [data.csv], cache: mtime,"
        " run: 'echo times >> ledger'}\n"
    )
    _submit(daemon, wf)
    second = _submit(daemon, wf)
    assert sorted(ledger.read_text().split()) == ["bytes", "times"]
    assert all(j["reason"].startswith("cached from") for j in daemon.jobs(second).values())
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    _submit(daemon, wf)
    assert sorted(ledger.read_text().split()) == ["bytes", "times", "times"]
    model.unlink()
    fourth = _submit(daemon, wf)
    assert sorted(ledger.read_text().split()) == ["bytes", "bytes", "times", "times"]
    why = ccctl(daemon, "why", fourth, "bytes", "--json")
    assert f"output file {model}" in json.loads(why.stdout)["summary"]
