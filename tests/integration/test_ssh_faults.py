"""Network faults against a real sshd in its own network namespace (tests/netns.py).

The daemon runs inside the lab's `ctl` namespace, the host's sshd inside `h1`; the
link between them is cut for 20 s while a job keeps printing numbered lines.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DaemonProc, daemon_in_lab
from tests.netns import NetnsLab

#: how long the host stays cut off (the scenario, not a wait for state)
OUTAGE = 20.0
LINES = 150  # one every 0.2 s: the job outlives the outage


def test_cut_host_for_20s_loses_and_repeats_no_line(
    daemon_factory: Callable[..., DaemonProc],
    netns_lab_factory: Callable[[int], NetnsLab],
    tmp_path: Path,
) -> None:
    lab = netns_lab_factory(1)
    d = daemon_in_lab(daemon_factory, lab, tmp_path)
    wf = d.submit(
        textwrap.dedent(f"""
        name: outage
        jobs:
          counter:
            host: far
            run: 'i=1; while [ $i -le {LINES} ]; do echo "line $i"; i=$((i+1)); sleep 0.2; done'
    """)
    )
    d.wait_for_event(wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "running")
    lab.cut(1)
    cut_at = time.monotonic()
    event = d.wait_for_event(
        wf, lambda e: e["kind"] == "job.state" and e["data"]["state"] == "unreachable"
    )
    assert "far" in event["data"]["reason"]
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))  # the outage itself
    lab.restore(1)
    status = d.wait_final(wf)
    job = status["jobs"][0]
    assert (status["state"], job["state"], job["exit_code"]) == ("succeeded", "succeeded", 0)
    assert d.log_of(wf, "counter") == "".join(f"line {i}\n" for i in range(1, LINES + 1))
    states = [e["data"]["state"] for e in d.events(wf) if e["kind"] == "job.state"]
    # an unreachable job's reason is updated as reconnecting goes on (same state)
    changes = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    assert changes == ["queued", "running", "unreachable", "running", "succeeded"]
