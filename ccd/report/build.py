"""A workflow's run report from its job rows and events (pure).

One entry per attempt, from the events that say when it was submitted (a batch job's
``queued`` with its handle), when it ran (``running``) and how it ended and what it
cost (``job.usage``); a job that never ran (skipped, cancelled while waiting, taken
from a cache) is one entry of attempt 0.  Times:

* ``start``: when ccd saw the attempt running; the host's own start (the wrapper's
  pid file, sacct's Start) when ccd saw no running state, or a later one than the
  host (a Slurm job started between two polls), but never before its submit;
* ``end``: when the attempt ended by its executor's account (the exit file's time);
* ``wall``: the host's own count where it has one (sacct's Elapsed, the wrapper's),
  else end - start; ``cpu_percent`` is CPU time over wall (200: two cores busy).

``groups`` has, per job group (an array's or foreach's elements are one group), the
largest wall, CPU share and peak RSS seen, and Slurm requests that would have held
them (``--mem`` +20%, ``--time`` +50%, ``--cpus-per-task`` the CPU share rounded up):
what users size their next submission from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ccd.report.units import slurm_mem, slurm_minutes
from ccd.states import FINAL_JOB_STATES
from ccd.usage import Usage

#: headroom of the suggested requests over the largest figure seen
MEM_HEADROOM = 1.2
TIME_HEADROOM = 1.5

REPORT_KINDS = ("job.state", "job.usage")


@dataclass(slots=True)
class _Attempt:
    job: str
    attempt: int
    state: str | None = None
    submitted: float | None = None
    running: float | None = None
    end: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    usage: Usage | None = None


def group_of(job: str) -> str:
    """The group a job is shown in: an array or foreach element's job (``train[3]``: train)."""
    return job[: job.index("[")] if job.endswith("]") and "[" in job else job


def cached_from(row: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    """Where a job's result was taken from instead of running it, else ``no``."""
    return str(row.get("cached_from") or state.get("cached_from") or "no")


_Attempts = dict[tuple[str, int], _Attempt]


def _collect(events: Iterable[Mapping[str, Any]]) -> tuple[_Attempts, dict[str, dict[str, Any]]]:
    """Each attempt's record, and each job's last ``job.state`` data."""
    attempts: dict[tuple[str, int], _Attempt] = {}
    last_state: dict[str, dict[str, Any]] = {}

    def of(job: str, n: int) -> _Attempt:
        found = attempts.get((job, n))
        if found is None:
            found = attempts[(job, n)] = _Attempt(job, n)
        return found

    for event in events:
        job, data, when = event.get("job"), event.get("data") or {}, float(event["time"])
        number = data.get("attempt")
        if not isinstance(job, str) or not isinstance(number, int) or isinstance(number, bool):
            continue
        if event.get("kind") == "job.usage":
            if number >= 1:
                _ended(of(job, number), data)
            continue
        last_state[job] = data
        state = data.get("state")
        if number < 1:
            continue
        if state == "running":
            rec = of(job, number)
            rec.running = rec.running if rec.running is not None else when
        elif state == "queued" and data.get("handle"):
            of(job, number).submitted = when  # a batch job: submitted, not running yet
        elif state in FINAL_JOB_STATES and (job, number) in attempts:
            # an attempt recorded before job.usage existed, or its event was lost
            rec = attempts[(job, number)]
            rec.state = rec.state or str(state)
            rec.end = rec.end if rec.end is not None else float(data.get("ended", when))
            rec.exit_code = rec.exit_code if rec.exit_code is not None else data.get("exit_code")
            rec.reason = rec.reason or data.get("reason")
    return attempts, last_state


def _ended(rec: _Attempt, data: Mapping[str, Any]) -> None:
    rec.state = str(data.get("outcome") or "failed")
    if isinstance(data.get("ended"), int | float):
        rec.end = float(data["ended"])
    rec.exit_code = data.get("exit_code")
    rec.reason = data.get("reason")
    rec.usage = Usage.from_data(data.get("usage"))


def _times(rec: _Attempt) -> tuple[float | None, float | None, float | None]:
    """(start, end, wall) of an attempt; see the module docstring."""
    usage = rec.usage or Usage()
    start = rec.running
    own = usage.start
    later = start is None or (own is not None and own < start)
    if own is not None and later and (rec.submitted is None or own >= rec.submitted):
        start = own
    if start is None:
        start = rec.submitted
    end = rec.end
    if end is not None and start is not None:
        end = max(end, start)
    wall = usage.wall
    if wall is None and start is not None and end is not None:
        wall = end - start
    return start, end, wall


def _entry(rec: _Attempt, row: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    usage = rec.usage or Usage()
    start, end, wall = _times(rec)
    cpu = usage.cpu
    share = cpu / wall if cpu is not None and wall else None
    return {
        "job": rec.job,
        "group": group_of(rec.job),
        "attempt": rec.attempt,
        # an attempt without an end yet is the job's current one: the row's state
        "state": rec.state or str(row.get("state", "unknown")),
        "host": row.get("host", "localhost"),
        "node": usage.node,
        "executor": row.get("executor", "local"),
        "submitted": rec.submitted,
        "start": start,
        "end": end,
        "wall": wall,
        "cpu": cpu,
        "cpu_user": usage.cpu_user,
        "cpu_sys": usage.cpu_sys,
        "cpu_percent": None if share is None else round(100 * share, 1),
        "maxrss_kb": usage.maxrss_kb,
        # True: at most maxrss_kb (a local job smaller than the daemon), not exact
        "maxrss_bound": bool(usage.maxrss_bound),
        "exit_code": rec.exit_code,
        "reason": rec.reason,
        "cached": "no",
        "source": None if rec.usage is None else usage.source,
    }


def _never_ran(row: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    rec = _Attempt(str(row["name"]), 0, state=str(row.get("state", "pending")))
    rec.exit_code, rec.reason = row.get("exit_code"), row.get("reason")
    return _entry(rec, row, state)


def _totals(entries: list[dict[str, Any]], jobs: int) -> dict[str, Any]:
    ran = [e for e in entries if e["attempt"] >= 1]
    starts = [e["start"] for e in ran if e["start"] is not None]
    ends = [e["end"] for e in ran if e["end"] is not None]
    cpu = sum(e["cpu"] for e in ran if e["cpu"] is not None)
    wall = sum(e["wall"] for e in ran if e["wall"] is not None)
    span = max(ends) - min(starts) if starts and ends else None
    rss, rss_bound = _largest_rss(ran)
    return {
        "jobs": jobs,
        "attempts": len(ran),
        "start": min(starts) if starts else None,
        "end": max(ends) if ends else None,
        "span": span,
        "wall": wall,
        "cpu": cpu,
        "cpu_percent": round(100 * cpu / span, 1) if span else None,
        "maxrss_kb": rss,
        "maxrss_bound": rss_bound,
    }


def _largest_rss(entries: list[dict[str, Any]]) -> tuple[int | None, bool]:
    """The largest peak RSS of `entries`, and whether it is only a bound (an exact
    figure wins over a bound of the same size)."""
    known = [(e["maxrss_kb"], not e["maxrss_bound"]) for e in entries if e["maxrss_kb"] is not None]
    if not known:
        return None, False
    value, exact = max(known)
    return value, not exact


def _groups(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry["attempt"] >= 1:
            groups.setdefault(entry["group"], []).append(entry)
    out = []
    for name, members in groups.items():
        walls = [e["wall"] for e in members if e["wall"] is not None]
        shares = [e["cpu_percent"] for e in members if e["cpu_percent"] is not None]
        max_wall = max(walls) if walls else None
        max_rss, rss_bound = _largest_rss(members)
        max_share = max(shares) if shares else None
        # the CPU share rounded up to cores, a job that is 2 % over one core still one
        cores = None if max_share is None else max(1, math.ceil(max_share / 100 - 0.05))
        out.append(
            {
                "group": name,
                "jobs": len({e["job"] for e in members}),
                "attempts": len(members),
                "executor": members[0]["executor"],
                "max_wall": max_wall,
                "max_cpu_percent": max_share,
                "max_rss_kb": max_rss,
                "max_rss_bound": rss_bound,
                "suggest": {
                    "mem": None if max_rss is None else slurm_mem(max_rss * MEM_HEADROOM),
                    "time": None if max_wall is None else slurm_minutes(max_wall * TIME_HEADROOM),
                    "cpus": cores,
                },
            }
        )
    return out


def build_report(
    workflow: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    now: float,
) -> dict[str, Any]:
    """The report of one workflow at `now`: its `rows` (the jobs, in file order) and its
    ``job.state``/``job.usage`` `events` (in order; others are ignored)."""
    attempts, last_state = _collect(events)
    by_job: dict[str, list[_Attempt]] = {}
    for rec in attempts.values():
        by_job.setdefault(rec.job, []).append(rec)
    entries: list[dict[str, Any]] = []
    rows = list(rows)
    for row in rows:
        name = str(row["name"])
        state = last_state.get(name, {})
        recs = sorted(by_job.get(name, []), key=lambda r: r.attempt)
        mine = [_entry(rec, row, state) for rec in recs] or [_never_ran(row, state)]
        # a job taken from a cache says where from (on its last, or only, entry)
        mine[-1]["cached"] = cached_from(row, state)
        entries.extend(mine)
    return {
        "workflow": {key: workflow.get(key) for key in ("id", "name", "state", "created", "ended")},
        # when this report was made: a running attempt's bar ends here
        "generated": now,
        "attempts": entries,
        "totals": _totals(entries, len(rows)),
        "groups": _groups(entries),
    }
