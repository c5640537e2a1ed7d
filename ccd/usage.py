"""What an attempt cost: CPU time, peak RSS, where and when it ran (pure, stdlib only).

The figures come from one of these, best first (`Usage.source`):

``kernel``   a local job's wrapper reaped by the daemon: ``wait4`` of the wrapper gives
             the CPU time of the wrapper and of every descendant that was waited for,
             and the largest peak RSS among them (getrusage's ``ru_maxrss``) -- or,
             for a job smaller than the daemon, only that it is at most the daemon's
             (``maxrss_bound``: the spawned wrapper starts with the daemon's mark)
``wrapper``  the wrapper asked the kernel itself, after the job, when no daemon will
             reap it (SSH and Slurm jobs, a local job whose daemon restarted): the same
             figures through getrusage(RUSAGE_CHILDREN), written to the ``usage`` file
``times``    the same file, but only the CPU time (the sh built-in ``times``): the
             host had no ``python3`` to ask getrusage for the peak RSS
``sacct``    Slurm's accounting: TotalCPU, the largest MaxRSS of the job's steps (the
             sum of a step's processes, sampled every JobAcctGatherFrequency), Elapsed

"Peak RSS" is therefore the largest single process of the job's tree (kernel, wrapper),
or the sampled sum of a Slurm step's processes (sacct): not the same thing for a job
that runs several big processes at once (see docs/decisions.md).

The ``usage`` file is one line of ``key=value`` words (unknown keys are ignored)::

    utime=1.020 stime=0.100 maxrss_kb=204800 start=1764806400.123 end=1764806401.4 node=n1

or, written by the sh built-in ``times`` alone, its two lines (the shell's and its
children's user and system time, ``0m1.020000s 0m0.100000s``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

#: the run directory's file with the job's figures, written before ``exit``
USAGE = "usage"

_TIMES_WORD = re.compile(r"^(?:(\d+)m)?\s*(\d+(?:[.,]\d*)?)s$")


@dataclass(frozen=True, slots=True)
class Usage:
    #: user CPU seconds of the job's processes
    cpu_user: float | None = None
    #: system CPU seconds of the job's processes
    cpu_sys: float | None = None
    #: peak resident set size in KiB (see the module docstring for what of)
    maxrss_kb: int | None = None
    #: True: the peak is at most `maxrss_kb`, not known exactly (a small local job:
    #: the kernel's figure is the daemon's own, see `ccd.executors.local`)
    maxrss_bound: bool | None = None
    #: when the job started on its host (epoch seconds), if the host said
    start: float | None = None
    #: elapsed seconds as the host or the batch system counted them
    wall: float | None = None
    #: the machine it ran on (a Slurm node), if known
    node: str | None = None
    #: where the figures come from: kernel, wrapper, times, sacct
    source: str = "wrapper"

    @property
    def cpu(self) -> float | None:
        """User plus system CPU seconds; None if neither is known."""
        if self.cpu_user is None and self.cpu_sys is None:
            return None
        return (self.cpu_user or 0.0) + (self.cpu_sys or 0.0)

    def to_data(self) -> dict[str, Any]:
        """As event data: the known fields only (not `asdict`, which deep-copies: one
        of these is made per job)."""
        return {k: v for k in _FIELDS if (v := getattr(self, k)) is not None}

    @classmethod
    def from_data(cls, data: Any) -> Usage | None:
        """From event data (what `to_data` made); None for anything that is not a mapping."""
        if not isinstance(data, dict):
            return None
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    def over(self, fallback: Usage | None) -> Usage:
        """These figures, with `fallback`'s where these have none (or zero CPU, which is
        what sacct shows when the cluster gathers none)."""
        if fallback is None:
            return self
        changes: dict[str, Any] = {}
        for name in ("cpu_user", "cpu_sys", "start", "wall", "node"):
            mine, theirs = getattr(self, name), getattr(fallback, name)
            if theirs is not None and (mine is None or (name.startswith("cpu") and not mine)):
                changes[name] = theirs
        if self.maxrss_kb is None and fallback.maxrss_kb is not None:
            changes.update(maxrss_kb=fallback.maxrss_kb, maxrss_bound=fallback.maxrss_bound)
        return replace(self, **changes)


_FIELDS = tuple(f.name for f in fields(Usage))


def times_seconds(word: str) -> float | None:
    """One time of the sh built-in ``times``: ``0m1.020000s`` (dash), ``1m2.5s``,
    ``0m 0.10s`` (busybox), ``1.02s``; None if it is not one."""
    match = _TIMES_WORD.match(word.strip())
    if match is None:
        return None
    minutes = int(match.group(1) or 0)
    return 60 * minutes + float(match.group(2).replace(",", "."))


def _times_output(lines: list[str]) -> Usage | None:
    """``times``' two lines: the shell's own times, then its children's (the job's)."""
    if len(lines) < 2:
        return None
    words = re.findall(r"(?:\d+m\s*)?\d+(?:[.,]\d*)?s", lines[1])
    if len(words) < 2:
        return None
    user, system = times_seconds(words[0]), times_seconds(words[1])
    if user is None or system is None:
        return None
    return Usage(cpu_user=user, cpu_sys=system, source="times")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # no NaN, inf


def parse_usage(text: str) -> Usage | None:
    """The ``usage`` file's figures; None if it is empty (not written) or holds none."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    if "=" not in lines[0]:
        return _times_output(lines)
    words = dict(word.partition("=")[::2] for word in lines[0].split() if "=" in word)
    numbers = {k: _number(v) for k, v in words.items() if k != "node"}
    rss = numbers.get("maxrss_kb")
    start, end = numbers.get("start"), numbers.get("end")
    usage = Usage(
        cpu_user=numbers.get("utime"),
        cpu_sys=numbers.get("stime"),
        maxrss_kb=None if rss is None else int(rss),
        start=start,
        wall=None if start is None or end is None else max(0.0, end - start),
        node=words.get("node") or None,
        source="wrapper",
    )
    return None if usage == Usage() else usage
