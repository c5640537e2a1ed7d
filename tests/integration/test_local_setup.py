"""`hosts.localhost.setup` runs before every local job, as a host's setup does over SSH
and on Slurm (it used to be accepted and ignored)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from tests.conftest import DaemonProc


def test_localhost_setup_lines_run_before_each_job(
    daemon_factory: Callable[..., DaemonProc],
) -> None:
    d = daemon_factory(
        textwrap.dedent("""
        hosts:
          localhost:
            setup:
              - 'export CCD_TEST_FROM_SETUP="set up"'
              - 'PATH="/opt/ccd-test-bin:$PATH"'
    """)
    )
    d.start()
    wf = d.submit(
        textwrap.dedent("""
        name: setup
        jobs:
          show:
            run: 'echo "$CCD_TEST_FROM_SETUP"; echo "$PATH" | cut -d: -f1'
    """)
    )
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert d.log_of(wf, "show") == "set up\n/opt/ccd-test-bin\n"
