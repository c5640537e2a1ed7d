"""Slurm's vocabulary: directives, parsers and the outcome table, on real output samples."""

from __future__ import annotations

import pytest

from ccd.executors.slurm.model import (
    DirectiveError,
    directives,
    final_verdict,
    job_name,
    parse_job_name,
    parse_sacct,
    parse_sbatch,
    parse_scontrol,
    parse_squeue,
    queue_state,
    slurm_time,
)
from ccd.states import JobState

J = JobState


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1, "0-00:01:00"),
        (60, "0-00:01:00"),
        (61, "0-00:02:00"),
        (7200, "0-02:00:00"),
        (86400 + 90, "1-00:02:00"),
    ],
)
def test_slurm_time_rounds_up_to_minutes(seconds: float, expected: str) -> None:
    assert slurm_time(seconds) == expected


def test_directives_from_resources_and_timeout() -> None:
    lines = directives(
        {"partition": "gpu", "gres": "gpu:1", "mem": "16G", "cpus": 4, "extra": ["--exclusive"]},
        timeout=3600,
        name="ccd.ab12.train.1",
        output="/runs/ab12/train/1/log",
    )
    assert lines == [
        "#SBATCH --job-name=ccd.ab12.train.1",
        "#SBATCH --output=/runs/ab12/train/1/log",
        "#SBATCH --open-mode=append",
        "#SBATCH --partition=gpu",
        "#SBATCH --mem=16G",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=0-01:00:00",
        "#SBATCH --exclusive",
    ]


def test_explicit_time_wins_over_timeout_and_values_are_quoted() -> None:
    lines = directives({"time": "00:10:00", "constraint": "a&b"}, timeout=60, name="n", output="/o")
    assert "#SBATCH --time=00:10:00" in lines
    assert "#SBATCH '--constraint=a&b'" in lines
    assert not any(line.startswith("#SBATCH --time=0-") for line in lines)


@pytest.mark.parametrize(
    "resources", [{"partiton": "x"}, {"extra": "--exclusive"}, {"mem": "1G\n#SBATCH --x"}]
)
def test_bad_resources(resources: dict[str, object]) -> None:
    with pytest.raises(DirectiveError):
        directives(resources, timeout=None, name="n", output="/o")


def test_job_name_round_trip() -> None:
    assert parse_job_name(job_name("ab12cd34", "train.v2-a", 3)) == ("ab12cd34", "train.v2-a", 3)
    assert parse_job_name("something-else") is None


def test_parse_squeue() -> None:
    text = (
        "101|PENDING|Resources|ccd.ab12.a.1\n"
        "102|RUNNING|None|ccd.ab12.b.1\n"
        "103|COMPLETING|None|ccd.ab12.c.2\n"
        "\n"
    )
    entries = parse_squeue(text)
    assert set(entries) == {"101", "102", "103"}
    assert (entries["101"].state, entries["101"].reason) == ("PENDING", "Resources")
    assert queue_state(entries["101"].state) is J.QUEUED
    assert queue_state(entries["103"].state) is J.RUNNING
    assert queue_state("COMPLETED") is None


def test_parse_sacct_skips_steps() -> None:
    text = (
        "201|COMPLETED|0:0|2026-11-25T10:00:01|ccd.ab12.a.1\n"
        "201.batch|COMPLETED|0:0|2026-11-25T10:00:01|batch\n"
        "202|OUT_OF_MEMORY|0:125|2026-11-25T10:00:02|ccd.ab12.b.1\n"
        "202.batch|OUT_OF_MEMORY|0:125|2026-11-25T10:00:02|batch\n"
        "203|CANCELLED by 1000|0:15|2026-11-25T10:00:03|ccd.ab12.c.1\n"
        "204|FAILED|7:0|2026-11-25T10:00:04|ccd.ab12.d.1\n"
    )
    records = parse_sacct(text)
    assert set(records) == {"201", "202", "203", "204"}
    assert (records["202"].exit_code, records["202"].signal) == (0, 125)
    assert records["203"].state == "CANCELLED by 1000"
    assert records["204"].exit_code == 7


def test_parse_scontrol_one_line() -> None:
    text = (
        "JobId=301 JobName=ccd.ab12.a.1 UserId=root(0) GroupId=root(0) Priority=1 "
        "JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 "
        "ExitCode=7:0 RunTime=00:00:01 TimeLimit=UNLIMITED StdOut=/runs/x/log"
    )
    fields = parse_scontrol(text)
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "7:0"
    assert fields["Reason"] == "NonZeroExitCode" and fields["Restarts"] == "0"


@pytest.mark.parametrize(
    ("state", "code", "sig", "expected"),
    [
        ("COMPLETED", 0, 0, (J.SUCCEEDED, None, 0)),
        ("FAILED", 7, 0, (J.FAILED, None, 7)),
        ("TIMEOUT", 0, 0, (J.TIMED_OUT, "timeout", 0)),
        ("OUT_OF_MEMORY", 0, 125, (J.FAILED, "oom", 0)),
        ("OUT_OF_MEMORY+", 0, 125, (J.FAILED, "oom", 0)),
        ("COMPLETED", 0, 125, (J.FAILED, "oom", 0)),  # recorded as success on some sites
        ("COMPLETED", 1, 0, (J.FAILED, "completed with exit code 1:0", 1)),
        ("NODE_FAIL", None, None, (J.FAILED, "node_fail", None)),
        ("PREEMPTED", 0, 0, (J.FAILED, "preempted", 0)),
        ("BOOT_FAIL", None, None, (J.FAILED, "boot_fail", None)),
        ("CANCELLED", 0, 15, (J.CANCELLED, "cancelled", 0)),
        ("CANCELLED by 1000", 0, 15, (J.CANCELLED, "cancelled by 1000", 0)),
        ("DEADLINE", None, None, (J.FAILED, "deadline", None)),
    ],
)
def test_final_verdicts(
    state: str, code: int | None, sig: int | None, expected: tuple[JobState, str | None, int | None]
) -> None:
    verdict = final_verdict(state, code, sig)
    assert verdict is not None
    assert (verdict.state, verdict.reason, verdict.exit_code) == expected


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "REQUEUED", "COMPLETING", "WEIRD"])
def test_non_terminal_states_have_no_verdict(state: str) -> None:
    assert final_verdict(state, 0, 0) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234\n", "1234"),
        ("1234;cluster\n", "1234"),
        ("", None),
        ("sbatch: error: invalid partition\n", None),
    ],
)
def test_parse_sbatch(text: str, expected: str | None) -> None:
    assert parse_sbatch(text) == expected
