"""Slurm's vocabulary: directives, parsers and the outcome table, on real output samples."""

from __future__ import annotations

import pytest

from ccd.executors.slurm import model
from ccd.executors.slurm.model import (
    SQUEUE_COMMAND,
    DirectiveError,
    directives,
    expand_job_ids,
    final_verdict,
    job_name,
    max_array_size,
    memory_exceeded,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    queue_state,
    sacct_command,
    slurm_notice,
    slurm_time,
    squeue_named_command,
    task_ranges,
)
from ccd.spec.model import KNOWN_RESOURCES
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


def test_job_name() -> None:
    # recovery looks jobs up by this name (squeue -n): its spelling is part of the protocol
    assert job_name("ab12cd34", "train.v2-a", 3) == "ccd.ab12cd34.train.v2-a.3"


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


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("AuthType                = auth/munge\nMaxArraySize            = 1001\n", 1001),
        ("MaxArraySize=40000\n", 40000),
        ("MaxJobCount             = 10000\n", None),
        ("", None),
    ],
)
def test_max_array_size(config: str, expected: int | None) -> None:
    assert max_array_size(config) == expected


def test_squeue_commands_quote_what_they_are_given() -> None:
    assert SQUEUE_COMMAND == "squeue -h -t all --me -o '%i|%T|%r|%j'"
    assert squeue_named_command("ccd.ab.x y.1") == "squeue -h -t all --me -n 'ccd.ab.x y.1' -o %i"


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


# -- arrays, notices, sacct ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", ["12"]),
        ("12_3", ["12_3"]),
        ("12_[0-2]", ["12_0", "12_1", "12_2"]),
        # pending elements with a throttle, as squeue prints them
        ("1_[2-5%2]", ["1_2", "1_3", "1_4", "1_5"]),
        ("7_[0,4-5,9]", ["7_0", "7_4", "7_5", "7_9"]),
        ("7_[x]", []),
    ],
)
def test_expand_job_ids(text: str, expected: list[str]) -> None:
    assert expand_job_ids(text) == expected


def test_parse_squeue_expands_pending_array_elements() -> None:
    # real squeue -h -t all --me -o '%i|%T|%r|%j' while an array of 6 ran 2 at a time
    out = "1_[2-5%2]|PENDING|JobArrayTaskLimit|wrap\n1_0|RUNNING|None|wrap\n1_1|RUNNING|None|wrap\n"
    entries = parse_squeue(out)
    assert sorted(entries) == [f"1_{i}" for i in range(6)]
    assert entries["1_4"].reason == "JobArrayTaskLimit"
    assert entries["1_1"].state == "RUNNING"


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [([0], "0"), ([0, 1, 2], "0-2"), ([5, 0, 1, 3, 4, 9], "0-1,3-5,9"), (range(50), "0-49")],
)
def test_task_ranges(tasks: list[int], expected: str) -> None:
    assert task_ranges(tasks) == expected


@pytest.mark.parametrize(
    ("tail", "state", "reason"),
    [
        # real lines written by slurmstepd into a job's output
        (
            "slurmstepd-localhost: error: *** JOB 2 ON localhost CANCELLED AT "
            "2026-11-25T18:52:00 ***\n",
            J.CANCELLED,
            "cancelled in Slurm",
        ),
        (
            "x\nslurmstepd: error: *** JOB 9 ON n1 CANCELLED AT 2026-11-25T18:52:07 "
            "DUE TO TIME LIMIT ***\n",
            J.TIMED_OUT,
            "timeout",
        ),
        (
            "slurmstepd-localhost: error: *** JOB 7 ON localhost CANCELLED AT "
            "2026-11-25T18:52:07 DUE TO JOB REQUEUE ***\n",
            J.QUEUED,
            "requeued",
        ),
        (
            "*** JOB 4 ON n2 CANCELLED AT 2026-01-01T00:00:00 DUE TO NODE FAILURE ***",
            J.FAILED,
            "node_fail",
        ),
        (
            "*** JOB 4 ON n2 CANCELLED AT 2026-01-01T00:00:00 DUE TO PREEMPTION ***",
            J.FAILED,
            "preempted",
        ),
    ],
)
def test_slurm_notice(tail: str, state: JobState, reason: str) -> None:
    notice = slurm_notice(tail)
    assert notice is not None
    assert (notice.state, notice.reason) == (state, reason)
    assert notice.line.startswith("*** ") and notice.line.endswith(" ***")


def test_no_notice_in_an_ordinary_log() -> None:
    assert slurm_notice("*** hello ***\nJOB done\n") is None


def test_sacct_command_has_an_explicit_window() -> None:
    command = sacct_command(["12", "13_4"], since=0)
    # steps too (no -X): their MaxRSS is the job's peak memory
    assert command.startswith("sacct -P -n -S ")
    assert " -E now " in command and command.endswith("-j 12,13_4")
    assert "-o JobID,State,ExitCode,End,JobName,UserCPU,SystemCPU,MaxRSS," in command


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        # real: JobAcctGatherParams=OverMemoryKill (the job ends FAILED, ExitCode 0:9)
        (
            "slurmstepd-localhost: error: StepId=1.batch exceeded memory limit "
            "(183128064 > 52428800), being killed\n"
            "slurmstepd-localhost: error: Exceeded job memory limit\n",
            True,
        ),
        # the cgroup OOM killer's line (the job ends OUT_OF_MEMORY)
        (
            "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=5.batch. Some of "
            "your processes may have been killed by the cgroup out-of-memory handler.\n",
            True,
        ),
        ("Traceback: MemoryError\n", False),
    ],
)
def test_memory_exceeded(tail: str, expected: bool) -> None:
    assert memory_exceeded(tail) is expected


def test_every_resource_the_spec_accepts_has_an_sbatch_option() -> None:
    # `extra` is the one key that is not an option of its own: raw sbatch arguments
    assert set(model._OPTIONS) | {"extra"} == KNOWN_RESOURCES
