"""The caching keys of a workflow file: cache, inputs, outputs_files and resume,
their problems located where they were written, their paths made absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccd.errors import SpecError
from ccd.spec.export import workflow_yaml
from ccd.spec.model import Workflow
from ccd.spec.validate import load_workflow_text


def load(text: str) -> Workflow:
    return load_workflow_text(
        text, source="/w/f.yaml", base_dir=Path("/w"), known_hosts=("localhost", "hpc")
    )


def problems(text: str) -> list[tuple[str, int, str]]:
    with pytest.raises(SpecError) as caught:
        load(text)
    return [(p.code, p.line, p.message) for p in caught.value.problems]


def test_paths_are_read_from_the_jobs_working_directory() -> None:
    wf = load(
        "resume: true\n"
        "defaults: {cache: mtime}\n"
        "jobs:\n"
        "  here: {run: x, inputs: [data/a.csv, /abs/b], outputs_files: out.bin}\n"
        "  moved: {run: x, workdir: sub, inputs: [../c]}\n"
        "  remote: {run: x, host: hpc, inputs: [d, ~/e, /f]}\n"
        "  never: {run: x, cache: false}\n"
    )
    assert wf.resume is True
    here, moved, remote = wf.jobs["here"], wf.jobs["moved"], wf.jobs["remote"]
    assert here.inputs == ["/w/data/a.csv", "/abs/b"] and here.outputs_files == ["/w/out.bin"]
    assert here.cache == "mtime"  # from defaults
    assert moved.inputs == ["/w/c"]
    assert remote.inputs == ["~/d", "~/e", "/f"]
    assert wf.jobs["never"].cache == "off"
    again = load(workflow_yaml(wf))
    assert again == wf.model_copy(update={"source": again.source})


def test_bad_caching_keys_are_located_problems() -> None:
    found = problems(
        "resume: yes please\n"
        "jobs:\n"
        "  a: {run: x, cache: contnet}\n"
        "  b: {run: x, inputs: {a: 1}}\n"
        "  c: {run: x, outputs_files: [ok, 3]}\n"
        "  d: {run: x, workdir: run, inputs: [rel]}\n"
    )
    codes = [(code, line) for code, line, _ in found]
    assert codes == [
        ("wrong-type", 1),
        ("bad-value", 3),
        ("wrong-type", 4),
        ("wrong-type", 5),
        ("relative-path", 6),
    ]
    messages = dict(((code, line), message) for code, line, message in found)
    assert "did you mean 'content'" in messages[("bad-value", 3)]
    assert "outputs_files[1] must be a file path" in messages[("wrong-type", 5)]
    assert "workdir: run" in messages[("relative-path", 6)]
