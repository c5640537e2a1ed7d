from __future__ import annotations

import pytest

from ccd.commands import MissingOutput, output_env_name, resolve, script_command
from ccd.spec.model import Job


def job(**kw: object) -> Job:
    return Job.model_validate({"name": "child", "workdir": "/tmp", **kw})


def test_output_reference_becomes_a_variable_not_text() -> None:
    spec = job(run="echo ${{ jobs.train.outputs.acc }}", needs=["train"])
    res = resolve(
        spec,
        outputs={"train": {"acc": "$(rm -rf /)"}},
        is_ancestor={"train"}.__contains__,
        base_env={},
    )
    assert res.command == "echo ${CCD_OUTPUT_TRAIN_ACC}"
    assert res.env["CCD_OUTPUT_TRAIN_ACC"] == "$(rm -rf /)"


def test_parent_outputs_are_in_the_environment_and_env_is_substituted() -> None:
    spec = job(run="true", needs=["a.b-c"], env={"X": "v=${{jobs.a.b-c.outputs.k}}"})
    res = resolve(
        spec,
        outputs={"a.b-c": {"k": "1"}},
        is_ancestor={"a.b-c"}.__contains__,
        base_env={"CCD_JOB": "child"},
    )
    assert res.env == {"CCD_JOB": "child", "CCD_OUTPUT_A_B_C_K": "1", "X": "v=1"}
    assert output_env_name("a.b-c", "k") == "CCD_OUTPUT_A_B_C_K"


@pytest.mark.parametrize(
    ("outputs", "ancestors", "message"),
    [
        ({}, frozenset({"x"}), "set no output 'k'"),
        ({"x": {"k": "1"}}, frozenset(), "not an ancestor"),
    ],
)
def test_missing_output(
    outputs: dict[str, dict[str, str]], ancestors: frozenset[str], message: str
) -> None:
    with pytest.raises(MissingOutput, match=message):
        resolve(
            job(run="echo ${{ jobs.x.outputs.k }}"),
            outputs=outputs,
            is_ancestor=ancestors.__contains__,
            base_env={},
        )


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("/w/a b.sh", "exec sh \"$CCD_SCRIPT\" --n '1 2'"),
        ("/w/t.py", "exec python3 -u \"$CCD_SCRIPT\" --n '1 2'"),
        ("/w/run", "exec \"$CCD_SCRIPT\" --n '1 2'"),
    ],
)
def test_script_command_quotes(script: str, expected: str) -> None:
    assert script_command(job(script=script, args=["--n", "1 2"])) == expected


def test_notebook_needs_papermill_with_a_clear_message() -> None:
    command = script_command(job(script="/w/n.ipynb"))
    assert "pip install papermill" in command
    assert 'exec papermill "$CCD_SCRIPT" "$CCD_RUN_DIR/output.ipynb"' in command
