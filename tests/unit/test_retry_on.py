"""Which failures `retry_on` retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccd.engine import Outcome, failure_kind
from ccd.errors import SpecError
from ccd.spec.validate import load_workflow_text
from ccd.states import JobState

J = JobState


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        (Outcome(J.TIMED_OUT, "timed out after 5s"), "timeout"),
        (Outcome(J.TIMED_OUT, "timeout"), "timeout"),
        (Outcome(J.FAILED, "oom", 0), "oom"),
        (Outcome(J.FAILED, "node_fail"), "node_fail"),
        (Outcome(J.FAILED, "preempted", 0), "preempted"),
        (Outcome(J.FAILED, None, 3), "exit"),
        (Outcome(J.FAILED, "terminated by SIGKILL", 137), "exit"),
        (Outcome(J.FAILED, "lost"), "lost"),
    ],
)
def test_failure_kind(outcome: Outcome, kind: str) -> None:
    assert failure_kind(outcome) == kind


def test_retry_on_is_validated(tmp_path: Path) -> None:
    text = "jobs:\n  a: {run: x, retries: 2, retry_on: [timeout, omm]}\n"
    with pytest.raises(SpecError) as err:
        load_workflow_text(text, base_dir=tmp_path)
    [problem] = err.value.problems
    assert problem.code == "bad-value" and "did you mean 'oom'" in problem.message
    ok = load_workflow_text("jobs:\n  a: {run: x, retry_on: [oom, timeout]}\n", base_dir=tmp_path)
    assert ok.jobs["a"].retry_on == ["oom", "timeout"]
