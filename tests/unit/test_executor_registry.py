"""The executor registry: remote executors (and asyncssh) only once a job needs one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccd.config import DaemonConfig
from ccd.executors.filewatch import FileWatcher
from ccd.executors.local import LocalExecutor
from ccd.executors.registry import Executors
from ccd.spec.model import ExecutorKind


def test_the_daemon_and_its_api_do_not_import_asyncssh() -> None:
    # a new interpreter: this test process may have imported asyncssh already
    code = "import sys, ccd.daemon.server, ccd.api; print(sorted(m for m in sys.modules if m.startswith(('asyncssh', 'ccd.executors.ssh'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_every_kind_is_supported_but_only_local_exists_until_asked(tmp_path: Path) -> None:
    executors = Executors(DaemonConfig(state_dir=tmp_path), FileWatcher())
    assert set(executors) == set(ExecutorKind) and len(executors) == len(ExecutorKind)
    assert all(kind in executors for kind in ExecutorKind) and "local" in executors
    assert "nonsense" not in executors
    assert isinstance(executors[ExecutorKind.LOCAL], LocalExecutor)
    assert executors._made.keys() == {ExecutorKind.LOCAL}
    ssh = executors[ExecutorKind.SSH]
    assert executors.ssh is ssh  # one SSH executor: Slurm over SSH shares its links
    slurm = executors[ExecutorKind.SLURM]
    assert executors[ExecutorKind.SLURM] is slurm
    await executors.close()


def test_an_unknown_kind_is_a_key_error(tmp_path: Path) -> None:
    executors = Executors(DaemonConfig(state_dir=tmp_path), FileWatcher())
    with pytest.raises(KeyError):
        executors["nonsense"]  # type: ignore[index]
