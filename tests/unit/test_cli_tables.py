"""ccd.cli.format and ccd.cli.tables: the summary line, durations, `ls` and `status` tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccd.cli.format import STATE_COLOURS, event_text, format_duration, summary_line
from ccd.cli.tables import status_text, workflows_table
from ccd.states import JobState
from tests.unit.cli_data import T0, make_job, make_status, render

# -- summary and tables ----------------------------------------------------------


COUNTS = {"pending": 86, "failed": 1, "running": 3, "succeeded": 10}


def test_summary_line_from_a_summary_row() -> None:
    row = {"id": "a1b2c3d4", "name": "mnist", "state": "running", "counts": COUNTS}
    expected = "mnist (a1b2c3d4) running — 3 running, 10 succeeded, 1 failed, 86 pending"
    assert summary_line(row) == expected


def test_summary_line_from_a_status() -> None:
    jobs = [
        make_job(f"j{i}", state) for i, (state, n) in enumerate(COUNTS.items()) for _ in range(n)
    ]
    expected = "mnist (a1b2c3d4) running — 3 running, 10 succeeded, 1 failed, 86 pending"
    assert summary_line(make_status(*jobs)) == expected


def test_summary_line_without_jobs() -> None:
    assert summary_line(make_status(state="succeeded")) == "mnist (a1b2c3d4) succeeded"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (-3, "0s"), (0, "0s"), (59.9, "59s"), (60, "1m00s"), (125, "2m05s"),
     (3600, "1h00m"), (7260, "2h01m"), (90000, "1d01h")],
)  # fmt: skip
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_workflows_table_renders() -> None:
    rows = [
        {"id": "a1b2c3d4", "name": "mnist", "state": "running", "created": T0 - 125,
         "updated": T0, "ended": None, "counts": COUNTS},
        {"id": "ffff0000", "name": "[red]etl[/red]", "state": "failed", "created": T0 - 3600,
         "updated": T0, "ended": T0 - 3000, "counts": {"failed": 2}},
    ]  # fmt: skip
    text = "\n".join(render(workflows_table(rows, now=T0), width=160))
    assert "3 running, 10 succeeded, 1 failed, 86 pending" in text
    assert "a1b2c3d4" in text and "ffff0000" in text
    assert "[red]etl[/red]" in text  # names are text, never rich markup
    assert "2m05s" in text and "10m00s" in text


def test_workflows_table_without_rows_renders_a_header() -> None:
    assert "Name" in render(workflows_table([], now=T0))[0]


def test_status_table_renders() -> None:
    status = make_status(
        make_job("fetch", "succeeded", attempt=1, exit_code=0, started=T0 - 50, ended=T0 - 40),
        make_job("train", "running", attempt=2, progress=42.7, message="epoch 3/10",
                 host="cluster", started=T0 - 125),
        make_job("eval.x-1", "failed", attempt=1, exit_code=3, reason="out of memory",
                 started=T0 - 10, ended=T0 - 5),
        make_job("report"),
    )  # fmt: skip
    text = status_text(status, width=None, colour=False, now=T0)
    lines = text.splitlines()[1:]  # after the summary line
    assert "\x1b" not in text
    by_job = {line.split()[0]: line for line in lines[1:]}
    assert list(by_job) == ["fetch", "train", "eval.x-1", "report"]
    assert by_job["fetch"].split()[1:] == ["succeeded", "1", "0", "localhost", "10s"]
    assert by_job["train"].split()[1:] == [
        "running",
        "42%",
        "2",
        "cluster",
        "2m05s",
        "epoch",
        "3/10",
    ]
    assert by_job["eval.x-1"].split()[1:] == [
        "failed",
        "1",
        "3",
        "localhost",
        "5s",
        "out",
        "of",
        "memory",
    ]
    assert by_job["report"].split() == ["report", "pending", "localhost"]
    assert lines[0].split() == [
        "Job",
        "State",
        "Progress",
        "Attempt",
        "Exit",
        "Host",
        "Elapsed",
        "Reason",
    ]


def test_status_text_cuts_lines_at_the_width_and_colours_states() -> None:
    status = make_status(
        make_job("train", "running", attempt=1, reason="x" * 200, started=T0 - 5),
        make_job("a-job-with-a-long-name", "failed", attempt=1, exit_code=2),
    )
    plain = status_text(status, width=60, colour=False, now=T0).splitlines()
    assert all(len(line) <= 60 for line in plain[1:])
    assert plain[2].endswith("…")  # the long reason is cut, marked
    coloured = status_text(status, width=60, colour=True, now=T0)
    red = STATE_COLOURS["failed"]
    r, g, b = (int(red[i : i + 2], 16) for i in (1, 3, 5))
    assert f"\x1b[38;2;{r};{g};{b}mfailed\x1b[0m" in coloured
    # what is left after the colour codes is the plain text
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).splitlines() == plain


def test_every_state_has_a_colour() -> None:
    assert {s.value for s in JobState} <= STATE_COLOURS.keys()


def test_the_client_modules_import_neither_rich_nor_the_daemon() -> None:
    heavy = ("rich", "fastapi", "pydantic", "networkx", "aiosqlite", "uvicorn", "ccd.engine")
    code = (
        "import sys, ccd.cli.format, ccd.cli.tables, ccd.cli.graph\n"
        f"print([m for m in sys.modules if m.split('.')[0] in {heavy!r} or m in {heavy!r}])"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert done.stdout.strip() == "[]"


def test_status_text_from_rows_equals_from_job_objects() -> None:
    jobs = [
        make_job("fetch", "succeeded", attempt=1, exit_code=0, started=T0 - 50, ended=T0 - 40),
        make_job("train", "running", attempt=2, progress=42.7, message="epoch 3", started=T0),
    ]
    status = make_status(*jobs)
    # the daemon's `rows` shape, with the columns in another order than the table's
    fields = ["state", "name", "progress", "attempt", "exit_code", "host", "started",
              "ended", "message", "reason"]  # fmt: skip
    as_rows = {**status, "job_fields": fields, "jobs": [[j[f] for f in fields] for j in jobs]}
    expected = status_text(status, width=None, colour=False, now=T0)
    assert status_text(as_rows, width=None, colour=False, now=T0) == expected
    assert "epoch 3" in expected and "42%" in expected


EVENT_TEXTS = [
    ({"kind": "job.state", "job": "a", "data": {"state": "queued", "attempt": 0}}, "a queued"),
    (
        {"kind": "job.state", "job": "a", "data": {"state": "failed", "attempt": 2,
                                                    "exit_code": 3, "reason": "out\nof memory"}},
        "a failed (attempt 2) exit=3: out of memory",
    ),
    ({"kind": "workflow.state", "job": None, "data": {"state": "succeeded"}}, "workflow succeeded"),
    ({"kind": "job.progress", "job": "b", "data": {"progress": 42.5, "message": "e 3"}},
     "b progress 42.5% e 3"),
    ({"kind": "job.progress", "job": "b", "data": {"progress": None, "message": "m"}},
     "b progress m"),
    ({"kind": "job.output", "job": "b", "data": {"key": "acc", "value": "0.9"}}, "b output acc=0.9"),
    ({"kind": "job.warning", "job": None, "data": {"message": "slow"}}, "workflow warning: slow"),
    ({"kind": "job.launched", "job": "c", "data": {"attempt": 1}}, "c launched attempt 1"),
    ({"kind": "workflow.submitted", "job": None, "data": {"name": "w"}}, "workflow submitted w"),
    ({"kind": "workflow.jobs_added", "job": "t",
      "data": {"items": list("abcde"), "needs": {}, "reason": "foreach: 5 item(s)"}},
     "t fanned out into 5 element(s)"),
    ({"kind": "workflow.jobs_added", "job": None,
      "data": {"jobs": {f"j{i}": {} for i in range(5)}, "reason": "added by a user"}},
     "workflow added 5 job(s): j0 … j4"),
    ({"kind": "workflow.jobs_added", "job": None,
      "data": {"jobs": {"x": {}, "y": {}}, "reason": "added by a user"}},
     "workflow added 2 job(s): x, y"),
    ({"kind": "job.new_kind", "job": "c", "data": {}}, "c job.new_kind"),
]  # fmt: skip


@pytest.mark.parametrize(("ev", "text"), EVENT_TEXTS)
def test_event_text_is_one_line_saying_what_happened(ev: dict[str, object], text: str) -> None:
    assert event_text(ev) == text
