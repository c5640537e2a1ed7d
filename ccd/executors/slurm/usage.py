"""What sacct says a job cost (pure): its durations and sizes, its steps folded into one.

sacct prints one line for the job (the allocation) and one per step (``123.batch``,
``123.extern``, ``123.0`` for each ``srun``).  The job's line has the CPU time of all
its steps (UserCPU and SystemCPU, whose sum is TotalCPU) and its Elapsed; MaxRSS is a
step's (the largest sum of its
processes' RSS that the JobAcctGather plugin sampled), so the job's peak is the
largest of its steps'.  With ``JobAcctGatherType=jobacct_gather/none`` sacct shows
zero CPU times and no MaxRSS: the wrapper's figures then stand
(`ccd.usage.Usage.over`).
"""

from __future__ import annotations

import re
from dataclasses import replace

from ccd.usage import Usage

#: sacct's size suffixes (binary, as Slurm counts): to KiB
_TO_KIB = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1024**2, "T": 1024**3, "P": 1024**4}
_SIZE = re.compile(r"^(\d+(?:\.\d*)?)([KMGTP]?)$", re.IGNORECASE)
_DURATION = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def sacct_seconds(text: str) -> float | None:
    """A sacct duration in seconds: ``00:01.234`` (MM:SS.mmm, TotalCPU's short form),
    ``01:02:03``, ``1-02:03:04`` (days-HH:MM:SS); None for empty or anything else."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def sacct_kib(text: str) -> int | None:
    """A sacct size in KiB: ``123456K``, ``1.5G``, ``0``; a bare number is bytes (sacct
    adds a suffix from K up); None for empty or anything else."""
    match = _SIZE.match(text.strip())
    if match is None:
        return None
    number, unit = match.groups()
    return round(float(number) * _TO_KIB[unit.upper()])


def job_usage(user: str, system: str, elapsed: str, nodes: str, start: float | None) -> Usage:
    """The job line's figures (its steps' MaxRSS come with `with_step`)."""
    node = nodes.strip()
    return Usage(
        cpu_user=sacct_seconds(user),
        cpu_sys=sacct_seconds(system),
        wall=sacct_seconds(elapsed),
        start=start,
        node=None if not node or node.lower().startswith("none") else node,
        source="sacct",
    )


def with_step(usage: Usage, max_rss: str) -> Usage:
    """`usage` with one more step's MaxRSS taken into its peak."""
    rss = sacct_kib(max_rss)
    if rss is None or (usage.maxrss_kb is not None and usage.maxrss_kb >= rss):
        return usage
    return replace(usage, maxrss_kb=rss)
