"""Validation of ``foreach:`` and ``${{ item }}``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_spec_validate import load, problems


def test_a_literal_list_or_one_reference_to_an_ancestor(tmp_path: Path) -> None:
    wf = load(
        "jobs:\n"
        "  split: {run: x}\n"
        "  a: {foreach: [1, {k: v}], run: 'echo ${{ item }}'}\n"
        "  b: {needs: [split], foreach: '${{ jobs.split.outputs.grid }}', run: x}\n"
        "  c: {needs: [b], run: 'echo ${{ jobs.b.outputs.acc }}'}\n",
        tmp_path,
    )
    assert wf.jobs["a"].foreach == [1, {"k": "v"}]
    assert wf.jobs["b"].foreach == "${{ jobs.split.outputs.grid }}"
    assert wf.jobs["c"].needs == ["b"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            "b: {foreach: '${{ jobs.split.outputs.grid }}', run: x}",
            "not-an-ancestor",
            "refers to job 'split', which is not an ancestor of 'b': add it to needs",
        ),
        ("b: {foreach: 5, run: x}", "wrong-type", "foreach must be a list (foreach: [a, b])"),
        ("b: {foreach: 'a ${{ jobs.split.outputs.g }}', run: x}", "wrong-type", "one output"),
        ("b: {array: 2, foreach: [1], run: x}", "array-and-foreach", "has both array: and"),
        ("b: {run: 'echo ${{ item }}'}", "bad-reference", "only a job with foreach: has an item"),
        (
            "b: {needs: [f], run: 'echo ${{ jobs.f[0].outputs.k }}'}\n  f: {foreach: [1], run: x}",
            "bad-reference",
            "the elements of foreach job 'f' are known only when it runs",
        ),
    ],
)
def test_problems(tmp_path: Path, body: str, code: str, message: str) -> None:
    found = problems(f"jobs:\n  split: {{run: x}}\n  {body}\n", tmp_path)
    assert [(p.code, message in p.message) for p in found] == [(code, True)], found


def test_foreach_is_per_job_only(tmp_path: Path) -> None:
    [problem] = problems("defaults: {foreach: [1]}\njobs:\n  a: {run: x}\n", tmp_path)
    assert "foreach" in problem.message
