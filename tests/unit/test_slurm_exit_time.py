"""A Slurm attempt's end time: the wrapper's exit file, else sacct's End, not the poll's time."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, cast

import pytest

from ccd.executors.slurm.access import LocalRunFiles
from ccd.executors.slurm.attempt import SlurmAttempt
from ccd.executors.slurm.model import Accounting, parse_sacct, parse_slurm_time
from ccd.executors.slurm.poller import SlurmPoller
from ccd.executors.wrapper import EXIT

#: an hour ago: long before any test's poll
AN_HOUR_AGO = float(int(time.time()) - 3600)


class StubPoller:
    """What an attempt asks of its poller when it is made and when it ends."""

    interval = 1.0

    def follow(self, attempt: Any) -> None:
        return None

    def unfollow(self, attempt: Any) -> None:
        return None


def attempt_in(run_dir: Path) -> SlurmAttempt:
    return SlurmAttempt(
        cast(SlurmPoller, StubPoller()),
        "77",
        lambda a: LocalRunFiles(run_dir, lambda: None),
        {"executor": "slurm", "slurm_id": "77", "run_dir": str(run_dir)},
    )


def test_sacct_end_is_parsed_in_local_time() -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(AN_HOUR_AGO))
    records = parse_sacct(f"201|FAILED|7:0|{stamp}|ccd.ab12.d.1\n202|RUNNING|0:0|Unknown|x\n")
    assert (records["201"].end, records["202"].end) == (AN_HOUR_AGO, None)
    assert parse_slurm_time("None") is None


async def test_the_exit_file_gives_code_and_time(tmp_path: Path) -> None:
    files = LocalRunFiles(tmp_path, lambda: None)
    assert await files.exit_file() == (None, None)
    (tmp_path / EXIT).write_text("3\n")
    os.utime(tmp_path / EXIT, (AN_HOUR_AGO, AN_HOUR_AGO))
    assert await files.exit_file() == (3, AN_HOUR_AGO)


@pytest.mark.parametrize(
    ("exit_file", "sacct_end", "ended"),
    [
        pytest.param(True, AN_HOUR_AGO + 5, AN_HOUR_AGO, id="the-exit-file-first"),
        pytest.param(False, AN_HOUR_AGO + 5, AN_HOUR_AGO + 5, id="else-sacct-end"),
    ],
)
async def test_an_ended_job_found_by_a_new_daemon_ended_when_it_did(
    tmp_path: Path, exit_file: bool, sacct_end: float, ended: float
) -> None:
    if exit_file:
        (tmp_path / EXIT).write_text("3\n")
        os.utime(tmp_path / EXIT, (AN_HOUR_AGO, AN_HOUR_AGO))
    attempt = attempt_in(tmp_path)
    await attempt.update(None, Accounting("77", "FAILED", 3, 0, "ccd.x.j.1", sacct_end))
    status = attempt.exited.result()
    assert (status.exit_code, status.ended) == (3, ended)


async def test_without_either_it_is_the_time_it_was_seen(tmp_path: Path) -> None:
    attempt = attempt_in(tmp_path)
    before = time.time()
    await attempt.update(None, Accounting("77", "FAILED", 3, 0, "ccd.x.j.1"))
    assert attempt.exited.result().ended >= before
