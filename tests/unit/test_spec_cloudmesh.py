from __future__ import annotations

from pathlib import Path

import pytest

from ccd.errors import Problem, SpecError
from ccd.spec.model import ExecutorKind, Workflow
from ccd.spec.validate import load_workflow_file, load_workflow_text, workflow_graph

HOSTS = ("localhost", "rivanna")

# Written the way cloudmesh-cc writes its workflows: display keys, timestamps,
# "local" hosts, exec commands and exec/script file names.
CLOUDMESH = """\
workflow:
  name: cloudmask
  layout: dummy
  nodes:
    start:
      name: start
      label: 'start\\nWorkflow Started={t0.}\\nElapsed={dt0.}'
      kind: local
      user: grey
      host: local
      status: ready
      progress: 0
      created: '2022-07-28 02:58:42.664289'
      modified: '2022-07-28 02:58:42.664289'
      exec: echo start
      instance: null
      shape: box
      style: ''
    fetch-data:
      label: '{name}\\nprogress={progress}'
      kind: ssh
      user: grey
      host: rivanna
      exec: fetch.sh
      shape: cylinder
    train:
      kind: slurm
      host: rivanna
      script: train.sh
      exec: null
      venv: ~/ENV3
    analyze:
      kind: localhost
      host: rivanna          # a local kind runs here whatever the host says
      exec: analyze.py
    notebook:
      kind: local
      host: localhost
      exec: report.ipynb
    end:
      kind: local
      host: local
      script: end.sh         # missing: the exec command runs instead
      exec: echo end
    lonely:
      kind: local
      exec: echo alone
  dependencies:
    - start,fetch-data,train,analyze,end
    - analyze, notebook ,end
colors:
  status:
    ready: white
    done: '#CCFFCC'
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    for name in ("fetch.sh", "train.sh", "analyze.py", "report.ipynb", "default.sh"):
        (tmp_path / name).write_text("echo\n")
    return tmp_path


def load(text: str, base: Path) -> Workflow:
    return load_workflow_text(text, source=str(base / "cm.yaml"), base_dir=base, known_hosts=HOSTS)


def problems(text: str, base: Path) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load(text, base)
    return caught.value.problems


def test_realistic_cloudmesh_workflow(base: Path) -> None:
    wf = load(CLOUDMESH, base)
    assert wf.name == "cloudmask"
    assert list(wf.jobs) == ["start", "fetch-data", "train", "analyze", "notebook", "end", "lonely"]
    jobs = wf.jobs

    assert (jobs["start"].run, jobs["start"].host) == ("echo start", "localhost")
    assert jobs["start"].executor is ExecutorKind.LOCAL

    assert jobs["fetch-data"].script == str(base / "fetch.sh")
    assert (jobs["fetch-data"].host, jobs["fetch-data"].executor) == ("rivanna", ExecutorKind.SSH)
    assert jobs["fetch-data"].needs == ["start"]

    assert jobs["train"].script == str(base / "train.sh")
    assert (jobs["train"].host, jobs["train"].executor) == ("rivanna", ExecutorKind.SLURM)

    assert jobs["analyze"].script == str(base / "analyze.py")
    assert (jobs["analyze"].host, jobs["analyze"].executor) == ("localhost", ExecutorKind.LOCAL)

    assert jobs["notebook"].script == str(base / "report.ipynb")
    assert jobs["notebook"].needs == ["analyze"]

    assert (jobs["end"].run, jobs["end"].script) == ("echo end", None)
    assert jobs["end"].needs == ["analyze", "notebook"]

    assert jobs["lonely"].run == "echo alone"
    assert jobs["lonely"].needs == []

    assert set(workflow_graph(wf).edges) == {
        ("start", "fetch-data"),
        ("fetch-data", "train"),
        ("train", "analyze"),
        ("analyze", "end"),
        ("analyze", "notebook"),
        ("notebook", "end"),
    }


def test_name_defaults_to_the_file_stem(base: Path) -> None:
    path = base / "workflow-a-b.yaml"
    path.write_text(
        "cloudmesh:\n"
        "  nodes:\n"
        "    a: {name: a, user: gregor, host: localhost, kind: local, script: train.sh}\n"
        "    b: {name: b, user: gregor, host: localhost, kind: local, script: fetch.sh}\n"
        "  dependencies:\n"
        "    - a,b\n"
    )
    wf = load_workflow_file(path)
    assert wf.name == "workflow-a-b"
    assert wf.jobs["b"].needs == ["a"]


def test_saved_state_form(base: Path) -> None:
    # what cloudmesh-cc writes back: parent lists and {source, destination} edges
    text = (
        "workflow:\n"
        "  nodes:\n"
        "    start: {name: start, kind: local, host: local, script: fetch.sh, exec: null,"
        " parent: [], number: 0, label_format: x, format: y}\n"
        "    job-1: {name: job-1, kind: ssh, host: rivanna, script: train.sh, parent: [start]}\n"
        "    end: {name: end, kind: local, script: analyze.py, parent: [job-1]}\n"
        "  dependencies:\n"
        "    start-job-1: {source: start, destination: job-1, name: start-job-1}\n"
        "    job-1-end: {source: job-1, destination: end, name: job-1-end}\n"
    )
    wf = load(text, base)
    assert wf.jobs["job-1"].needs == ["start"]
    assert wf.jobs["end"].needs == ["job-1"]


@pytest.mark.parametrize("deps", ["{}", "[]", "null", "['start']"])
def test_no_dependencies(base: Path, deps: str) -> None:
    text = f"workflow:\n  nodes:\n    start: {{exec: echo hi}}\n  dependencies: {deps}\n"
    assert load(text, base).jobs["start"].needs == []


def test_default_script_is_name_sh(base: Path) -> None:
    text = "workflow:\n  nodes:\n    default: {kind: local, label: d}\n"
    assert load(text, base).jobs["default"].script == str(base / "default.sh")


def test_ccd_keys_are_allowed_in_nodes(base: Path) -> None:
    text = "workflow:\n  nodes:\n    a: {exec: echo a, retries: 2, timeout: 1h, env: {X: 1}}\n"
    job = load(text, base).jobs["a"]
    assert (job.retries, job.timeout, job.env) == (2, 3600.0, {"X": "1"})


ONE_PROBLEM = [
    ("unknown-node-key", "workflow:\n  nodes:\n    a: {exec: x, lable: a}\n", "unknown-key", 3, 18),
    ("unknown-top", "workflow:\n  nodes:\n    a: {exec: x}\ncolours: {}\n", "unknown-key", 4, 1),
    (
        "unknown-workflow-key",
        "workflow:\n  nodes:\n    a: {exec: x}\n  nodez: 1\n",
        "unknown-key",
        4,
        3,
    ),
    ("kind-wsl", "workflow:\n  nodes:\n    a: {exec: x, kind: wsl}\n", "unknown-executor", 3, 24),
    ("exec-list", "workflow:\n  nodes:\n    a: {exec: [x]}\n", "wrong-type", 3, 15),
    ("script-number", "workflow:\n  nodes:\n    a: {script: 3}\n", "wrong-type", 3, 17),
    ("no-command", "workflow:\n  nodes:\n    a: {kind: local}\n", "missing-command", 3, 5),
    ("null-node", "workflow:\n  nodes:\n    a:\n", "wrong-type", 3, 5),
    ("text-node", "workflow:\n  nodes:\n    a: echo\n", "wrong-type", 3, 8),
    ("name-mismatch", "workflow:\n  nodes:\n    a: {name: b, exec: x}\n", "bad-value", 3, 15),
    (
        "script-missing",
        "workflow:\n  nodes:\n    a: {script: gone.sh}\n",
        "script-not-found",
        3,
        17,
    ),
    (
        "exec-file-missing",
        "workflow:\n  nodes:\n    a: {exec: gone.py}\n",
        "script-not-found",
        3,
        15,
    ),
    (
        "host-unknown",
        "workflow:\n  nodes:\n    a: {exec: x, kind: ssh, host: rivana}\n",
        "unknown-host",
        3,
        35,
    ),
    ("no-nodes", "workflow:\n  dependencies: []\n", "no-jobs", 1, 1),
    ("empty-nodes", "workflow:\n  nodes: {}\n", "no-jobs", 2, 3),
    ("nodes-list", "workflow:\n  nodes: [a]\n", "wrong-type", 2, 10),
    ("workflow-text", "workflow: yes\n", "wrong-type", 1, 11),
    (
        "both-roots",
        "workflow:\n  nodes:\n    a: {exec: x}\ncloudmesh:\n  nodes: {}\n",
        "unknown-key",
        4,
        1,
    ),
    (
        "unknown-node",
        "workflow:\n  nodes:\n    start: {exec: x}\n    end: {exec: y}\n"
        "  dependencies:\n    - start,exampl,end\n",
        "unknown-node",
        6,
        7,
    ),
    (
        "empty-name",
        "workflow:\n  nodes:\n    a: {exec: x}\n  dependencies:\n    - a,,a\n",
        "bad-dependency",
        5,
        7,
    ),
    (
        "dependency-type",
        "workflow:\n  nodes:\n    a: {exec: x}\n  dependencies:\n    - [a]\n",
        "wrong-type",
        5,
        7,
    ),
    (
        "dependencies-text",
        "workflow:\n  nodes:\n    a: {exec: x}\n  dependencies: a,b\n",
        "wrong-type",
        4,
        17,
    ),
    (
        "bad-edge",
        "workflow:\n  nodes:\n    a: {exec: x}\n  dependencies:\n    e: {source: a}\n",
        "wrong-type",
        5,
        8,
    ),
    (
        "cycle",
        "workflow:\n  nodes:\n    a: {exec: x}\n    b: {exec: y}\n  dependencies:\n    - a,b,a\n",
        "cycle",
        6,
        7,
    ),
    (
        "self",
        "workflow:\n  nodes:\n    a: {exec: x}\n  dependencies:\n    - a,a\n",
        "self-dependency",
        5,
        7,
    ),
    (
        "parent-unknown",
        "workflow:\n  nodes:\n    a: {exec: x, parent: [b]}\n",
        "unknown-parent",
        3,
        27,
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [case[1:] for case in ONE_PROBLEM],
    ids=[case[0] for case in ONE_PROBLEM],
)
def test_one_problem(base: Path, text: str, code: str, line: int, column: int) -> None:
    found = problems(text, base)
    assert [(p.code, p.line, p.column) for p in found] == [(code, line, column)], found


def test_did_you_mean(base: Path) -> None:
    text = (
        "workflow:\n"
        "  nodes:\n"
        "    start: {exec: x, lable: s, colour: red}\n"
        "    end: {exec: y}\n"
        "  dependencies:\n"
        "    - strat,end\n"
    )
    messages = [p.message for p in problems(text, base)]
    assert any("unknown key 'lable'" in m and "(did you mean 'label'?)" in m for m in messages)
    assert any("(did you mean 'color'?)" in m for m in messages)
    assert any("names 'strat', which is not a node (did you mean 'start'?)" in m for m in messages)


def test_all_problems_at_once(base: Path) -> None:
    text = (
        "workflow:\n"  # 1
        "  nodes:\n"  # 2
        "    a: {exec: x, kind: lsf}\n"  # 3
        "    b: {script: gone.sh, retries: -1}\n"  # 4
        "    c: {kind: local}\n"  # 5
        "  dependencies:\n"  # 6
        "    - a,b,zz\n"  # 7
        "extra: 1\n"  # 8
    )
    found = {(p.code, p.line, p.column) for p in problems(text, base)}
    assert found == {
        ("unknown-executor", 3, 24),
        ("script-not-found", 4, 17),
        ("negative-number", 4, 35),
        ("missing-command", 5, 5),
        ("unknown-node", 7, 7),
        ("unknown-key", 8, 1),
    }
