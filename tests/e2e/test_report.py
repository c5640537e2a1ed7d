"""`ccctl report` as a user types it: the table, `--json`, `--html`, against a real daemon."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import DaemonProc
from tests.e2e.conftest import DEADLINE, Ccctl

pytestmark = pytest.mark.timeout(4 * DEADLINE)

WORKFLOW = """\
name: costs
jobs:
  flaky: {run: 'test "$CCD_ATTEMPT" -ge 2 || exit 3', retries: 1}
  sweep: {needs: [flaky], array: 3, run: 'echo element $CCD_ARRAY_INDEX'}
  alert: {needs: [flaky], when: failure, run: 'true'}
"""


@pytest.fixture
def finished(daemon: DaemonProc, ccctl: Ccctl, work: Path) -> str:
    (work / "costs.yaml").write_text(WORKFLOW)
    result = ccctl("submit", "costs.yaml", "--watch")
    assert result.code == 0, str(result)
    return "costs"


def test_the_table_has_a_line_per_attempt_totals_and_sizing(ccctl: Ccctl, finished: str) -> None:
    result = ccctl("report", finished)
    assert result.code == 0, str(result)
    lines = result.lines
    assert re.match(r"costs \(\w+\) succeeded: 5 jobs, 5 attempts in ", lines[0]), lines[0]
    assert lines[1].split()[:3] == ["Job", "Att", "State"]
    rows = [line.split() for line in lines[2:7]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("flaky", "1", "failed"),
        ("flaky", "2", "succeeded"),
        ("sweep[0]", "1", "succeeded"),
        ("sweep[1]", "1", "succeeded"),
        ("sweep[2]", "1", "succeeded"),
    ]
    assert lines[7].split()[:3] == ["alert", "-", "skipped"]
    assert lines[8].startswith("total: 5 jobs")
    groups = [line.split()[0] for line in lines[10:13]]
    assert groups == ["Group", "flaky", "sweep"]
    assert lines[-1].startswith("Sizing Slurm requests:")


def test_json_is_the_api_s_report(ccctl: Ccctl, finished: str) -> None:
    data = ccctl("report", finished, "--json").json()
    assert set(data) == {"workflow", "generated", "attempts", "totals", "groups"}
    assert data["workflow"]["name"] == "costs"
    first = data["attempts"][0]
    assert (first["job"], first["attempt"], first["state"], first["exit_code"]) == (
        "flaky",
        1,
        "failed",
        3,
    )
    assert first["source"] == "kernel" and first["cpu"] is not None
    assert first["maxrss_kb"] is not None and first["cached"] == "no"
    assert data["totals"]["attempts"] == 5
    assert [g["group"] for g in data["groups"]] == ["flaky", "sweep"]


def test_html_is_one_self_contained_page(ccctl: Ccctl, finished: str, work: Path) -> None:
    result = ccctl("report", finished, "--html", "out.html")
    assert result.code == 0 and result.out == "wrote out.html\n", str(result)
    page = (work / "out.html").read_text()
    assert not re.search(r"https?:", page) and "<script" not in page
    root = ET.fromstring(page.split("\n", 1)[1])
    bars = [r for r in root.iter("rect") if "bar" in r.get("class", "").split()]
    assert len(bars) == 5  # one per attempt; the skipped alert has none


def test_usage_errors(ccctl: Ccctl, finished: str) -> None:
    both = ccctl("report", finished, "--json", "--html", "x.html")
    assert both.code == 2 and "choose one" in both.err
    missing = ccctl("report", "nope")
    assert missing.code == 1 and "no workflow with id or name 'nope'" in missing.err
