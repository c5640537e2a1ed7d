"""The daemon where Linux's mechanisms are missing, run for real (tests/elsewhere.py).

`python -m tests.elsewhere` starts ccd with `sys.platform` reading darwin, no
asyncinotify, no `os.pidfd_open` and /proc refused to ccd's code, so it takes
every path a Mac takes except kqueue (poll, re-read, psutil; kqueue's event
translation is tested with a fake in tests/unit/test_platform_exits.py).  The
guarantees are the ones the Linux paths keep: every log byte, tree-kill on
cancel and timeout, exactly-once across `kill -9`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from ccd.cli.client import path_of
from tests.conftest import ROOT, WAIT, DaemonProc, proc_alive

ELSEWHERE = [sys.executable, "-m", "tests.elsewhere"]


def test_every_module_imports_without_the_linux_mechanisms() -> None:
    code = textwrap.dedent("""
        import importlib, pkgutil, sys, ccd
        for module in pkgutil.walk_packages(ccd.__path__, "ccd."):
            if not module.name.endswith("__main__"):  # that one runs ccctl
                importlib.import_module(module.name)
        from ccd.platform import choose
        from ccd.cli.service import _default_manager
        print(sorted(m for m in sys.modules if m.startswith("ccd.")) != [])
        print("asyncinotify" in sys.modules, choose(), _default_manager())
    """)
    done = subprocess.run(
        [*ELSEWHERE, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "True",
        "False Mechanisms(exits='poll', files='re-read', processes='psutil', "
        "service='launchd', forced=frozenset()) launchd",
    ]


def elsewhere_daemon(daemon_factory: Any) -> DaemonProc:
    # platformdirs on a Mac ignores XDG_STATE_HOME: the state directory is given
    d: DaemonProc = daemon_factory("kill_grace: 0.5\n")
    d.wrap = ELSEWHERE
    d.args = ["--state-dir", str(d.state_dir)]
    d.start()
    return d


def running(d: DaemonProc, wf: str, job: str) -> dict[str, Any]:
    return d.wait_for_event(
        wf,
        lambda e: e["kind"] == "job.state" and e["job"] == job and e["data"]["state"] == "running",
    )


def test_a_daemon_without_them_keeps_every_guarantee(daemon_factory: Any, tmp_path: Path) -> None:
    d = elsewhere_daemon(daemon_factory)
    health = d.client.call("GET", "/v1/health")
    assert health["platform"] == {
        "exits": "poll",
        "files": "re-read",
        "processes": "psutil",
        "service": "launchd",
    }
    ledger, gate, pids = tmp_path / "ledger", tmp_path / "gate", tmp_path / "pids"
    wf = d.submit(
        textwrap.dedent(f"""
        name: elsewhere
        jobs:
          talk:
            run: |
              i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done
              echo "::ccd output answer=42"
          use: {{needs: [talk], run: 'echo "got $CCD_OUTPUT_TALK_ANSWER"'}}
          slow:
            run: "sh -c 'trap \\"\\" TERM; echo $$ >> {pids}; sleep 300' & sleep 300"
            timeout: 1s
          once:
            run: 'echo "once $CCD_ATTEMPT" >> {ledger}; while [ ! -e {gate} ]; do sleep 0.05; done'
    """)
    )
    pid = running(d, wf, "once")["data"]["handle"]["pid"]
    d.stop(signal.SIGKILL)
    assert proc_alive(pid)
    d.start()
    gate.touch()
    status = d.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    # the one job a killed daemon left running: adopted by pid (psutil), not run again
    assert (jobs["once"]["state"], jobs["once"]["attempt"]) == ("succeeded", 1)
    assert jobs["once"]["handle"]["pid"] == pid and ledger.read_text() == "once 1\n"
    expected = "".join(f"line {i}\n" for i in range(2000)) + "::ccd output answer=42\n"
    assert d.log_of(wf, "talk") == expected
    assert d.log_of(wf, "use") == "got 42\n"
    # a grandchild that ignores TERM is killed with its group after the grace
    assert jobs["slow"]["state"] == "timed_out"
    assert not any(proc_alive(int(p)) for p in pids.read_text().split())


def test_logs_follow_and_cancel_without_them(daemon_factory: Any, tmp_path: Path) -> None:
    d = elsewhere_daemon(daemon_factory)
    pids = tmp_path / "pids"
    wf = d.submit(
        textwrap.dedent(f"""
        name: follow
        jobs:
          long:
            run: |
              sh -c 'echo $$ >> {pids}; exec sleep 300' &
              i=0; while [ $i -lt 50 ]; do echo "tick $i"; i=$((i+1)); sleep 0.01; done
              echo "::ccd progress=50 msg=half"
              wait
    """)
    )
    running(d, wf, "long")
    followed = ""
    for chunk in d.client.stream(path_of("workflows", wf, "jobs", "long", "log"), {"follow": True}):
        followed += chunk.decode()
        if "::ccd progress=50" in followed:
            break
    assert followed == "".join(f"tick {i}\n" for i in range(50)) + "::ccd progress=50 msg=half\n"
    d.wait_for_event(wf, lambda e: e["kind"] == "job.progress" and e["data"]["message"] == "half")
    d.client.call("POST", path_of("workflows", wf, "cancel"))
    status = d.wait_final(wf)
    assert status["jobs"][0]["state"] == "cancelled"
    assert not any(proc_alive(int(p)) for p in pids.read_text().split())
