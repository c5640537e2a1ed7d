"""`array:` on local jobs: elements are ordinary jobs with their index and value."""

from __future__ import annotations

import textwrap

from tests.conftest import DaemonProc


def test_local_array_elements_run_fail_and_retry_on_their_own(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: local-sweep
        jobs:
          sweep:
            array: [a, b, c, d]
            retries: 1
            retry_delay: 0
            run: |
              echo "$CCD_JOB $CCD_ARRAY_INDEX $CCD_ARRAY_VALUE"
              [ "$CCD_ARRAY_VALUE" != c ] || [ "$CCD_ATTEMPT" = 2 ]
          never: {array: 2, run: 'exit 1'}
          after: {needs: [sweep], run: 'echo after'}
          blocked: {needs: [never], run: 'echo blocked'}
    """)
    )
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert [daemon.log_of(wf, f"sweep[{i}]").strip() for i in range(4)] == [
        "sweep[0] 0 a",
        "sweep[1] 1 b",
        "sweep[2] 2 c",
        "sweep[3] 3 d",
    ]
    assert [jobs[f"sweep[{i}]"]["attempt"] for i in range(4)] == [1, 1, 2, 1]
    assert jobs["after"]["state"] == "succeeded"
    assert {jobs["never[0]"]["state"], jobs["never[1]"]["state"]} == {"failed"}
    assert jobs["blocked"]["state"] == "skipped"
    assert "never[" in jobs["blocked"]["reason"]
    assert status["state"] == "failed"
