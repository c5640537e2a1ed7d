"""Remote jobs over SSH against real sshd processes (tests/sshd.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProc, proc_alive
from tests.sshd import SshHost

MakeDaemon = Callable[..., DaemonProc]


def host_yaml(name: str, host: SshHost, **extra: object) -> str:
    fields = {
        "hostname": host.address,
        "port": host.port,
        "user": host.user,
        "identity_file": str(host.identity_file),
        "known_hosts": str(host.known_hosts),
        "keepalive_interval": 1,
        "keepalive_count_max": 3,
        "connect_timeout": 5,
        "poll_interval": 0.2,
        **extra,
    }
    body = "".join(f"      {k}: {v}\n" for k, v in fields.items())
    return f"  {name}:\n    " + body.strip().replace("\n      ", "\n    ") + "\n"


def remote_daemon(
    daemon_factory: MakeDaemon, tmp_path: Path, hosts: str, ssh_config: str = ""
) -> DaemonProc:
    config_file = tmp_path / "ssh_config"
    config_file.write_text(ssh_config)
    d = daemon_factory(f"ssh_config: {config_file}\nkill_grace: 2\nhosts:\n{hosts}")
    d.start()
    return d


@pytest.fixture
def remote(daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost) -> DaemonProc:
    return remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host, max_jobs=250))


def test_remote_job_runs_as_the_user_and_streams_markers(remote: DaemonProc) -> None:
    wf = remote.submit(
        textwrap.dedent("""
        name: remote-basic
        jobs:
          hello:
            host: remote
            run: |
              echo "user=$(id -un) dir=$(pwd) rundir=$CCD_RUN_DIR"
              echo "::ccd progress=50 msg=\\"half way\\""
              echo "::ccd output answer=42"
    """)
    )
    status = remote.wait_final(wf)
    job = status["jobs"][0]
    assert (status["state"], job["state"], job["exit_code"]) == ("succeeded", "succeeded", 0)
    assert (job["progress"], job["message"], job["outputs"]) == (50, "half way", {"answer": "42"})
    assert job["executor"] == "ssh" and job["handle"]["host"] == "remote"
    log = remote.log_of(wf, "hello")
    assert log.startswith("user=ccdtest dir=/home/ccdtest rundir=/home/ccdtest/.ccd/runs/")


def test_200_jobs_at_once_on_a_host_with_max_sessions_10(remote: DaemonProc) -> None:
    jobs = "\n".join(f"  j{i}: {{host: remote, run: 'sleep 1; echo job {i}'}}" for i in range(200))
    wf = remote.submit(f"name: many\njobs:\n{jobs}\n")
    status = remote.wait_final(wf)
    assert status["state"] == "succeeded", [j for j in status["jobs"] if j["state"] != "succeeded"][
        :3
    ]
    running, peak = 0, 0
    for event in remote.events(wf):
        if event["kind"] == "job.state" and event["data"]["state"] == "running":
            running += 1
        elif event["kind"] == "job.state" and event["data"]["state"] == "succeeded":
            running -= 1
        peak = max(peak, running)
    assert peak > 10, "jobs must run beyond MaxSessions at once: no channel per job"
    assert remote.log_of(wf, "j199") == "job 199\n"


def test_alias_from_ssh_config_through_a_proxy_jump(
    daemon_factory: MakeDaemon, tmp_path: Path, sshd_factory: Callable[..., SshHost]
) -> None:
    bastion = sshd_factory()
    inner = sshd_factory()
    config = bastion.ssh_config_entry("bastion") + inner.ssh_config_entry(
        "inner", proxy_jump="bastion"
    )
    d = remote_daemon(daemon_factory, tmp_path, "  localhost: {}\n", ssh_config=config)
    wf = d.submit("name: jump\njobs:\n  j: {host: inner, run: 'echo via $SSH_CONNECTION'}\n")
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    # the inner sshd saw the connection come from the bastion's tunnel, not from us directly
    assert d.log_of(wf, "j").startswith("via ")
    assert "inner" in d.status(wf)["jobs"][0]["host"]


def test_unknown_host_key_fails_at_once_with_the_fix(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost
) -> None:
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host, known_hosts=empty))
    wf = d.submit("name: hk\njobs:\n  j: {host: remote, run: 'true'}\n")
    job = d.wait_final(wf)["jobs"][0]
    assert job["state"] == "failed"
    assert "host key" in job["reason"] and "ssh-keyscan" in job["reason"]


def test_changed_host_key_is_refused(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost
) -> None:
    ssh_host.regenerate_host_key()  # the known_hosts file still holds the old key
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host))
    wf = d.submit("name: hk2\njobs:\n  j: {host: remote, run: 'true'}\n")
    job = d.wait_final(wf)["jobs"][0]
    assert job["state"] == "failed" and "host key" in job["reason"]


def test_wrong_key_fails_with_an_authentication_reason(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost
) -> None:
    import asyncssh

    other = tmp_path / "other_key"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    other.chmod(0o600)
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host, identity_file=other))
    wf = d.submit("name: auth\njobs:\n  j: {host: remote, run: 'true'}\n")
    job = d.wait_final(wf)["jobs"][0]
    assert job["state"] == "failed" and "authentication" in job["reason"]


def test_cancel_kills_the_remote_process_tree(remote: DaemonProc, tmp_path: Path) -> None:
    pids = Path(f"/tmp/ccd-test-pids-{os.getpid()}-{tmp_path.name}")
    wf = remote.submit(
        textwrap.dedent(f"""
        name: remote-cancel
        jobs:
          tree:
            host: remote
            run: |
              rm -f {pids}
              sh -c 'echo $$ >> {pids}; exec sleep 300' &
              sh -c 'sh -c "echo \\$\\$ >> {pids}; exec sleep 300"' &
              sleep 0.2; echo started
              wait
    """)
    )
    remote.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running"
    )
    text = ""
    for chunk in remote.client.stream(f"/v1/workflows/{wf}/jobs/tree/log", {"follow": True}):
        text += chunk.decode()
        if "started" in text and pids.exists() and len(pids.read_text().split()) == 2:
            break
    grandchildren = [int(p) for p in pids.read_text().split()]
    remote.client.call("POST", f"/v1/workflows/{wf}/cancel")
    job = remote.wait_final(wf)["jobs"][0]
    assert job["state"] == "cancelled"
    assert not any(proc_alive(p) for p in grandchildren)
    pids.unlink()


def test_remote_timeout(remote: DaemonProc) -> None:
    wf = remote.submit("name: rt\njobs:\n  slow: {host: remote, run: 'sleep 300', timeout: 1s}\n")
    job = remote.wait_final(wf)["jobs"][0]
    assert job["state"] == "timed_out"
    assert not proc_alive(job["handle"]["pid"])


def test_local_and_remote_jobs_pass_outputs(remote: DaemonProc, tmp_path: Path) -> None:
    script = tmp_path / "square.py"
    script.write_text("import sys\nn = int(sys.argv[1])\nprint(f'::ccd output square={n * n}')\n")
    spec = tmp_path / "mixed.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: mixed
        jobs:
          here: {run: 'echo "::ccd output n=7"'}
          there:
            needs: [here]
            host: remote
            run: 'echo "::ccd output got=${{ jobs.here.outputs.n }}"; echo "::ccd output who=$(id -un)"'
          script-there:
            needs: [here]
            host: remote
            script: square.py
            args: ["12"]
          back-here:
            needs: [there, script-there]
            run: 'echo "${{ jobs.there.outputs.got }} ${{ jobs.there.outputs.who }} ${{ jobs.script-there.outputs.square }}"'
    """)
    )
    wf = remote.submit(spec.read_text(), source=spec)
    status = remote.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert remote.log_of(wf, "back-here") == "7 ccdtest 144\n"


def test_sshd_killed_mid_job_loses_no_line(remote: DaemonProc, ssh_host: SshHost) -> None:
    wf = remote.submit(
        textwrap.dedent("""
        name: survive-sshd
        jobs:
          counter:
            host: remote
            run: 'for i in $(seq 1 40); do echo "line $i"; sleep 0.1; done'
    """)
    )
    remote.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running"
    )
    ssh_host.stop()
    ssh_host.kill_sessions()  # the daemon's connection dies with its session
    remote.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "unreachable"
    )
    ssh_host.start()
    status = remote.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert remote.log_of(wf, "counter") == "".join(f"line {i}\n" for i in range(1, 41))


def states_of(d: DaemonProc, wf: str) -> dict[str, Any]:
    return {j["name"]: j["state"] for j in d.status(wf)["jobs"]}


def ccctl(d: DaemonProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccd.cli", *args],
        env={**os.environ, **d.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_hosts_ls_and_check(
    daemon_factory: MakeDaemon, tmp_path: Path, sshd_factory: Callable[..., SshHost]
) -> None:
    good = sshd_factory()
    bad = sshd_factory()
    empty = tmp_path / "nothing_known"
    empty.write_text("")
    d = remote_daemon(
        daemon_factory,
        tmp_path,
        host_yaml("good", good) + host_yaml("bad", bad, known_hosts=empty),
        ssh_config=good.ssh_config_entry("aliased"),
    )
    listing = json.loads(ccctl(d, "hosts", "ls", "--json").stdout)
    assert {h["name"] for h in listing} == {"localhost", "good", "bad", "aliased"}
    ok = ccctl(d, "hosts", "check", "good", "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)[0]
    assert report["usable"] and report["user"] == "ccdtest" and report["auth"] == "publickey"
    assert report["workdir"] == "/home/ccdtest/.ccd/runs" and report["workdir_writable"]
    assert report["python"].startswith("Python 3")
    assert report["sbatch"] is (shutil.which("sbatch") is not None)  # same machine here
    assert report["rtt_ms"] > 0
    human = ccctl(d, "hosts", "check", "aliased")
    assert human.returncode == 0 and "aliased: ok" in human.stdout
    refused = ccctl(d, "hosts", "check", "bad", "good")
    assert refused.returncode == 1
    assert "bad: NOT usable: host key" in refused.stdout and "good: ok" in refused.stdout
    unknown = ccctl(d, "hosts", "check", "nowhere")
    assert unknown.returncode == 1 and "unknown host 'nowhere'" in unknown.stderr


def test_host_setup_lines_and_python_apply_to_remote_jobs(
    daemon_factory: MakeDaemon, tmp_path: Path, ssh_host: SshHost
) -> None:
    setup = '["export FROM_SETUP=loaded", "cd /tmp"]'
    d = remote_daemon(
        daemon_factory,
        tmp_path,
        host_yaml(
            "remote", ssh_host, setup=setup, python="/usr/bin/python3", workdir="~/custom-runs"
        ),
    )
    script = tmp_path / "which.py"
    script.write_text("import os, sys\nprint(sys.executable, os.environ['FROM_SETUP'])\n")
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        "name: setup\njobs:\n  py: {host: remote, script: which.py}\n"
        "  sh: {host: remote, run: 'echo $FROM_SETUP $(pwd) $CCD_RUN_DIR'}\n"
    )
    wf = d.submit(spec.read_text(), source=spec)
    assert d.wait_final(wf)["state"] == "succeeded"
    assert d.log_of(wf, "py") == "/usr/bin/python3 loaded\n"
    # setup ran first, then the job entered its workdir (the remote home by default)
    assert d.log_of(wf, "sh").startswith(
        f"loaded /home/ccdtest /home/ccdtest/custom-runs/{wf}/sh/1"
    )
