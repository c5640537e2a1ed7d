"""A run report's words: its columns, each attempt's cells, the summary, the sizing hint
(pure; the terminal table and the HTML page both write these)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ccd.report.units import kib_text, percent_text, seconds_text

ATTEMPT_HEADERS = (
    "Job", "Att", "State", "Host", "Executor", "Start", "Wall", "CPU", "CPU%",
    "Peak RSS", "Exit", "Cached",
)  # fmt: skip
#: columns aligned to the right (numbers)
RIGHT = frozenset({"Att", "Wall", "CPU", "CPU%", "Peak RSS", "Exit"})
GROUP_HEADERS = (
    "Group", "Jobs", "Attempts", "Max wall", "Max CPU%", "Max peak RSS", "--mem", "--time",
    "--cpus-per-task",
)  # fmt: skip
GROUP_RIGHT = frozenset(GROUP_HEADERS[1:])

#: what the groups table is for, and what its figures are
SIZING_HINT = (
    "Sizing Slurm requests: per job group, the largest wall time, CPU share and peak RSS "
    "seen, and requests that would have held them (--mem +20%, --time +50%). "
    "Peak RSS is the largest single process of a job on local and SSH hosts (and Slurm "
    "without accounting); sacct's is the largest sampled sum of a step's processes: a job "
    "running several big processes at once needs their sum. ≤: a local job smaller than "
    "the daemon, whose figure only says at most that."
)


def rss_text(kib: float | None, bound: bool = False) -> str:
    """A peak RSS; ``≤57.0 MiB`` when only a bound is known."""
    return ("≤" if bound and kib is not None else "") + kib_text(kib)


def clock(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%H:%M:%S", time.localtime(epoch))


def host_text(entry: Mapping[str, Any]) -> str:
    """The job's host, and the machine it ran on when that is another name (a node)."""
    host, node = str(entry.get("host") or "localhost"), entry.get("node")
    return f"{host}/{node}" if node and node != host and host != "localhost" else host


def attempt_cells(entry: Mapping[str, Any]) -> list[str]:
    """One attempt's cells, in ATTEMPT_HEADERS' order."""
    share = entry.get("cpu_percent")
    exit_code = entry.get("exit_code")
    return [
        str(entry["job"]),
        str(entry["attempt"]) if entry["attempt"] else "-",
        str(entry["state"]),
        host_text(entry),
        str(entry.get("executor") or "local"),
        clock(entry.get("start")),
        seconds_text(entry.get("wall")),
        seconds_text(entry.get("cpu")),
        percent_text(None if share is None else share / 100),
        rss_text(entry.get("maxrss_kb"), bool(entry.get("maxrss_bound"))),
        "-" if exit_code is None else str(exit_code),
        str(entry.get("cached") or "no"),
    ]


def total_cells(totals: Mapping[str, Any]) -> list[str]:
    """The totals row, under ATTEMPT_HEADERS (wall and CPU added up, the largest RSS)."""
    return [
        f"total: {totals['jobs']} jobs",
        str(totals["attempts"]),
        "",
        "",
        "",
        clock(totals.get("start")),
        seconds_text(totals.get("wall")),
        seconds_text(totals.get("cpu")),
        "",
        rss_text(totals.get("maxrss_kb"), bool(totals.get("maxrss_bound"))),
        "",
        "",
    ]


def group_cells(group: Mapping[str, Any]) -> list[str]:
    suggest = group.get("suggest") or {}
    share = group.get("max_cpu_percent")
    cpus = suggest.get("cpus")
    return [
        str(group["group"]),
        str(group["jobs"]),
        str(group["attempts"]),
        seconds_text(group.get("max_wall")),
        percent_text(None if share is None else share / 100),
        rss_text(group.get("max_rss_kb"), bool(group.get("max_rss_bound"))),
        suggest.get("mem") or "-",
        suggest.get("time") or "-",
        "-" if cpus is None else str(cpus),
    ]


def summary(report: Mapping[str, Any]) -> str:
    """`mnist (a1b2c3d4) succeeded: 12 jobs, 14 attempts in 3m05s; CPU 9m12s (298% over
    the run), largest peak RSS 1.2 GiB`."""
    wf, totals = report["workflow"], report["totals"]
    share = totals.get("cpu_percent")
    text = (
        f"{wf.get('name')} ({wf.get('id')}) {wf.get('state')}: {totals['jobs']} jobs, "
        f"{totals['attempts']} attempts in {seconds_text(totals.get('span'))}; "
        f"CPU {seconds_text(totals.get('cpu'))}"
    )
    if share is not None:
        text += f" ({percent_text(share / 100)} over the run)"
    if totals.get("maxrss_kb") is not None:
        text += f", largest peak RSS {rss_text(totals['maxrss_kb'], totals.get('maxrss_bound'))}"
    return text
