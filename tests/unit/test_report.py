"""The run report's pure parts: attempts from events, totals and sizing, the timeline's
layout, the HTML page and the terminal table."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from ccd.cli.report import print_tables
from ccd.cli.report_html import report_html
from ccd.report.build import build_report, group_of
from ccd.report.gantt import MAX_BANDS, layout, offset_text, tick_step
from ccd.report.units import kib_text, seconds_text, slurm_mem, slurm_minutes

WF = {"id": "ab12", "name": "demo", "state": "failed", "created": 1000.0, "ended": 1100.0}


def row(name: str, state: str = "succeeded", **more: Any) -> dict[str, Any]:
    return {"name": name, "state": state, "host": "localhost", "executor": "local", **more}


def state(job: str, t: float, value: str, attempt: int, **data: Any) -> dict[str, Any]:
    return {"job": job, "time": t, "kind": "job.state", "data": {"state": value, "attempt": attempt, **data}}  # fmt: skip


def usage(job: str, t: float, attempt: int, outcome: str, **data: Any) -> dict[str, Any]:
    body = {"attempt": attempt, "outcome": outcome, "ended": t, **data}
    return {"job": job, "time": t, "kind": "job.usage", "data": body}


def attempt_events(
    job: str, start: float, end: float, used: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    return [
        state(job, start - 1, "queued", 0),
        state(job, start, "running", 1, handle={"pid": 1}),
        usage(job, end, 1, "succeeded", exit_code=0, usage=used),
        state(job, end, "succeeded", 1, exit_code=0, ended=end),
    ]


# -- building ------------------------------------------------------------------------------
def test_an_attempt_from_its_events() -> None:
    events = attempt_events(
        "a", 1010.0, 1020.0, {"cpu_user": 15.0, "cpu_sys": 5.0, "maxrss_kb": 2048}
    )
    [entry] = build_report(WF, [row("a")], events, 1200.0)["attempts"]
    assert entry["start"] == 1010.0 and entry["end"] == 1020.0 and entry["wall"] == 10.0
    assert (entry["cpu"], entry["cpu_percent"], entry["maxrss_kb"]) == (20.0, 200.0, 2048)
    assert (entry["state"], entry["exit_code"], entry["cached"]) == ("succeeded", 0, "no")


def test_a_batch_job_s_queue_time_and_host_s_own_figures() -> None:
    """squeue saw it running late (polls); the host's start and elapsed are exact."""
    used = {"cpu_user": 3.0, "start": 1012.0, "wall": 4.0, "node": "n7", "source": "sacct"}
    events = [
        state("s", 1010.0, "queued", 1, handle={"slurm_id": "7"}, reason="submitted"),
        state("s", 1015.0, "running", 1),
        usage("s", 1016.0, 1, "succeeded", exit_code=0, usage=used),
    ]
    [entry] = build_report(WF, [row("s", executor="slurm", host="hpc")], events, 1200.0)["attempts"]
    assert (entry["submitted"], entry["start"], entry["wall"]) == (1010.0, 1012.0, 4.0)
    assert (entry["node"], entry["source"], entry["cpu_percent"]) == ("n7", "sacct", 75.0)


def test_a_host_start_before_the_submit_is_not_believed() -> None:
    used = {"start": 900.0}  # another machine's clock, far behind
    events = [
        state("s", 1010.0, "queued", 1, handle={"slurm_id": "7"}),
        state("s", 1015.0, "running", 1),
        usage("s", 1020.0, 1, "succeeded", usage=used),
    ]
    [entry] = build_report(WF, [row("s")], events, 1200.0)["attempts"]
    assert entry["start"] == 1015.0 and entry["wall"] == 5.0


def test_retries_are_entries_of_their_own_and_never_ran_jobs_are_attempt_0() -> None:
    events = [
        state("r", 1000.0, "running", 1),
        usage("r", 1001.0, 1, "failed", exit_code=3, reason="exit 3: boom"),
        state("r", 1001.0, "queued", 1, exit_code=3, handle=None, reason="retrying"),
        state("r", 1002.0, "running", 2),
        usage("r", 1003.0, 2, "succeeded", exit_code=0),
        state("r", 1003.0, "succeeded", 2, exit_code=0),
        state("never", 1003.0, "skipped", 0, reason="parent failed"),
    ]
    rows = [row("r"), row("never", "skipped", reason="parent failed")]
    report = build_report(WF, rows, events, 1200.0)
    got = [(e["job"], e["attempt"], e["state"], e["exit_code"]) for e in report["attempts"]]
    assert got == [("r", 1, "failed", 3), ("r", 2, "succeeded", 0), ("never", 0, "skipped", None)]
    assert report["attempts"][0]["reason"] == "exit 3: boom"
    assert report["totals"]["attempts"] == 2 and report["totals"]["span"] == 3.0


def test_a_running_attempt_has_the_jobs_state_and_no_end() -> None:
    events = [state("a", 1000.0, "running", 1)]
    [entry] = build_report(WF, [row("a", "running")], events, 1200.0)["attempts"]
    assert (entry["state"], entry["end"], entry["wall"]) == ("running", None, None)


def test_events_from_before_job_usage_still_make_attempts() -> None:
    events = [state("a", 1000.0, "running", 1), state("a", 1004.0, "failed", 1, exit_code=2)]
    [entry] = build_report(WF, [row("a", "failed")], events, 1200.0)["attempts"]
    assert (entry["state"], entry["exit_code"], entry["wall"]) == ("failed", 2, 4.0)


def test_cached_reads_where_the_result_came_from() -> None:
    rows = [row("a", cached_from="wf0001"), row("b")]
    events = [state("b", 1000.0, "succeeded", 0, cached_from="wf0002")]
    entries = build_report(WF, rows, events, 1200.0)["attempts"]
    assert [(e["job"], e["cached"]) for e in entries] == [("a", "wf0001"), ("b", "wf0002")]


def test_groups_size_slurm_requests_from_the_largest_attempt() -> None:
    events = []
    for i, (wall, cpu, rss) in enumerate([(100.0, 150.0, 1024**2), (200.0, 100.0, 512)]):
        used = {"cpu_user": cpu, "maxrss_kb": rss}
        events += attempt_events(f"train[{i}]", 1000.0, 1000.0 + wall, used)
    bound = {"maxrss_kb": 2 * 1024**2, "maxrss_bound": True}
    events += attempt_events("tiny", 1000.0, 1001.0, bound)
    rows = [row("train[0]"), row("train[1]"), row("tiny")]
    report = build_report(WF, rows, events, 1400.0)
    train, tiny = report["groups"]
    assert (train["group"], train["jobs"], train["attempts"]) == ("train", 2, 2)
    assert (train["max_wall"], train["max_cpu_percent"], train["max_rss_kb"]) == (200, 150, 1024**2)
    assert train["suggest"] == {"mem": "1229M", "time": "00:05:00", "cpus": 2}
    assert (tiny["max_rss_kb"], tiny["max_rss_bound"]) == (2 * 1024**2, True)
    assert report["totals"]["maxrss_kb"] == 2 * 1024**2 and report["totals"]["maxrss_bound"]


def test_group_names() -> None:
    assert [group_of(n) for n in ("train[3]", "train", "a[b]c", "x[0][1]")] == [
        "train",
        "train",
        "a[b]c",
        "x",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.423, "0.42s"),
        (12.34, "12.3s"),
        (125, "2m05s"),
        (3720, "1h02m"),
        (3 * 86400 + 4 * 3600, "3d04h"),
        (None, "-"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert seconds_text(seconds) == text


def test_sizes_and_requests() -> None:
    assert [kib_text(k) for k in (812, 218388, 1572864, None)] == ["812 KiB", "213 MiB", "1.5 GiB", "-"]  # fmt: skip
    assert [slurm_mem(k) for k in (1, 1024 * 1000, 11 * 1024**2)] == ["1M", "1000M", "11G"]
    assert [slurm_minutes(s) for s in (1, 61, 90000)] == ["00:01:00", "00:02:00", "1-01:00:00"]


# -- the timeline ------------------------------------------------------------------------
def entry(job: str, start: float, end: float | None, **more: Any) -> dict[str, Any]:
    return {"job": job, "group": group_of(job), "attempt": 1, "state": "succeeded",
            "start": start, "end": end, **more}  # fmt: skip


def test_a_group_s_attempts_share_lanes_when_they_do_not_overlap() -> None:
    attempts = [entry(f"sweep[{i}]", 10.0 * (i // 2), 10.0 * (i // 2) + 10) for i in range(6)]
    attempts.append(entry("solo", 0.0, 30.0))
    gantt = layout(attempts, now=100.0)
    assert [(b.label, b.first_lane, b.lanes) for b in gantt.bands] == [
        ("sweep (6 jobs)", 0, 2),
        ("solo", 2, 1),
    ]
    assert len(gantt.bars) == 7 and gantt.lanes == 3
    lanes = {}
    for bar in gantt.bars:
        lanes.setdefault(bar.lane, []).append((bar.begin, bar.finish))
    for spans in lanes.values():  # no two bars of a lane overlap
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_many_groups_become_one_band_as_high_as_the_concurrency() -> None:
    attempts = [entry(f"job{i}", float(i // 4), float(i // 4) + 1) for i in range(1000)]
    gantt = layout(attempts, now=300.0)
    assert len(attempts) > MAX_BANDS
    assert [(b.label, b.lanes) for b in gantt.bands] == [("all 1000 attempts (1000 jobs)", 4)]
    assert len(gantt.bars) == 1000 and gantt.lane_height >= 2


def test_a_running_bar_ends_now_and_the_axis_has_round_ticks() -> None:
    gantt = layout([entry("a", 100.0, None), entry("b", 100.0, 130.0)], now=190.0)
    assert gantt.origin == 100.0 and gantt.span == 90.0
    assert max(b.finish for b in gantt.bars) == 90.0
    assert [t for t, _ in gantt.ticks] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert tick_step(3600) == 600 and tick_step(5) == 1
    assert [offset_text(s) for s in (0, 45, 120, 90, 7200, 5400, 172800)] == [
        "0", "45s", "2m", "1m30s", "2h", "1h30m", "2d",
    ]  # fmt: skip


def test_nothing_ran_is_an_empty_timeline() -> None:
    gantt = layout([{"job": "a", "attempt": 0, "state": "skipped", "start": None}], now=5.0)
    assert (gantt.bars, gantt.lanes) == ([], 0)


# -- the page and the table --------------------------------------------------------------
def sample() -> dict[str, Any]:
    events = []
    for i in range(12):
        used = {"cpu_user": 1.0, "maxrss_kb": 1000 * (i + 1)}
        events += attempt_events(f"sweep[{i}]", 1000.0 + i, 1005.0 + i, used)
    events += [
        state("q", 1000.0, "queued", 1, handle={"slurm_id": "9"}),
        state("q", 1003.0, "running", 1),
        usage("q", 1009.0, 1, "failed", exit_code=1),
    ]
    rows = [row(f"sweep[{i}]") for i in range(12)]
    rows += [row("q", "failed", executor="slurm"), row("never", "skipped")]
    return build_report(WF, rows, events, 1100.0)


def test_the_page_is_well_formed_self_contained_and_has_a_bar_per_attempt() -> None:
    page = report_html(sample(), now=1100.0)
    assert page.startswith("<!DOCTYPE html>")
    root = ET.fromstring(page.split("\n", 1)[1])  # XHTML-clean: it parses as XML
    assert root.tag == "html"
    assert not re.search(r"https?:", page)  # no CDN, no font, no link, no xmlns
    assert "<script" not in page and " src=" not in page
    svg = root.find(".//svg")
    assert svg is not None
    bars = [r for r in svg.iter("rect") if "bar" in r.get("class", "").split()]
    assert len(bars) == 13  # 12 sweep elements and q; `never` never ran
    assert {r.get("class") for r in bars} == {"bar s-succeeded", "bar s-failed"}
    assert [r.findtext("title") for r in bars if "s-failed" in r.get("class", "")] == [
        "q attempt 1, failed, 3s to 9s"
    ]
    waits = [r for r in svg.iter("rect") if r.get("class") == "wait"]
    assert len(waits) == 1  # q's three seconds in the queue
    tables = root.findall(".//table")
    assert len(tables) == 2  # sizing, attempts
    attempt_rows = tables[1].findall("./tbody/tr")
    assert len(attempt_rows) == 15  # 14 entries and the totals


def test_the_page_escapes_what_jobs_are_called() -> None:
    report = sample()
    report["workflow"]["name"] = "<b>&co"
    page = report_html(report, now=1100.0)
    assert "<b>&co" not in page and "&lt;b&gt;&amp;co" in page
    ET.fromstring(page.split("\n", 1)[1])


def test_the_terminal_table(capsys: pytest.CaptureFixture[str]) -> None:
    print_tables(sample())
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("demo (ab12) failed: 14 jobs, 13 attempts in 16.0s; CPU 12.0s")
    assert out[1].split() == [
        "Job", "Att", "State", "Host", "Executor", "Start", "Wall", "CPU", "CPU%", "Peak",
        "RSS", "Exit", "Cached",
    ]  # fmt: skip
    words = {line.split()[0]: line.split() for line in out[2:] if line}
    assert words["sweep[11]"][6:] == ["5.00s", "1.00s", "20%", "11.7", "MiB", "0", "no"]
    assert words["never"][1:3] == ["-", "skipped"]
    assert any(line.startswith("total: 14 jobs") for line in out)
    sizing = next(i for i, line in enumerate(out) if line.startswith("Group"))
    assert out[sizing + 1].split()[:3] == ["sweep", "12", "12"]
    assert out[-1].startswith("Sizing Slurm requests:")
