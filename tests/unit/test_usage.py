"""What an attempt cost: the usage file's line, `times`' output, sacct's fields and steps."""

from __future__ import annotations

import pytest

from ccd.executors.slurm.model import parse_sacct
from ccd.executors.slurm.usage import sacct_kib, sacct_seconds
from ccd.usage import Usage, parse_usage, times_seconds


def test_the_wrappers_line() -> None:
    usage = parse_usage(
        "utime=1.020 stime=0.100 maxrss_kb=204800 start=1764806400.000 end=1764806401.500 node=n1\n"
    )
    assert usage == Usage(
        cpu_user=1.02,
        cpu_sys=0.1,
        maxrss_kb=204800,
        start=1764806400.0,
        wall=1.5,
        node="n1",
        source="wrapper",
    )
    assert usage.cpu == pytest.approx(1.12)


def test_unknown_words_and_bad_numbers_are_skipped() -> None:
    usage = parse_usage("utime=0.5 stime=nan maxrss_kb=12 future=yes weird\n")
    assert usage == Usage(cpu_user=0.5, maxrss_kb=12)
    assert usage is not None and usage.cpu == 0.5


@pytest.mark.parametrize("text", ["", "\n", "  \n", "garbage", "a=b"])
def test_nothing_usable_is_none(text: str) -> None:
    assert parse_usage(text) is None


@pytest.mark.parametrize(
    ("text", "user", "system"),
    [
        ("0m0.000000s 0m0.004000s\n0m1.020000s 0m0.100000s\n", 1.02, 0.1),  # dash
        ("0m0.001s 0m0.002s\n1m2.500s 0m0.250s\n", 62.5, 0.25),  # bash
        ("0m 0.00s 0m 0.00s\n0m 1.02s 0m 0.10s\n", 1.02, 0.1),  # busybox ash
    ],
)
def test_times_output_gives_the_childrens_cpu(text: str, user: float, system: float) -> None:
    usage = parse_usage(text)
    assert usage == Usage(cpu_user=user, cpu_sys=system, source="times")


def test_times_words() -> None:
    assert times_seconds("0m1.020000s") == pytest.approx(1.02)
    assert times_seconds("2m3s") == 123
    assert times_seconds("1,5s") == 1.5
    assert times_seconds("1.02") is None


def test_as_event_data_and_back() -> None:
    usage = Usage(cpu_user=1.0, cpu_sys=0.5, maxrss_kb=100, source="kernel")
    data = usage.to_data()
    assert data == {"cpu_user": 1.0, "cpu_sys": 0.5, "maxrss_kb": 100, "source": "kernel"}
    assert Usage.from_data(data) == usage
    assert Usage.from_data({**data, "later": 1}) == usage  # a newer daemon's field
    assert Usage.from_data(None) is None and Usage.from_data([1]) is None


def test_over_fills_the_gaps_and_replaces_zero_cpu() -> None:
    sacct = Usage(cpu_user=0.0, cpu_sys=0.0, wall=12.0, node="n1", source="sacct")
    wrapper = Usage(cpu_user=3.0, cpu_sys=1.0, maxrss_kb=2048, start=5.0, wall=11.0)
    merged = sacct.over(wrapper)
    assert merged == Usage(3.0, 1.0, 2048, None, 5.0, 12.0, "n1", "sacct")
    assert sacct.over(None) is sacct
    exact = Usage(maxrss_kb=10, source="sacct").over(Usage(maxrss_kb=99, maxrss_bound=True))
    assert (exact.maxrss_kb, exact.maxrss_bound) == (10, None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:01.234", 1.234),  # MM:SS.mmm (TotalCPU, UserCPU under an hour)
        ("12:34.500", 754.5),
        ("00:00:02", 2),  # HH:MM:SS (Elapsed)
        ("01:02:03", 3723),
        ("1-02:03:04", 93784),  # D-HH:MM:SS
        ("10-00:00:00", 864000),
        ("", None),
        ("INVALID", None),
        ("1:2:3:4", None),
    ],
)
def test_sacct_durations(text: str, seconds: float | None) -> None:
    assert sacct_seconds(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("text", "kib"),
    [
        ("123456K", 123456),
        ("1.5G", 1572864),
        ("512M", 524288),
        ("2T", 2 * 1024**3),
        ("0", 0),
        ("2048", 2),  # bytes: sacct writes a suffix from K up
        ("", None),
        ("12X", None),
    ],
)
def test_sacct_sizes(text: str, kib: int | None) -> None:
    assert sacct_kib(text) == kib


def test_sacct_steps_give_the_jobs_peak() -> None:
    # the shape of real `sacct -P -n -o JobID,State,…,Start` lines (jobacct_gather/linux)
    text = (
        "7|COMPLETED|0:0|2026-12-04T01:32:58|ccd.ab12.a.1|00:00.454|00:00.768||00:00:02"
        "|node1|2026-12-04T01:32:56\n"
        "7.batch|COMPLETED|0:0|2026-12-04T01:32:58|batch|00:00.454|00:00.768|219908K"
        "|00:00:02|node1|2026-12-04T01:32:56\n"
        "7.0|COMPLETED|0:0|2026-12-04T01:32:58|python3|00:00.100|00:00.001|1.5G"
        "|00:00:01|node1|2026-12-04T01:32:57\n"
        "8_3|FAILED|3:0|2026-12-04T01:33:00|ccd.ab12.b[3].1|00:00:00|00:00:00||00:00:01"
        "|None assigned|Unknown\n"
        "8_3.batch|FAILED|3:0|2026-12-04T01:33:00|batch|00:00:00|00:00:00||00:00:01|n2|x\n"
    )
    records = parse_sacct(text)
    assert set(records) == {"7", "8_3"}
    usage = records["7"].usage
    assert usage is not None
    assert (usage.cpu_user, usage.cpu_sys, usage.wall) == (0.454, 0.768, 2)
    assert (usage.maxrss_kb, usage.node, usage.source) == (1572864, "node1", "sacct")
    assert usage.start is not None
    other = records["8_3"].usage
    assert other is not None
    assert (other.maxrss_kb, other.node, other.start, other.cpu) == (None, None, None, 0.0)
    assert records["8_3"].exit_code == 3


def test_older_sacct_lines_carry_no_usage() -> None:
    records = parse_sacct("201|COMPLETED|0:0|2026-11-25T10:00:01|ccd.ab12.a.1\n")
    assert records["201"].usage is None
