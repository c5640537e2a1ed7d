"""Output references checked at validation: every problem at once, where it was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccd.errors import Problem, SpecError
from ccd.spec.references import Malformed, Reference, parse
from ccd.spec.validate import load_workflow_text


def problems(text: str, base: Path) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load_workflow_text(text, source="flow.yaml", base_dir=base)
    return caught.value.problems


def test_parse_splits_text_references_and_malformed_pieces() -> None:
    parts = parse("a ${{jobs.x.y.outputs.k}} b ${{ jobs.s[12].outputs.v }}${{ nope }} ${{ open")
    assert parts[0] == "a "
    assert parts[1] == Reference("${{jobs.x.y.outputs.k}}", "x.y", None, "k")
    assert parts[2] == " b "
    assert parts[3] == Reference("${{ jobs.s[12].outputs.v }}", "s", 12, "v")
    assert isinstance(parts[3], Reference) and parts[3].source == "s[12]"
    assert isinstance(parts[4], Malformed) and parts[4].written == "${{ nope }}"
    assert parts[5] == " "
    assert isinstance(parts[6], Malformed) and "unclosed" in parts[6].message
    assert parse("no references, $HOME ${X} {{ }}") == ["no references, $HOME ${X} {{ }}"]


ONE_PROBLEM = [
    (
        "unknown-job",
        "  b: {needs: a, run: 'echo ${{ jobs.zzz.outputs.x }}'}\n",
        "unknown-job",
        "refers to job 'zzz', which is not a job in this workflow",
    ),
    (
        "did-you-mean",
        "  b: {needs: a, run: 'echo ${{ jobs.aa.outputs.x }}'}\n",
        "unknown-job",
        "(did you mean 'a'?)",
    ),
    (
        "not-an-ancestor",
        "  b: {run: 'echo ${{ jobs.a.outputs.x }}'}\n",
        "not-an-ancestor",
        "which is not an ancestor of 'b': add it to needs",
    ),
    (
        "itself",
        "  b: {needs: a, run: 'echo ${{ jobs.b.outputs.x }}'}\n",
        "not-an-ancestor",
        "not an ancestor of 'b'",
    ),
    (
        "job-not-jobs",
        "  b: {needs: a, run: 'echo ${{ job.a.outputs.x }}'}\n",
        "bad-reference",
        "malformed output reference '${{ job.a.outputs.x }}' ('jobs.', not 'job.')",
    ),
    (
        "output-not-outputs",
        "  b: {needs: a, run: 'echo ${{ jobs.a.output.x }}'}\n",
        "bad-reference",
        "('.outputs.', not '.output.'); write ${{ jobs.NAME.outputs.KEY }}",
    ),
    (
        "unclosed",
        "  b: {needs: a, run: 'echo ${{ jobs.a.outputs.x'}\n",
        "bad-reference",
        "unclosed output reference '${{ jobs.a.outputs.x': end it with '}}'",
    ),
    (
        "empty",
        "  b: {needs: a, run: 'echo ${{ }}'}\n",
        "bad-reference",
        "malformed output reference '${{ }}'",
    ),
    (
        "index-of-a-plain-job",
        "  b: {needs: a, run: 'echo ${{ jobs.a[0].outputs.x }}'}\n",
        "bad-reference",
        "job 'a' is not an array job; write jobs.a.outputs.x",
    ),
    (
        "index-out-of-range",
        "  s: {array: 2, run: x}\n  b: {needs: s, run: 'echo ${{ jobs.s[2].outputs.x }}'}\n",
        "bad-reference",
        "array job 's' has elements 0 to 1",
    ),
    (
        "element-not-an-ancestor",
        "  s: {array: 2, run: x}\n  b: {needs: a, run: 'echo ${{ jobs.s[1].outputs.x }}'}\n",
        "not-an-ancestor",
        "refers to job 's', which is not an ancestor of 'b'",
    ),
    (
        "sibling-element",
        "  s: {array: 2, needs: a, run: 'echo ${{ jobs.s[0].outputs.x }}'}\n",
        "not-an-ancestor",
        "not an ancestor of 's'",
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [case[1:] for case in ONE_PROBLEM],
    ids=[case[0] for case in ONE_PROBLEM],
)
def test_one_bad_reference(tmp_path: Path, text: str, code: str, words: str) -> None:
    found = problems("jobs:\n  a: {run: 'true'}\n" + text, tmp_path)
    assert [p.code for p in found] == [code], found
    assert words in found[0].message
    # at the run: value of the last job
    last = text.splitlines()[-1]
    assert (found[0].line, found[0].column) == (text.count("\n") + 2, last.index("run: ") + 6)


def test_every_bad_reference_at_once_in_run_args_and_env(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("")
    found = problems(
        "defaults:\n"
        "  env: {D: '${{ jobs.a.outputs.d }}'}\n"
        "jobs:\n"
        "  a: {run: 'true'}\n"
        "  b:\n"
        "    needs: a\n"
        "    script: t.py\n"
        "    args: [--x, '${{ jobs.zzz.outputs.x }}', '${{ jobs.a.output.x }}']\n"
        "    env:\n"
        "      OK: '${{ jobs.a.outputs.x }}'\n"
        "      BAD: 'v=${{ job.a.outputs.x }}'\n",
        tmp_path,
    )
    where = [(p.line, p.column, p.code) for p in found]
    assert where == [
        (2, 12, "not-an-ancestor"),  # the default reaches job a itself
        (8, 17, "unknown-job"),
        (8, 46, "bad-reference"),
        (11, 12, "bad-reference"),
    ], found
    assert str(SpecError(found)).count("flow.yaml:") == 4


def test_references_that_are_fine(tmp_path: Path) -> None:
    wf = load_workflow_text(
        "jobs:\n"
        "  a: {run: 'true'}\n"
        "  s: {array: [x, y], needs: a, run: 'echo ${{ jobs.a.outputs.k }}'}\n"
        "  b: {needs: s, run: 'echo ${{jobs.s[1].outputs.v}} ${{ jobs.s.outputs.v }}'}\n"
        "  c: {needs: b, run: 'echo ${{ jobs.a.outputs.k }}', env: {E: '${{ jobs.s[0].outputs.v }}'}}\n",
        base_dir=tmp_path,
    )
    assert wf.jobs["c"].env == {"E": "${{ jobs.s[0].outputs.v }}"}  # resolved at launch


def test_a_default_env_value_is_located_in_defaults_even_when_merged(tmp_path: Path) -> None:
    found = problems(
        "defaults:\n"
        "  env: {D: '${{ jobs.nope.outputs.d }}'}\n"
        "jobs:\n"
        "  a: {run: 'true', env: {OWN: '1'}}\n",
        tmp_path,
    )
    assert [(p.line, p.column, p.code) for p in found] == [(2, 12, "unknown-job")], found
