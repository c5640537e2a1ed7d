"""``container:`` jobs in a real podman, through a real daemon.

The image is made here, offline: a busybox root filesystem imported with
``podman import`` (the machines reach no registry). Podman runs as root (CI runs
as root); this machine's kernel refuses the resource limits podman sets by
default and crun's cgroup handling, so the test's ``containers.conf`` picks
runc and lower limits -- configuration of this machine, not of ccd, which
calls ``podman run`` the same everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProc

NEEDED = ("podman", "runc", "busybox")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
"""


@pytest.fixture(scope="module")
def podman_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """An image with busybox's sh and tools, and the containers.conf to run it with."""
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"install {' '.join(missing)} (tests/run-all.sh does): podman runs these tests")
    work = tmp_path_factory.mktemp("image")
    rootfs = work / "rootfs.tar"
    busybox = Path(shutil.which("busybox") or "")
    with tarfile.open(rootfs, "w") as tar:
        for name in ("bin", "tmp", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        for tool in ("sh", "cat", "echo", "pwd", "sleep", "env", "ls"):
            link = tarfile.TarInfo(f"bin/{tool}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    tag = f"localhost/ccd-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}:1"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    subprocess.run(["podman", "import", str(rootfs), tag], check=True, env=env, capture_output=True)
    return tag, conf


@pytest.fixture
def podman_daemon(
    daemon_factory: Callable[..., DaemonProc], podman_image: tuple[str, Path]
) -> DaemonProc:
    d = daemon_factory("kill_grace: 2\nhosts:\n  localhost:\n    runtime: podman\n")
    d.env["CONTAINERS_CONF"] = str(podman_image[1])
    d.start()
    return d


def test_a_container_job_sees_its_workdir_run_dir_script_and_variables(
    podman_daemon: DaemonProc, podman_image: tuple[str, Path], tmp_path: Path
) -> None:
    tag = podman_image[0]
    (tmp_path / "data.txt").write_text("from the workdir\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "step.sh").write_text('echo "script in $(pwd)"; echo art > "$CCD_RUN_DIR/art"\n')
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent(f"""
        name: boxed
        defaults: {{container: "{tag}"}}
        jobs:
          read:
            env: {{GREETING: "hi from $CCD_JOB"}}
            run: 'cat data.txt; echo "$GREETING"; ls /bin/busybox; echo "::ccd output k=v"'
          step:
            needs: [read]
            script: scripts/step.sh
          show:
            needs: [read]
            run: 'echo "${{{{ jobs.read.outputs.k }}}}"'
    """)
    )
    wf = podman_daemon.submit(spec.read_text(), source=spec)
    status = podman_daemon.wait_final(wf)
    logs = {job: podman_daemon.log_of(wf, job) for job in ("read", "step", "show")}
    assert status["state"] == "succeeded", logs
    assert logs["read"] == "from the workdir\nhi from read\n/bin/busybox\n::ccd output k=v\n"
    assert logs["step"] == f"script in {tmp_path}\n"
    assert logs["show"] == "v\n"
    step_dir = Path(podman_daemon.client.call("GET", f"/v1/workflows/{wf}/jobs/step")["run_dir"])
    assert (step_dir / "art").read_text() == "art\n"


def test_cancelling_a_container_job_stops_its_container(
    podman_daemon: DaemonProc, podman_image: tuple[str, Path]
) -> None:
    wf = podman_daemon.submit(
        textwrap.dedent(f"""
        name: boxed-long
        jobs:
          long: {{container: "{podman_image[0]}", run: 'echo started; exec sleep 300'}}
    """)
    )
    for chunk in podman_daemon.client.stream(f"/v1/workflows/{wf}/jobs/long/log", {"follow": True}):
        if b"started" in chunk:
            break
    podman_daemon.client.call("POST", f"/v1/workflows/{wf}/cancel")
    assert podman_daemon.wait_final(wf)["state"] == "cancelled"
    env = {**os.environ, "CONTAINERS_CONF": str(podman_image[1])}
    running = subprocess.run(
        ["podman", "ps", "-q", "--filter", f"ancestor={podman_image[0]}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert running.stdout.strip() == ""
