"""Submit-time parameters: declared with defaults or types, given as text, referred to
as ${{ params.NAME }} (a shell variable, never spliced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccd.commands import resolve
from ccd.errors import SpecError
from ccd.spec.export import workflow_yaml
from ccd.spec.model import Workflow
from ccd.spec.validate import load_workflow_text
from tests.unit.shell_words import evaluated

FLOW = """
name: p
params:
  epochs: 10
  lr: {type: float, default: 0.1}
  data: {type: str, help: where the data is}
  fast: false
jobs:
  train:
    run: 'train --epochs ${{ params.epochs }} --data "${{ params.data }}"'
    args: []
    env: {LR: "lr=${{ params.lr }}"}
"""


def load(text: str, params: dict[str, str] | None = None) -> Workflow:
    return load_workflow_text(text, source="/tmp/p.yaml", base_dir=Path("/tmp"), params=params)


def problems(text: str, params: dict[str, str] | None = None) -> list[tuple[str, int, str]]:
    with pytest.raises(SpecError) as caught:
        load(text, params)
    return [(p.code, p.line, p.message) for p in caught.value.problems]


def test_values_are_defaults_or_given_and_read_as_their_type() -> None:
    wf = load(FLOW, {"data": "/d", "epochs": "20", "fast": "yes"})
    assert wf.params == {"epochs": 20, "lr": 0.1, "data": "/d", "fast": True}


def test_a_reference_is_a_shell_variable_and_every_param_is_in_the_environment() -> None:
    hostile = '$(touch /tmp/x) "; rm -rf ~'
    wf = load(FLOW, {"data": hostile})
    job = wf.jobs["train"]
    res = resolve(job, outputs={}, is_ancestor=lambda _: False, base_env={}, params=wf.params)
    assert res.command == 'train --epochs ${CCD_PARAM_EPOCHS} --data "${CCD_PARAM_DATA}"'
    assert res.env["CCD_PARAM_DATA"] == hostile
    assert res.env["CCD_PARAM_FAST"] == "false"
    assert evaluated(res.exports["LR"]) == "lr=0.1"


@pytest.mark.parametrize(
    ("given", "code", "line", "message"),
    [
        ({}, "missing-param", 6, "param data has no default: give it at submit (--set data=VALUE)"),
        ({"data": "x", "epochs": "ten"}, "bad-param", 4, "param epochs is int: 'ten'"),
        ({"data": "x", "fast": "maybe"}, "bad-param", 7, "param fast is bool: 'maybe'"),
        ({"data": "x", "epoch": "3"}, "unknown-param", 3, "did you mean 'epochs'"),
    ],
)
def test_values_given_at_submit_are_checked(
    given: dict[str, str], code: str, line: int, message: str
) -> None:
    [(got_code, got_line, got_message)] = problems(FLOW, given)
    assert (got_code, got_line) == (code, line)
    assert message in got_message


def test_a_reference_to_an_undeclared_param_is_located() -> None:
    found = problems("params: {epochs: 1}\njobs:\n  a: {run: 'x ${{ params.epoch }}'}\n")
    assert found[0][:2] == ("unknown-param", 3)
    assert "declares no param 'epoch' (did you mean 'epochs'?)" in found[0][2]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{n: [1]}", "give a default"),
        ("{n: {type: list}}", "type must be one of int, float, str, bool"),
        ("{n: {type: int, default: x}}", "its default 'x' is not int"),
        ("{n: {kind: int}}", "unknown key 'kind'"),
        ("{9n: 1}", "param name"),
    ],
)
def test_bad_declarations(block: str, message: str) -> None:
    [(code, _line, got)] = problems(f"params: {block}\njobs:\n  a: {{run: x}}\n")
    assert code == "bad-param" and message in got


def test_an_export_keeps_the_values_it_ran_with() -> None:
    wf = load(FLOW, {"data": "/d", "epochs": "20"})
    again = load(workflow_yaml(wf))
    assert again.params == wf.params
    assert again.model_dump(exclude={"source"}) == wf.model_dump(exclude={"source"})
