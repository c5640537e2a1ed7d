from __future__ import annotations

import json

import pytest

from ccd.commands import MissingOutput, Resolved, output_env_name, resolve, script_command
from ccd.spec.model import Job
from tests.unit.shell_words import evaluated


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
    assert res.env == {"CCD_JOB": "child", "CCD_OUTPUT_A_B_C_K": "1"}
    assert evaluated(res.exports["X"]) == "v=1"
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
    assert (
        'exec papermill --log-output --no-progress-bar "$CCD_SCRIPT" "$CCD_RUN_DIR/output.ipynb"'
        in command
    )


# --- array elements and the whole array ----------------------------------------------

SWEEP = {"sweep[0]": {"s": "a"}, "sweep[1]": {"s": "b b"}, "sweep[2]": {"s": '"c"'}}
ELEMENTS = {"sweep": ["sweep[0]", "sweep[1]", "sweep[2]"]}


def resolve_sweep(spec: Job, outputs: dict[str, dict[str, str]] = SWEEP) -> Resolved:
    return resolve(
        spec,
        outputs=outputs,
        is_ancestor=set(SWEEP).__contains__,
        base_env={},
        elements=ELEMENTS.get,
    )


def test_one_elements_output_becomes_a_variable() -> None:
    res = resolve_sweep(job(run="echo ${{ jobs.sweep[1].outputs.s }}", needs=list(SWEEP)))
    assert res.command == "echo ${CCD_OUTPUT_SWEEP_1__S}"
    assert res.env["CCD_OUTPUT_SWEEP_1__S"] == "b b"


def test_the_whole_array_is_a_json_list_in_index_order() -> None:
    spec = job(
        run='echo "${{ jobs.sweep.outputs.s }}"',
        needs=list(SWEEP),
        env={"ALL": "${{ jobs.sweep.outputs.s }}"},
    )
    res = resolve_sweep(spec)
    assert res.command == 'echo "${CCD_OUTPUT_SWEEP_S}"'
    assert json.loads(res.env["CCD_OUTPUT_SWEEP_S"]) == ["a", "b b", '"c"']
    assert evaluated(res.exports["ALL"]) == res.env["CCD_OUTPUT_SWEEP_S"]


def test_an_element_without_the_output_fails_the_whole_array_reference() -> None:
    outputs = {**SWEEP, "sweep[1]": {}}
    with pytest.raises(MissingOutput, match=r"job 'sweep\[1\]' set no output 's'"):
        resolve_sweep(job(run="echo ${{ jobs.sweep.outputs.s }}"), outputs)


def test_references_in_args_become_quoted_variables() -> None:
    spec = job(script="/w/t.py", args=["--lr=${{ jobs.sweep[0].outputs.s }}", "a b"])
    res = resolve_sweep(spec)
    assert res.command == 'exec python3 -u "$CCD_SCRIPT" --lr="${CCD_OUTPUT_SWEEP_0__S}" \'a b\''
    assert res.env["CCD_OUTPUT_SWEEP_0__S"] == "a"


@pytest.mark.parametrize(
    "text",
    ["${{ jobs.sweep[1].output.s }}", "${{ job.x.outputs.k }}", "${{ jobs.x.outputs.k", "${{}}"],
)
@pytest.mark.parametrize("where", ["run", "env", "args"])
def test_no_unresolved_reference_reaches_the_shell(text: str, where: str) -> None:
    fields: dict[str, object] = {
        "run": {"run": f"echo {text}"},
        "env": {"run": "true", "env": {"X": text}},
        "args": {"script": "/w/t.sh", "args": [text]},
    }[where]
    with pytest.raises(MissingOutput, match="output reference"):
        resolve_sweep(job(**fields))


def test_notebook_params_keep_their_types_and_references_stay_variables() -> None:
    spec = job(
        script="/w/nb.ipynb",
        needs=["prep"],
        params={"epochs": 3, "lr": 0.01, "data": "${{ jobs.prep.outputs.path }}"},
    )
    res = resolve(
        spec,
        outputs={"prep": {"path": "/d/$(x)"}},
        is_ancestor={"prep"}.__contains__,
        base_env={},
    )
    last = res.command.splitlines()[-1]
    assert last.endswith(""" -y '{"epochs": 3, "lr": 0.01}' -r data "${CCD_OUTPUT_PREP_PATH}\"""")
    assert res.env["CCD_OUTPUT_PREP_PATH"] == "/d/$(x)"
