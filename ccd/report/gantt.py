"""The timeline of a run report, laid out (pure): bars on lanes, bands, a time axis.

Every attempt that ran is one bar from its start to its end (to the report's time
while it runs), on a lane of its job group's band.  Attempts of a group that do not
overlap share a lane (first fit, by start), so a 1,000-element array run 16 at a
time is a band of 16 lanes, and a job's retries follow each other on one lane.  With
more groups than `MAX_BANDS` every attempt goes into one band packed the same way:
the picture then shows how many ran at once, and each bar's title names its job.
Lanes get thinner as there are more of them, so the drawing stays near
`TARGET_HEIGHT` pixels; a batch job's time in its queue is a thin bar of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: more job groups than this share one band
MAX_BANDS = 60
#: pixels the lanes aim to take together, and the bounds of one lane
TARGET_HEIGHT = 900
LANE_MAX = 16
LANE_MIN = 2
#: at most this many ticks on the time axis
MAX_TICKS = 10
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


@dataclass(frozen=True, slots=True)
class Bar:
    job: str
    attempt: int
    state: str
    lane: int
    #: seconds from the timeline's start
    begin: float
    finish: float
    #: a batch job's submit, in the same seconds (None: no time in a queue)
    queued: float | None
    title: str


@dataclass(frozen=True, slots=True)
class Band:
    label: str
    first_lane: int
    lanes: int


@dataclass(frozen=True, slots=True)
class Gantt:
    #: epoch seconds of the timeline's 0
    origin: float
    #: seconds the axis covers
    span: float
    bars: list[Bar]
    bands: list[Band]
    lanes: int
    lane_height: int
    #: (seconds from the start, label)
    ticks: list[tuple[float, str]]


def offset_text(seconds: float) -> str:
    """An axis label: ``0``, ``45s``, ``2m``, ``1m30s``, ``2h``, ``1h30m``, ``2d``."""
    whole = round(seconds)
    if whole == 0:
        return "0"
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return "".join(shown[:2])


def tick_step(span: float) -> float:
    """The smallest round step that puts at most MAX_TICKS ticks on `span` seconds."""
    for step in _STEPS:
        if span / step <= MAX_TICKS:
            return float(step)
    day = 86400.0
    return day * max(1, -(-span // (day * MAX_TICKS)))


def _pack(items: list[tuple[float, float, int]]) -> dict[int, int]:
    """First-fit lanes for (begin, finish, key) intervals: key -> lane."""
    ends: list[float] = []
    lanes: dict[int, int] = {}
    for begin, finish, key in sorted(items):
        for lane, end in enumerate(ends):
            if end <= begin:
                ends[lane] = finish
                lanes[key] = lane
                break
        else:
            lanes[key] = len(ends)
            ends.append(finish)
    return lanes


def _title(entry: Mapping[str, Any], begin: float, finish: float) -> str:
    words = [f"{entry['job']} attempt {entry['attempt']}", str(entry["state"])]
    words.append(f"{offset_text(begin)} to {offset_text(finish)}")
    return ", ".join(words)


def layout(attempts: Iterable[Mapping[str, Any]], now: float) -> Gantt:
    """The timeline of a report's attempts (the API's entries); `now` ends running bars."""
    ran = [a for a in attempts if a.get("attempt", 0) >= 1 and a.get("start") is not None]
    if not ran:
        return Gantt(now, 0.0, [], [], 0, LANE_MAX, [(0.0, "0")])
    origin = min(min(a["start"], a.get("submitted") or a["start"]) for a in ran)
    spans = [(a["start"] - origin, (a.get("end") or max(now, a["start"])) - origin) for a in ran]
    span = max(max(f for _, f in spans), 1e-3)
    groups: dict[str, list[int]] = {}
    for index, entry in enumerate(ran):
        groups.setdefault(str(entry.get("group") or entry["job"]), []).append(index)
    if len(groups) > MAX_BANDS:
        groups = {f"all {len(ran)} attempts": list(range(len(ran)))}
    bars: list[Bar | None] = [None] * len(ran)
    bands: list[Band] = []
    lane_base = 0
    for label, members in groups.items():
        lanes = _pack([(spans[i][0], spans[i][1], i) for i in members])
        count = max(lanes.values()) + 1
        jobs = len({ran[i]["job"] for i in members})
        bands.append(Band(label if jobs == 1 else f"{label} ({jobs} jobs)", lane_base, count))
        for i in members:
            entry, (begin, finish) = ran[i], spans[i]
            submitted = entry.get("submitted")
            queued = None if submitted is None else max(0.0, submitted - origin)
            bars[i] = Bar(
                str(entry["job"]), int(entry["attempt"]), str(entry["state"]),
                lane_base + lanes[i], begin, finish, queued, _title(entry, begin, finish),
            )  # fmt: skip
        lane_base += count
    height = max(LANE_MIN, min(LANE_MAX, TARGET_HEIGHT // max(1, lane_base)))
    step = tick_step(span)
    ticks = [(i * step, offset_text(i * step)) for i in range(int(span // step) + 1)]
    return Gantt(origin, span, [b for b in bars if b is not None], bands, lane_base, height, ticks)
