"""The daemon's platform mechanisms: named, switchable, and as good as each other.

These run twice in CI: as they are, and with ``CCD_PLATFORM_FALLBACKS=all``
(tests/run-all.sh), where the first test checks that the switch reached the
daemon, so the second run does test the fallbacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from ccd.cli.client import path_of
from ccd.platform import FALLBACKS_ENV, parse_fallbacks
from tests.conftest import ROOT, WAIT, DaemonProc

FAST = {"exits": "pidfd", "files": "inotify", "processes": "procfs"}
PORTABLE = {"exits": "poll", "files": "re-read", "processes": "psutil"}


def expected(forced: frozenset[str]) -> dict[str, str]:
    names = {k: (PORTABLE[k] + " (forced)" if k in forced else v) for k, v in FAST.items()}
    return {**names, "service": "systemd"}


def test_the_daemon_names_the_mechanisms_the_switch_chose(daemon: DaemonProc) -> None:
    forced = parse_fallbacks(os.environ.get(FALLBACKS_ENV))
    health = daemon.client.call("GET", "/v1/health")
    assert health["platform"] == expected(forced)
    shown = subprocess.run(
        [sys.executable, "-m", "ccd.cli", "daemon", "status"],
        env={**os.environ, "CCD_SOCKET": str(daemon.socket)},
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )
    listed = ", ".join(f"{k} {v}" for k, v in expected(forced).items())
    assert f"\nplatform: {listed}\n" in shown.stdout, shown.stdout


def test_the_daemon_option_forces_what_it_names(daemon_factory: Any) -> None:
    d: DaemonProc = daemon_factory()
    d.args = ["--platform-fallbacks", "exits"]  # over the environment's switch
    d.start()
    assert d.client.call("GET", "/v1/health")["platform"] == expected(frozenset({"exits"}))
    wf = d.submit("jobs:\n  j: {run: 'echo polled; exit 3'}\n")
    job = d.wait_final(wf)["jobs"][0]
    assert (job["state"], job["exit_code"]) == ("failed", 3)
    assert d.log_of(wf, "j") == "polled\n"


def test_an_unknown_fallback_stops_the_daemon_with_the_names_it_takes(
    ccd_env: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ccd.daemon.main", "run", "--platform-fallbacks", "exit"],
        env={**os.environ, **ccd_env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "ccd: CCD_PLATFORM_FALLBACKS: unknown mechanism exit; use all, none or any of "
        "exits, files, processes, separated by commas"
    )


WRITER = (
    "python3 -c 'import sys, time\n"
    "for i in range(40000):\n"
    '    sys.stdout.write(f"{i:06d} " + "x" * (i % 200) + "\\n")\n'
    "    if i % 5000 == 0: sys.stdout.flush(); time.sleep(0.05)\n"
    'print("::ccd progress=100 msg=written")\''
)


def written() -> str:
    lines = "".join(f"{i:06d} " + "x" * (i % 200) + "\n" for i in range(40000))
    return lines + "::ccd progress=100 msg=written\n"


def test_a_growing_log_reaches_a_follower_and_the_store_whole(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    """4 MB written in pieces while `logs -f` follows: every byte, in order, once."""
    wf = daemon.submit(f"jobs:\n  big: {{run: {json.dumps(WRITER)}}}\n")
    followed = b"".join(
        daemon.client.stream(path_of("workflows", wf, "jobs", "big", "log"), {"follow": True})
    )
    status = daemon.wait_final(wf)
    assert status["jobs"][0]["state"] == "succeeded"
    assert followed.decode() == written()
    assert daemon.log_of(wf, "big") == written()
    # the engine's own reader saw the last line too: the marker it carries
    assert status["jobs"][0]["message"] == "written"


def test_a_job_that_outlives_the_first_looks_is_still_seen_to_end(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        jobs:
          sleeper: {run: 'sleep 1; echo done'}
    """)
    )
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert (job["state"], daemon.log_of(wf, "sleeper")) == ("succeeded", "done\n")
