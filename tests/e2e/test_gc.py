"""`ccctl gc`: old finished workflows go (rows, events, run directories here and on
an SSH host) and the database shrinks; recent and running workflows stay.

The workflows really run on a real daemon and a real sshd; "40 days ago" is made
by moving the finished workflow's end time back while the daemon is stopped.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import textwrap
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.conftest import DaemonProc
from tests.e2e.conftest import DEADLINE, Ccctl
from tests.integration.test_ssh import host_yaml, remote_daemon
from tests.sshd import SshHost

pytestmark = pytest.mark.timeout(4 * DEADLINE)

DAY = 86400
OUTPUTS = 2000  # events enough that deleting them visibly shrinks the database


def db_bytes(d: DaemonProc) -> int:
    db = d.state_dir / "ccd.db"
    return sum(os.stat(p).st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def age(d: DaemonProc, wf: str, days: int) -> None:
    """Move the finished workflow's end back by `days` (the daemon is stopped)."""
    db = sqlite3.connect(d.state_dir / "ccd.db")
    with db:
        db.execute("UPDATE workflows SET ended = ended - ? WHERE id = ?", (days * DAY, wf))
    db.close()


def test_gc_deletes_old_finished_workflows_here_and_on_the_host(
    ccctl: Ccctl, daemon_factory: Any, tmp_path: Path, ssh_host: SshHost
) -> None:
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host))
    gate = tmp_path / "gate"
    old = d.submit(
        textwrap.dedent(f"""
        name: old
        jobs:
          here: {{run: 'i=0; while [ $i -lt {OUTPUTS} ]; do echo "::ccd output k$i=$(printf %0200d $i)"; i=$((i+1)); done'}}
          there: {{host: remote, run: 'echo remote'}}
    """)
    )
    recent = d.submit("name: recent\njobs:\n  a: {run: 'echo recent'}\n")
    assert d.wait_final(old)["state"] == "succeeded"
    assert d.wait_final(recent)["state"] == "succeeded"
    live = d.submit(
        f"name: live\njobs:\n  a: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
    )
    d.wait_for_event(live, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running")
    remote_dir = PurePosixPath(d.jobs(old)["there"]["handle"]["run_dir"]).parent.parent
    assert remote_dir.name == old and Path(remote_dir).is_dir()  # sshd runs on this machine
    runs = d.state_dir / "runs"
    events = len(d.events(old))
    assert events > OUTPUTS
    d.stop()
    age(d, old, 40)
    age(d, live, 40)  # no end time: a running workflow is never old enough
    d.start()

    dry = ccctl("gc", "--older-than", "30d", "--dry-run")
    assert dry.code == 0, dry
    assert dry.lines[0].startswith("would delete 1 workflow(s) that ended before ")
    assert old in dry.lines[1] and "succeeded" in dry.lines[1]
    assert "remote run directories: 1 on remote" in dry.out and "dry run" in dry.lines[-1]
    assert (runs / old).is_dir() and Path(remote_dir).is_dir()
    assert ccctl("status", old).code == 0

    before = db_bytes(d)
    done = ccctl("gc", "--older-than", "30d")
    assert done.code == 0, done
    assert done.lines[0].startswith("deleted 1 workflow(s)")
    assert f"{events} events" in done.lines[1], done
    assert done.lines[-1].startswith("freed ")
    # gone: rows and events, the local run directory, the remote one
    assert not (runs / old).exists()
    assert not Path(remote_dir).exists()
    gone = ccctl("status", old)
    assert gone.code == 1 and "no workflow" in gone.err, gone
    assert db_bytes(d) < before - 100_000
    # kept: the recent and the running workflow, with their run directories
    assert (runs / recent).is_dir() and (runs / live).is_dir()
    assert ccctl("status", recent).code == 0

    again = ccctl("gc", "--older-than", "30d", "--json")
    assert again.code == 0 and again.json()["workflows"] == [], again
    gate.touch()
    assert d.wait_final(live)["state"] == "succeeded"


def test_gc_refuses_a_bad_age(ccctl: Ccctl, daemon: DaemonProc) -> None:
    for bad, hint in (
        ("30", "give a unit, e.g. 30d"),
        ("3x", "invalid duration"),
        ("-1d", "negative"),
    ):
        result = ccctl("gc", "--older-than", bad)
        assert result.code == 2 and hint in result.err, result
    missing = ccctl("gc")
    assert missing.code == 2 and "--older-than" in missing.err, missing
    # the API says the same to clients that skip ccctl's own check
    with pytest.raises(Exception, match="give a unit") as info:
        daemon.client.call(
            "POST",
            "/v1/gc",
            body=b'{"older_than": "12"}',
            headers={"Content-Type": "application/json"},
        )
    assert getattr(info.value, "status", None) == 400
    daemon.stop(signal.SIGTERM)
