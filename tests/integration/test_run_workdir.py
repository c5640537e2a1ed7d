"""`workdir: run`: each attempt starts in its own run directory, so an array's
elements (and a retry's attempts) never write over each other's files."""

from __future__ import annotations

import textwrap

from tests.conftest import DaemonProc


def test_array_elements_in_workdir_run_keep_their_own_files(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: sweep
        jobs:
          train:
            array: [0.1, 0.2, 0.3]
            workdir: run
            # the same relative file name in every element, and the place it was written
            run: 'echo "$CCD_ARRAY_VALUE" > model.txt && pwd && echo "$CCD_RUN_DIR"'
    """)
    )
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    runs = daemon.state_dir / "runs" / status["id"]
    for index, value in enumerate(["0.1", "0.2", "0.3"]):
        job = f"train[{index}]"
        run_dir = runs / job / "1"
        assert (run_dir / "model.txt").read_text() == f"{value}\n"
        cwd, announced = daemon.log_of(wf, job).split()
        assert cwd == announced == str(run_dir)
