"""ccd.cli.watch: the watch model (the store's fold, fed by events), its change lines,
and the height-bounded live view."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccd.cli.watch import WatchModel, watch_renderable
from ccd.fold import JobRow
from tests.unit.cli_data import T0, event, make_job, make_status, render


def fields(row: JobRow, keys: Any) -> dict[str, Any]:
    """`keys` of a job's row, its JSON columns decoded."""
    out = {key: getattr(row, key) for key in keys}
    if "outputs" in out:
        out["outputs"] = json.loads(out["outputs"])
    return out


# -- WatchModel.apply --------------------------------------------------------------

APPLY_CASES = [
    pytest.param(
        make_job("train", "queued", attempt=1),
        event("job.state", "train", {"state": "running", "attempt": 1}, at=1),
        ["12:00:01 train running (attempt 1)"],
        {"state": "running", "attempt": 1, "started": T0 + 1, "ended": None},
        id="running",
    ),
    pytest.param(
        make_job("train", "running", attempt=1, started=T0),
        event("job.state", "train", {"state": "failed", "exit_code": 3, "reason": "oom"}, at=9),
        ["12:00:09 train failed exit=3: oom"],
        {"state": "failed", "exit_code": 3, "reason": "oom", "started": T0, "ended": T0 + 9},
        id="failed",
    ),
    pytest.param(
        make_job("train", "running", attempt=1, started=T0),
        event("job.state", "train", {"state": "succeeded", "exit_code": 0}, at=30),
        ["12:00:30 train succeeded exit=0"],
        {"state": "succeeded", "exit_code": 0, "ended": T0 + 30},
        id="succeeded",
    ),
    pytest.param(
        make_job("train", "running", attempt=1, started=T0),
        event("job.state", "train", {"state": "timed_out", "reason": "ran past 10s"}, at=10),
        ["12:00:10 train timed_out: ran past 10s"],
        {"state": "timed_out", "ended": T0 + 10},
        id="timed-out",
    ),
    pytest.param(
        make_job("report"),
        event("job.state", "report", {"state": "skipped", "reason": "train failed"}, at=11),
        ["12:00:11 report skipped: train failed"],
        {"state": "skipped", "started": None, "ended": T0 + 11},
        id="skipped",
    ),
    pytest.param(
        make_job("train", "running", attempt=1, started=T0, progress=80.0, message="epoch 8"),
        event("job.state", "train", {"state": "queued", "reason": "retry in 2s"}, at=12),
        ["12:00:12 train queued: retry in 2s"],
        {"state": "queued", "started": None, "progress": None, "message": None, "attempt": 1},
        id="retry-resets-the-attempt's-numbers",
    ),
    pytest.param(
        make_job("train", "queued"),
        event("job.launched", "train", {"attempt": 2, "handle": {"pid": 42}}, at=2),
        [],
        # the fold records the handle; the attempt comes with the job's state events
        {"attempt": 0, "state": "queued", "handle": '{"pid":42}'},
        id="launched",
    ),
    pytest.param(
        make_job("train", "running", started=T0),
        event("job.progress", "train", {"progress": 42.5, "message": "epoch 3/10"}, at=5),
        ["12:00:05 train progress 42.5% epoch 3/10"],
        {"progress": 42.5, "message": "epoch 3/10"},
        id="progress",
    ),
    pytest.param(
        make_job("train", "running", started=T0, progress=42.1, message="epoch 3/10"),
        event("job.progress", "train", {"progress": 42.9, "message": "epoch 3/10"}, at=6),
        [],
        {"progress": 42.9},
        id="progress-same-integer-is-quiet",
    ),
    pytest.param(
        make_job("train", "running", started=T0, progress=42.0, message="epoch 3/10"),
        event("job.progress", "train", {"progress": None, "message": "epoch 4/10"}, at=7),
        ["12:00:07 train progress epoch 4/10"],
        {"progress": 42.0, "message": "epoch 4/10"},
        id="progress-message-only",
    ),
    pytest.param(
        make_job("train", "running", started=T0),
        event("job.progress", "train", {"progress": 50}, at=8),
        ["12:00:08 train progress 50%"],
        {"progress": 50, "message": None},
        id="progress-value-only",
    ),
    pytest.param(
        make_job("train", "running", started=T0),
        event("job.output", "train", {"key": "acc", "value": "0.97"}, at=20),
        ["12:00:20 train output acc=0.97"],
        {"outputs": {"acc": "0.97"}},
        id="output",
    ),
    pytest.param(
        make_job("train", "running", started=T0),
        event("job.warning", "train", {"message": "bad marker: progress=abc"}, at=21),
        ["12:00:21 train warning: bad marker: progress=abc"],
        {"state": "running"},
        id="warning",
    ),
    pytest.param(
        make_job("train", "running", started=T0),
        event("job.something_new", "train", {"x": 1}, at=22),
        [],
        {"state": "running"},
        id="unknown-kind-is-ignored",
    ),
]


@pytest.mark.parametrize(("before", "ev", "lines", "after"), APPLY_CASES)
def test_apply_job_events(
    before: dict[str, Any], ev: dict[str, Any], lines: list[str], after: dict[str, Any]
) -> None:
    model = WatchModel(make_status(before))
    assert model.apply(ev) == lines
    assert fields(model.job(before["name"]), after) == after


WORKFLOW_CASES = [
    pytest.param(
        event("workflow.state", None, {"state": "failed", "reason": "1 job failed"}, at=40),
        ["12:00:40 workflow failed: 1 job failed"],
        {"state": "failed", "ended": T0 + 40},
        True,
        id="failed",
    ),
    pytest.param(
        event("workflow.state", None, {"state": "succeeded"}, at=41),
        ["12:00:41 workflow succeeded"],
        {"state": "succeeded", "ended": T0 + 41},
        True,
        id="succeeded",
    ),
    pytest.param(
        event("workflow.state", None, {"state": "cancelled"}, at=42),
        ["12:00:42 workflow cancelled"],
        {"state": "cancelled"},
        True,
        id="cancelled",
    ),
    pytest.param(
        event("workflow.state", None, {"state": "running"}, at=43),
        ["12:00:43 workflow running"],
        {"state": "running", "ended": None},
        False,
        id="running-again",
    ),
    pytest.param(
        event("workflow.submitted", None, {"name": "mnist", "spec": {}, "source": "x"}),
        ["12:00:00 workflow submitted mnist"],
        {"state": "running"},
        False,
        id="submitted",
    ),
    pytest.param(
        event("job.warning", None, {"message": "host cluster unreachable"}, at=3),
        ["12:00:03 workflow warning: host cluster unreachable"],
        {"state": "running"},
        False,
        id="workflow-warning",
    ),
]


@pytest.mark.parametrize(("ev", "lines", "after", "finished"), WORKFLOW_CASES)
def test_apply_workflow_events(
    ev: dict[str, Any], lines: list[str], after: dict[str, Any], finished: bool
) -> None:
    model = WatchModel(make_status(make_job("train")))
    assert not model.finished
    assert model.apply(ev) == lines
    assert {key: getattr(model.workflow, key) for key in after} == after
    assert model.finished is finished


def test_a_whole_attempt_prints_one_line_per_change() -> None:
    model = WatchModel(make_status(make_job("train")))
    events = [
        event("job.state", "train", {"state": "queued"}, at=0),
        event("job.launched", "train", {"attempt": 1, "handle": {}}, at=1),
        event("job.state", "train", {"state": "running", "attempt": 1}, at=1),
        event("job.progress", "train", {"progress": 10.0, "message": "epoch 1/10"}, at=2),
        event("job.progress", "train", {"progress": 10.4, "message": "epoch 1/10"}, at=3),
        event("job.progress", "train", {"progress": 20.0, "message": "epoch 2/10"}, at=4),
        event("job.state", "train", {"state": "succeeded", "exit_code": 0}, at=5),
        event("workflow.state", None, {"state": "succeeded"}, at=5),
    ]
    lines = [line for ev in events for line in model.apply(ev)]
    assert lines == [
        "12:00:00 train queued",
        "12:00:01 train running (attempt 1)",
        "12:00:02 train progress 10% epoch 1/10",
        "12:00:04 train progress 20% epoch 2/10",
        "12:00:05 train succeeded exit=0",
        "12:00:05 workflow succeeded",
    ]
    assert model.finished and model.last_seq == events[-1]["seq"]


def test_a_retry_prints_progress_again() -> None:
    model = WatchModel(make_status(make_job("train", "running", attempt=1, started=T0)))
    progress = {"progress": 50.0}
    assert model.apply(event("job.progress", "train", progress, at=1)) == [
        "12:00:01 train progress 50%"
    ]
    model.apply(event("job.state", "train", {"state": "queued"}, at=2))
    model.apply(event("job.state", "train", {"state": "running", "attempt": 2}, at=3))
    assert model.apply(event("job.progress", "train", progress, at=4)) == [
        "12:00:04 train progress 50%"
    ]


def test_events_already_applied_are_skipped() -> None:
    model = WatchModel({**make_status(make_job("train")), "seq": 7})
    old = {**event("job.state", "train", {"state": "queued"}), "seq": 7}
    new = {**event("job.state", "train", {"state": "queued"}), "seq": 8}
    assert model.apply(old) == []
    assert model.apply(new) == ["12:00:00 train queued"]
    assert model.apply(new) == []


def test_events_of_another_workflow_are_ignored() -> None:
    model = WatchModel(make_status(make_job("train")))
    other = {**event("job.state", "train", {"state": "queued"}), "workflow_id": "00000000"}
    assert model.apply(other) == []
    assert model.job("train").state == "pending"


def test_an_unknown_job_is_added() -> None:
    model = WatchModel(make_status())
    assert model.apply(event("job.state", "new", {"state": "queued"})) == ["12:00:00 new queued"]
    assert [job.name for job in model.jobs] == ["new"]


def test_lines_stay_on_one_line() -> None:
    model = WatchModel(make_status(make_job("train", "running")))
    [line] = model.apply(event("job.progress", "train", {"progress": 1, "message": "a\nb\tc"}))
    assert line == "12:00:00 train progress 1% a b c"


# -- the watch view ------------------------------------------------------------------


def many_jobs(n: int) -> list[dict[str, Any]]:
    """The rest pending, 100 succeeded, 10 queued, 3 running, 2 failed and 1 timed out."""
    jobs = [make_job(f"p-{i:03d}", "pending") for i in range(n - 116)]
    jobs += [make_job(f"ok-{i:03d}", "succeeded", ended=T0 - 1000 + i) for i in range(100)]
    jobs += [make_job(f"q-{i}", "queued") for i in range(10)]
    jobs += [make_job(f"run-{i}", "running", progress=10.0 * i, started=T0 - 125) for i in range(3)]
    jobs += [make_job(f"bad-{i}", "failed", exit_code=1, ended=T0 - i) for i in range(2)]
    jobs += [make_job("slow", "timed_out", ended=T0 - 5, reason="ran past 1h")]
    return jobs


def test_watch_shows_a_small_workflow_whole_in_order() -> None:
    jobs = [make_job(f"j{i}", state) for i, state in enumerate(["succeeded", "running", "pending"])]
    jobs.append(make_job("j3", "running", progress=42.0, message="epoch 3/10", started=T0 - 125))
    jobs.append(make_job("j4", "failed", exit_code=2, reason="out of memory"))
    lines = render(watch_renderable(WatchModel(make_status(*jobs)), 30, 100, now=T0))
    assert len(lines) == 3 + 5
    assert lines[0].startswith("mnist (a1b2c3d4) running — 2 running, 1 succeeded, 1 failed")
    assert [line.split()[0] for line in lines[3:]] == ["j0", "j1", "j2", "j3", "j4"]
    assert "42%" in lines[6] and "2m05s" in lines[6] and "epoch 3/10" in lines[6]
    assert lines[7].rstrip().endswith("exit=2 out of memory")
    assert not any(line.startswith("…") for line in lines)


def test_watch_of_500_jobs_fits_and_shows_the_interesting_ones() -> None:
    model = WatchModel(make_status(*many_jobs(500)))
    lines = render(watch_renderable(model, 30, 100, now=T0))
    assert len(lines) == 30
    rows = [line.split()[0] for line in lines[3:-1]]
    assert rows[:3] == ["run-0", "run-1", "run-2"]
    assert rows[3:6] == ["bad-0", "bad-1", "slow"]
    assert rows[6:] == [f"ok-{i:03d}" for i in range(99, 79, -1)]  # most recently ended first
    assert lines[-1] == "… and 474 more (384 pending, 80 succeeded, 10 queued)"


@pytest.mark.parametrize("height", [1, 2, 3, 4, 5, 10, 30, 80])
@pytest.mark.parametrize("width", [30, 60, 100, 200])
def test_watch_never_exceeds_its_height(height: int, width: int) -> None:
    jobs = many_jobs(500)
    jobs[0]["name"] = "a-very-long-job-name." * 8
    jobs[1]["message"] = "line one\nline two " * 20
    model = WatchModel(make_status(*jobs))
    lines = render(watch_renderable(model, height, width, now=T0), width=width, height=height)
    assert len(lines) <= height
    assert all(len(line) <= width for line in lines)


def test_watch_treats_names_as_text() -> None:
    model = WatchModel(make_status(make_job("[bold]x[/bold]", "running", message="[red]m")))
    text = "\n".join(render(watch_renderable(model, 30, 100, now=T0)))
    assert "[bold]x[/bold]" in text and "[red]m" in text
