"""Folding big groups for the dashboard's graph (ccd/web/collapse.py), table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from ccd.web.collapse import COLLAPSE_OVER, collapse, counts_text, group_of, group_state


def job(name: str, state: str = "pending", needs: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "state": state, "needs": needs or [], "host": "localhost"}


def sweep(size: int) -> list[dict[str, Any]]:
    """prepare → train[0..size-1] → evaluate (which needs every element)."""
    elements = [
        job(f"train[{i}]", "succeeded" if i % 2 else "running", ["prepare"]) for i in range(size)
    ]
    return [
        job("prepare", "succeeded"),
        *elements,
        job("evaluate", needs=[e["name"] for e in elements]),
    ]


@pytest.mark.parametrize(
    ("name", "group"),
    [("train[3]", "train"), ("a[x=1]", "a"), ("a[0][1]", "a[0]"), ("plain", None), ("[3]", None)],
)
def test_group_of(name: str, group: str | None) -> None:
    assert group_of(name) == group


def test_a_small_group_is_drawn_element_by_element() -> None:
    jobs = sweep(COLLAPSE_OVER)
    assert collapse(jobs) == (jobs, {})


def test_a_big_group_is_one_node_between_its_parents_and_children() -> None:
    rows, folded = collapse(sweep(COLLAPSE_OVER + 1))
    assert folded == {"train[×51]": [f"train[{i}]" for i in range(51)]}
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == ["prepare", "train[×51]", "evaluate"]
    assert by_name["train[×51]"]["needs"] == ["prepare"]
    assert by_name["evaluate"]["needs"] == ["train[×51]"]
    group = by_name["train[×51]"]
    assert group["state"] == "running"
    assert group["message"] == "26 running, 25 succeeded"
    assert "host" not in group


def test_an_expanded_group_stays_open_and_is_no_fan_out_then() -> None:
    jobs = sweep(COLLAPSE_OVER + 1)
    assert collapse(jobs, expand={"train[×51]"}) == (jobs, {})


def test_the_group_of_the_job_a_neighbourhood_is_drawn_around_stays_open() -> None:
    jobs = sweep(COLLAPSE_OVER + 1)
    assert collapse(jobs, keep={"train[7]"}) == (jobs, {})
    assert collapse(jobs, keep={"prepare"})[1] != {}


def test_a_generated_fan_out_is_one_node_too() -> None:
    fits = [job(f"fit-{i}", "succeeded", ["load"]) for i in range(60)]
    jobs = [job("load", "succeeded"), *fits, job("pick", needs=[f["name"] for f in fits])]
    jobs.append(job("lonely", needs=["load"]))  # other children: not the same fan
    rows, folded = collapse(jobs)
    assert list(folded) == ["fit-0 … fit-59 [×60]"]
    assert [r["name"] for r in rows] == ["load", "fit-0 … fit-59 [×60]", "pick", "lonely"]
    assert rows[2]["needs"] == ["fit-0 … fit-59 [×60]"]
    assert rows[1]["message"] == "60 succeeded"


def test_elements_needing_each_other_do_not_make_a_loop() -> None:
    chain = [job(f"s[{i}]", needs=[f"s[{i - 1}]"] if i else []) for i in range(60)]
    rows, folded = collapse(chain)
    assert list(folded) == ["s[×60]"]
    assert rows == [{"name": "s[×60]", "state": "pending", "needs": [], "progress": None,
                     "message": "60 pending"}]  # fmt: skip


@pytest.mark.parametrize(
    ("states", "shown"),
    [
        (["succeeded", "failed", "running"], "failed"),
        (["succeeded", "running"], "running"),
        (["succeeded", "pending"], "pending"),
        (["succeeded", "skipped"], "skipped"),
        (["succeeded"], "succeeded"),
    ],
)
def test_the_state_a_group_shows(states: list[str], shown: str) -> None:
    assert group_state(states) == shown


def test_counts_text() -> None:
    assert counts_text(["succeeded", "failed", "succeeded"]) == "1 failed, 2 succeeded"
