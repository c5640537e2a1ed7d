from __future__ import annotations

import pytest

from ccd.states import (
    FINAL_JOB_STATES,
    JOB_TRANSITIONS,
    InvalidTransition,
    JobState,
    WorkflowState,
    check_transition,
    workflow_state,
)

J = JobState


def test_every_state_has_a_row() -> None:
    assert set(JOB_TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (J.PENDING, J.QUEUED),
        (J.QUEUED, J.RUNNING),
        (J.RUNNING, J.SUCCEEDED),
        (J.RUNNING, J.QUEUED),
        (J.PENDING, J.SKIPPED),
        # an earlier run reused (--resume)
        (J.PENDING, J.SUCCEEDED),
        (J.FAILED, J.PENDING),
        (J.QUEUED, J.UNKNOWN),
        (J.UNKNOWN, J.RUNNING),
        (J.UNKNOWN, J.FAILED),
    ],
)
def test_allowed(old: JobState, new: JobState) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (J.PENDING, J.RUNNING),
        (J.SKIPPED, J.RUNNING),
        (J.SUCCEEDED, J.FAILED),
        (J.PENDING, J.TIMED_OUT),
        # an unknown job is checked, then adopted or launched: never final unseen
        (J.UNKNOWN, J.SUCCEEDED),
        (J.RUNNING, J.UNKNOWN),
    ],
)
def test_refused(old: JobState, new: JobState) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(old, new)


def test_succeeded_is_final_until_a_rerun() -> None:
    # only `ccctl rerun` moves a succeeded job on: back to pending, to run again
    assert JOB_TRANSITIONS[J.SUCCEEDED] == frozenset({J.PENDING})
    assert J.SUCCEEDED.is_final and not J.RUNNING.is_final
    assert {s for s in JobState if s.is_final} == FINAL_JOB_STATES


@pytest.mark.parametrize(
    ("jobs", "cancelled", "expected"),
    [
        ([J.SUCCEEDED, J.RUNNING], False, WorkflowState.RUNNING),
        ([J.SUCCEEDED, J.SUCCEEDED], False, WorkflowState.SUCCEEDED),
        ([J.SUCCEEDED, J.FAILED, J.SKIPPED], False, WorkflowState.FAILED),
        ([J.TIMED_OUT], False, WorkflowState.FAILED),
        ([J.CANCELLED, J.SUCCEEDED], False, WorkflowState.CANCELLED),
        ([J.CANCELLED, J.FAILED], False, WorkflowState.FAILED),
        ([J.SUCCEEDED, J.SUCCEEDED], True, WorkflowState.CANCELLED),
        ([], False, WorkflowState.SUCCEEDED),
    ],
)
def test_workflow_state(jobs: list[JobState], cancelled: bool, expected: WorkflowState) -> None:
    assert workflow_state(jobs, cancelled) is expected
