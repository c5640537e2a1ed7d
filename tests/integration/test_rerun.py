"""ccctl rerun through a real daemon: a succeeded job runs again, with --downstream
what needs it, the rest is kept (a ledger counts every run)."""

from __future__ import annotations

from pathlib import Path

from ccd import Client
from tests.conftest import DaemonProc
from tests.integration.test_unknown import ccctl


def test_rerun_with_and_without_downstream(daemon: DaemonProc, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    step = f'echo "$CCD_JOB $CCD_ATTEMPT" >> {ledger}'
    wf = daemon.submit(
        f"name: chain\njobs:\n  a: {{run: '{step}'}}\n  b: {{needs: [a], run: '{step}'}}\n"
        f"  c: {{needs: [b], run: '{step}'}}\n"
    )
    daemon.wait_final(wf)
    done = ccctl(daemon, "rerun", wf, "b")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"rerunning 1 job(s) of {wf}: b\n"
    assert daemon.wait_final(wf)["state"] == "succeeded"
    again = Client(daemon.socket).rerun(wf, "b", downstream=True)
    assert again.retried == ["b", "c"]
    assert daemon.wait_final(wf)["state"] == "succeeded"
    assert ledger.read_text().splitlines() == ["a 1", "b 1", "c 1", "b 2", "b 3", "c 2"]
    missing = ccctl(daemon, "rerun", wf, "nope")
    assert missing.returncode == 1 and "has no job 'nope'" in missing.stderr
