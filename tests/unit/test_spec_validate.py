from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path

import pytest

from ccd.errors import Problem, SpecError
from ccd.spec.loader import MAX_BYTES, load_yaml
from ccd.spec.model import ExecutorKind, Workflow
from ccd.spec.validate import load_workflow_file, load_workflow_text, workflow_graph

HOSTS = ("localhost", "cluster", "gpu-box")


def load(text: str | bytes, base: Path, hosts: Collection[str] = HOSTS) -> Workflow:
    return load_workflow_text(
        text, source=str(base / "flow.yaml"), base_dir=base, known_hosts=hosts
    )


def problems(text: str | bytes, base: Path, hosts: Collection[str] = HOSTS) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load(text, base, hosts)
    return caught.value.problems


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print('train')\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "fetch.sh").write_text("echo fetch\n")
    return tmp_path


# --- one problem per file: code, line, column --------------------------------------

ONE_PROBLEM = [
    # YAML itself
    ("syntax", "jobs:\n  a: b: c\n", "yaml-syntax", 2, 7),
    ("unclosed-flow", "jobs:\n  a: {run: x\n", "yaml-syntax", 3, 1),
    ("tab-indent", "jobs:\n\ta: {run: x}\n", "yaml-tab", 2, 1),
    ("tab-after-spaces", "jobs:\n  a:\n  \trun: x\n", "yaml-tab", 3, 3),
    ("bad-char", "jobs:\n  a: {run: \x07}\n", "yaml-bad-char", 2, 12),
    ("empty", "", "empty-file", 0, 0),
    ("only-comments", "# nothing here\n\n", "empty-file", 0, 0),
    ("null-document", "~\n", "empty-file", 0, 0),
    ("two-documents", "jobs: {a: {run: x}}\n---\njobs: {}\n", "multiple-documents", 2, 1),
    ("duplicate", "jobs:\n  a: {run: x}\n  a: {run: y}\n", "duplicate-key", 3, 3),
    ("undefined-alias", "jobs:\n  a: *nope\n", "undefined-alias", 2, 6),
    ("recursive-alias", "jobs: &j\n  a: *j\n", "recursive-alias", 2, 6),
    ("python-tag", "jobs:\n  a: !!python/object:os.system {}\n", "yaml-tag", 2, 6),
    ("set-tag", "jobs: !!set {a}\n", "yaml-tag", 1, 7),
    ("nul-escape", 'jobs:\n  a: {run: "x\\0y"}\n', "bad-string", 2, 12),
    ("huge-int", "jobs:\n  a: {run: x, retries: " + "9" * 5000 + "}\n", "bad-scalar", 2, 24),
    ("bad-date", "jobs:\n  a: {run: x, retries: 2022-13-45}\n", "bad-scalar", 2, 24),
    ("list-key", "jobs:\n  a: {run: x}\n  [b]: {run: y}\n", "bad-key", 3, 3),
    ("bad-merge", "jobs:\n  a: {run: x, <<: 3}\n", "bad-merge", 2, 19),
    # the top level
    ("top-list", "- a\n- b\n", "not-a-mapping", 1, 1),
    ("top-text", "hello\n", "not-a-mapping", 1, 1),
    ("top-unknown", "jobs:\n  a: {run: x}\nconcurency: 3\n", "unknown-key", 3, 1),
    ("name-type", "name: [x]\njobs:\n  a: {run: x}\n", "wrong-type", 1, 7),
    ("name-bad", "name: my flow\njobs:\n  a: {run: x}\n", "bad-name", 1, 7),
    ("concurrency-zero", "concurrency: 0\njobs:\n  a: {run: x}\n", "bad-value", 1, 14),
    ("concurrency-type", "concurrency: lots\njobs:\n  a: {run: x}\n", "wrong-type", 1, 14),
    ("concurrency-bool", "concurrency: true\njobs:\n  a: {run: x}\n", "wrong-type", 1, 14),
    ("no-jobs-key", "name: x\n", "no-jobs", 1, 1),
    ("jobs-empty", "jobs: {}\n", "no-jobs", 1, 1),
    ("jobs-null", "name: x\njobs:\n", "no-jobs", 2, 1),
    ("jobs-list", "jobs:\n  - a\n", "wrong-type", 2, 3),
    # defaults
    ("defaults-type", "defaults: 3\njobs:\n  a: {run: x}\n", "wrong-type", 1, 11),
    ("defaults-unknown", "defaults: {retires: 1}\njobs:\n  a: {run: x}\n", "unknown-key", 1, 12),
    ("defaults-run", "defaults: {run: x}\njobs:\n  a: {run: x}\n", "unknown-key", 1, 12),
    ("defaults-needs", "defaults: {needs: [a]}\njobs:\n  a: {run: x}\n", "unknown-key", 1, 12),
    (
        "defaults-bad-value",
        "defaults: {retries: -2}\njobs:\n  a: {run: x}\n",
        "negative-number",
        1,
        21,
    ),
    # job names
    ("name-slash", "jobs:\n  a/b: {run: x}\n", "bad-name", 2, 3),
    ("name-space", "jobs:\n  'a b': {run: x}\n", "bad-name", 2, 3),
    ("name-shell", "jobs:\n  $(rm): {run: x}\n", "bad-name", 2, 3),
    ("name-dots", "jobs:\n  a..b: {run: x}\n", "bad-name", 2, 3),
    ("name-dotdot", "jobs:\n  '..': {run: x}\n", "bad-name", 2, 3),
    ("name-leading-dash", "jobs:\n  -a: {run: x}\n", "bad-name", 2, 3),
    ("name-leading-dot", "jobs:\n  .a: {run: x}\n", "bad-name", 2, 3),
    ("name-unicode", "jobs:\n  é: {run: x}\n", "bad-name", 2, 3),
    ("name-long", "jobs:\n  " + "x" * 129 + ": {run: x}\n", "bad-name", 2, 3),
    ("name-int", "jobs:\n  1: {run: x}\n", "bad-name", 2, 3),
    ("name-null", "jobs:\n  ~: {run: x}\n", "bad-name", 2, 3),
    # job bodies and keys
    ("job-text", "jobs:\n  a: echo hi\n", "wrong-type", 2, 6),
    ("job-empty", "jobs:\n  a:\n", "missing-command", 2, 3),
    ("job-unknown-key", "jobs:\n  a: {run: x, retires: 1}\n", "unknown-key", 2, 15),
    ("job-name-key", "jobs:\n  a: {run: x, name: a}\n", "unknown-key", 2, 15),
    ("neither", "jobs:\n  a: {retries: 1}\n", "missing-command", 2, 3),
    ("both", "jobs:\n  a: {run: x, script: train.py}\n", "run-and-script", 2, 15),
    ("run-list", "jobs:\n  a: {run: [echo, hi]}\n", "wrong-type", 2, 12),
    ("run-number", "jobs:\n  a: {run: 5}\n", "wrong-type", 2, 12),
    ("run-empty", "jobs:\n  a: {run: ''}\n", "bad-value", 2, 12),
    ("script-missing", "jobs:\n  a: {script: nope.sh}\n", "script-not-found", 2, 15),
    ("script-dir", "jobs:\n  a: {script: scripts}\n", "script-not-found", 2, 15),
    ("script-type", "jobs:\n  a: {script: {x: 1}}\n", "wrong-type", 2, 15),
    ("args-text", "jobs:\n  a: {script: train.py, args: --fast}\n", "wrong-type", 2, 31),
    ("args-item", "jobs:\n  a: {script: train.py, args: [a, {b: 1}]}\n", "wrong-type", 2, 35),
    ("args-null", "jobs:\n  a: {script: train.py, args: [a, ~]}\n", "wrong-type", 2, 35),
    ("needs-type", "jobs:\n  a: {run: x, needs: 3}\n", "wrong-type", 2, 22),
    ("needs-item", "jobs:\n  a: {run: x}\n  b: {run: x, needs: [a, 1]}\n", "wrong-type", 3, 26),
    ("host-type", "jobs:\n  a: {run: x, host: [a]}\n", "wrong-type", 2, 21),
    ("host-unknown", "jobs:\n  a: {run: x, host: clustr}\n", "unknown-host", 2, 21),
    ("executor", "jobs:\n  a: {run: x, executor: lcoal}\n", "unknown-executor", 2, 25),
    (
        "executor-local-remote",
        "jobs:\n  a: {run: x, host: cluster, executor: local}\n",
        "bad-value",
        2,
        40,
    ),
    ("retries-negative", "jobs:\n  a: {run: x, retries: -1}\n", "negative-number", 2, 24),
    ("retries-float", "jobs:\n  a: {run: x, retries: 1.5}\n", "wrong-type", 2, 24),
    ("retries-text", "jobs:\n  a: {run: x, retries: '2'}\n", "wrong-type", 2, 24),
    ("retries-bool", "jobs:\n  a: {run: x, retries: yes}\n", "wrong-type", 2, 24),
    ("retry-delay", "jobs:\n  a: {run: x, retry_delay: soon}\n", "bad-duration", 2, 28),
    ("retry-delay-negative", "jobs:\n  a: {run: x, retry_delay: -5}\n", "bad-duration", 2, 28),
    ("backoff-small", "jobs:\n  a: {run: x, retry_backoff: 0.5}\n", "bad-value", 2, 30),
    ("backoff-type", "jobs:\n  a: {run: x, retry_backoff: fast}\n", "wrong-type", 2, 30),
    ("backoff-inf", "jobs:\n  a: {run: x, retry_backoff: .inf}\n", "bad-value", 2, 30),
    ("timeout-words", "jobs:\n  a: {run: x, timeout: 5 minutes}\n", "bad-duration", 2, 24),
    ("timeout-sexagesimal", "jobs:\n  a: {run: x, timeout: 1:30}\n", "bad-duration", 2, 24),
    ("timeout-zero", "jobs:\n  a: {run: x, timeout: 0}\n", "bad-duration", 2, 24),
    ("timeout-negative", "jobs:\n  a: {run: x, timeout: -1h}\n", "bad-duration", 2, 24),
    ("env-type", "jobs:\n  a: {run: x, env: [A]}\n", "wrong-type", 2, 20),
    ("env-name", "jobs:\n  a: {run: x, env: {1X: a}}\n", "bad-env-name", 2, 21),
    ("env-name-dash", "jobs:\n  a: {run: x, env: {MY-VAR: a}}\n", "bad-env-name", 2, 21),
    ("env-value-null", "jobs:\n  a: {run: x, env: {A: ~}}\n", "wrong-type", 2, 24),
    ("env-value-list", "jobs:\n  a: {run: x, env: {A: [1]}}\n", "wrong-type", 2, 24),
    ("workdir-type", "jobs:\n  a: {run: x, workdir: 3}\n", "wrong-type", 2, 24),
    ("regex-bad", "jobs:\n  a: {run: x, progress_regex: '('}\n", "bad-regex", 2, 31),
    ("regex-no-group", "jobs:\n  a: {run: x, progress_regex: 'Epoch \\d+'}\n", "bad-regex", 2, 31),
    ("resources-type", "jobs:\n  a: {run: x, resources: gpu}\n", "wrong-type", 2, 26),
    (
        "resources-value",
        "jobs:\n  a: {run: x, resources: {mem: !!binary aGk=}}\n",
        "wrong-type",
        2,
        32,
    ),
    ("resources-key", "jobs:\n  a: {run: x, resources: {1: a}}\n", "wrong-type", 2, 27),
    # the graph
    ("self", "jobs:\n  a: {run: x, needs: [a]}\n", "self-dependency", 2, 23),
    ("self-text", "jobs:\n  a: {run: x, needs: a}\n", "self-dependency", 2, 22),
    (
        "unknown-parent",
        "jobs:\n  fetch: {run: x}\n  b: {run: x, needs: [fecth]}\n",
        "unknown-parent",
        3,
        23,
    ),
    (
        "cycle",
        "jobs:\n  a: {run: x, needs: c}\n  b: {run: x, needs: a}\n  c: {run: x, needs: b}\n",
        "cycle",
        2,
        22,
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
    problem = found[0]
    assert problem.file == str(base / "flow.yaml")
    assert problem.message and not problem.message.startswith("1 validation error")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "jobs:\n  a: {run: x}\nconcurency: 3\n",
            "unknown key 'concurency' at the top level (did you mean 'concurrency'?)",
        ),
        (
            "jobs:\n  a: {run: x, retires: 1}\n",
            "unknown key 'retires' in job 'a' (did you mean 'retries'?)",
        ),
        ("defaults: {retires: 1}\njobs:\n  a: {run: x}\n", "(did you mean 'retries'?)"),
        ("defaults: {run: x}\njobs:\n  a: {run: x}\n", "'run' cannot be a default"),
        ("jobs:\n  a: {run: x}\n  a: {run: y}\n", "duplicate key 'a' (first at line 2, column 3)"),
        (
            "jobs:\n  fetch: {run: x}\n  b: {run: x, needs: [fecth]}\n",
            "job 'b' needs 'fecth', which is not a job in this workflow (did you mean 'fetch'?)",
        ),
        (
            "jobs:\n  a: {run: x, needs: c}\n  b: {run: x, needs: a}\n  c: {run: x, needs: b}\n",
            "cycle: a -> b -> c -> a",
        ),
        (
            "jobs:\n  a: {run: x, executor: lcoal}\n",
            "unknown executor 'lcoal' (did you mean 'local'?)",
        ),
        (
            "jobs:\n  a: {run: x, host: clustr}\n",
            "unknown host 'clustr' (did you mean 'cluster'?); add it to the daemon config's hosts:",
        ),
        ("jobs:\n  a: {run: x, timeout: 5 minutes}\n", "30s, 5m, 2h, 1d"),
        ("jobs:\n\ta: {run: x}\n", "spaces"),
        ("jobs:\n  a: {script: nope.sh}\n", "relative to the workflow file's directory"),
        ("jobs:\n  a: {run: [echo, hi]}\n", "run must be one command line as text"),
        ("jobs:\n  a: {run: x, retries: two}\n", "retries must be a whole number, not text"),
        ("jobs:\n  1: {run: x}\n", "quote it"),
        ("jobs:\n  'a b': {run: x}\n", "letters, digits"),
    ],
)
def test_messages_say_what_to_do(base: Path, text: str, words: str) -> None:
    messages = [p.message for p in problems(text, base)]
    assert any(words in message for message in messages), messages


def test_cycles_are_each_named_in_order(base: Path) -> None:
    text = (
        "jobs:\n"
        "  a: {run: x, needs: b}\n"
        "  b: {run: x, needs: a}\n"
        "  c: {run: x, needs: [e]}\n"
        "  d: {run: x, needs: [c]}\n"
        "  e: {run: x, needs: [d, a]}\n"
    )
    found = [p.message.split(" (")[0] for p in problems(text, base) if p.code == "cycle"]
    assert found == ["cycle: a -> b -> a", "cycle: c -> d -> e -> c"]


def test_parents_written_after_their_children_are_no_cycle(base: Path) -> None:
    text = (
        "jobs:\n"
        "  report: {run: x, needs: [train, fetch]}\n"
        "  train: {run: x, needs: fetch}\n"
        "  fetch: {run: x}\n"
        "  self: {run: x, needs: [fetch, self]}\n"
    )
    assert [p.code for p in problems(text, base)] == ["self-dependency"]
    assert load(text.rsplit("  self", 1)[0], base).jobs["report"].needs == ["train", "fetch"]


def test_every_problem_is_reported_at_once(base: Path) -> None:
    text = (
        "name: ok\n"  # 1
        "concurency: 2\n"  # 2
        "defaults: {retires: 1, timeout: soon}\n"  # 3
        "jobs:\n"  # 4
        "  fetch: {run: [a]}\n"  # 5
        "  train: {script: missing.py, needs: [fecth, train], host: clustr}\n"  # 6
        "  'bad name': {run: x}\n"  # 7
        "  loop1: {run: x, needs: loop2}\n"  # 8
        "  loop2: {run: x, needs: loop1, retries: -3, env: {2A: b}}\n"  # 9
        "  loop2: {run: again}\n"  # 10
    )
    found = {(p.code, p.line, p.column) for p in problems(text, base)}
    assert found == {
        ("unknown-key", 2, 1),
        ("unknown-key", 3, 12),
        ("bad-duration", 3, 33),
        ("wrong-type", 5, 16),
        ("script-not-found", 6, 19),
        ("unknown-parent", 6, 39),
        ("self-dependency", 6, 46),
        ("unknown-host", 6, 60),
        ("bad-name", 7, 3),
        ("cycle", 8, 26),
        ("negative-number", 9, 42),
        ("bad-env-name", 9, 52),
        ("duplicate-key", 10, 3),
    }


def test_problems_are_sorted_and_summarised(base: Path) -> None:
    text = "jobs:\n" + "".join(f"  j{i}: {{run: x, needs: [nope{i}]}}\n" for i in range(600))
    found = problems(text, base)
    assert len(found) == 501
    assert found[-1].code == "too-many-problems"
    assert "100 more" in found[-1].message
    lines = [p.line for p in found[:-1]]
    assert lines == sorted(lines)


def test_spec_error_message_lists_problems(base: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load("jobs:\n  a: {}\n  b: {run: x, needs: c}\n", base)
    text = str(caught.value)
    assert text.startswith("2 problems in workflow")
    assert f"{base / 'flow.yaml'}:2:3:" in text
    assert "[unknown-parent]" in text
    assert caught.value.exit_code == 2


# --- valid workflows -------------------------------------------------------------


FULL = """\
name: mnist
concurrency: 8
defaults: {host: localhost, retries: 1, timeout: 2h, env: {COMMON: x, SEED: 0}}
jobs:
  fetch: {run: ./fetch.sh}
  train:
    needs: [fetch]
    script: train.py
    args: [--epochs, "3", 4, 0.5, true]
    env: {SEED: 1}
    progress_regex: 'Epoch (?P<progress>\\d+)/10'
    retry_delay: 30s
    retry_backoff: 1.5
  remote:
    needs: train
    host: cluster
    script: ./scripts/fetch.sh
    workdir: data
    timeout: ~
  batch:
    needs: [train, remote]
    host: cluster
    executor: slurm
    run: srun hostname
    workdir: /scratch/me
    resources: {partition: gpu, gres: "gpu:1", time: 01:00:00, mem: 16G, nodes: 2, constraint: 2024-01-02}
  home:
    run: ls
    workdir: ~/runs
  remote-home:
    run: ls
    host: gpu-box
    workdir: ~/runs
"""


def test_full_workflow(base: Path) -> None:
    wf = load(FULL, base)
    assert wf.name == "mnist"
    assert wf.concurrency == 8
    assert wf.source == str(base / "flow.yaml")
    assert list(wf.jobs) == ["fetch", "train", "remote", "batch", "home", "remote-home"]

    fetch = wf.jobs["fetch"]
    assert fetch.run == "./fetch.sh" and fetch.script is None
    assert (fetch.host, fetch.executor, fetch.retries, fetch.timeout) == (
        "localhost",
        ExecutorKind.LOCAL,
        1,
        7200.0,
    )
    assert fetch.env == {"COMMON": "x", "SEED": "0"}
    assert fetch.workdir == str(base)
    assert (fetch.retry_delay, fetch.retry_backoff) == (1.0, 2.0)  # model defaults

    train = wf.jobs["train"]
    assert train.script == str(base / "train.py")
    assert train.args == ["--epochs", "3", "4", "0.5", "true"]
    assert train.needs == ["fetch"]
    assert train.env == {"COMMON": "x", "SEED": "1"}  # merged; the job's value wins
    assert train.progress_regex == "Epoch (?P<progress>\\d+)/10"
    assert (train.retry_delay, train.retry_backoff) == (30.0, 1.5)

    remote = wf.jobs["remote"]
    assert remote.needs == ["train"]
    assert remote.executor is ExecutorKind.SSH  # a remote host defaults to ssh
    assert remote.script == str(base / "scripts" / "fetch.sh")
    assert remote.workdir == "~/data"  # relative to the remote home
    assert remote.timeout is None

    batch = wf.jobs["batch"]
    assert batch.executor is ExecutorKind.SLURM
    assert batch.workdir == "/scratch/me"
    assert batch.resources == {
        "partition": "gpu",
        "gres": "gpu:1",
        "time": "01:00:00",
        "mem": "16G",
        "nodes": 2,
        "constraint": "2024-01-02",
    }
    assert wf.jobs["home"].workdir == os.path.expanduser("~/runs")
    assert wf.jobs["remote-home"].workdir == "~/runs"  # the remote shell's home


def test_round_trips_through_json(base: Path) -> None:
    wf = load(FULL, base)
    again = Workflow.model_validate(json.loads(wf.model_dump_json()))
    assert again == wf


def test_graph(base: Path) -> None:
    graph = workflow_graph(load(FULL, base))
    assert list(graph.nodes) == ["fetch", "train", "remote", "batch", "home", "remote-home"]
    assert set(graph.edges) == {
        ("fetch", "train"),
        ("train", "remote"),
        ("train", "batch"),
        ("remote", "batch"),
    }


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("jobs:\n  a: {run: x, needs: []}\n", "needs", []),
        ("jobs:\n  p: {run: x}\n  a: {run: x, needs: [p, p]}\n", "needs", ["p"]),
        ("jobs:\n  a: {run: x, retries: 0}\n", "retries", 0),
        ("jobs:\n  a: {run: x, retry_delay: 0}\n", "retry_delay", 0.0),
        ("jobs:\n  a: {run: x, retry_backoff: 1}\n", "retry_backoff", 1.0),
        ("jobs:\n  a: {run: x, timeout: 1h30m}\n", "timeout", 5400.0),
        ("jobs:\n  a: {run: x, timeout: 90}\n", "timeout", 90.0),
        (
            "jobs:\n  a: {run: x, env: {A: yes, B: 1.5, C: ''}}\n",
            "env",
            {"A": "true", "B": "1.5", "C": ""},
        ),
        ("jobs:\n  a: {run: x, host: cluster}\n", "executor", ExecutorKind.SSH),
        ("jobs:\n  a: {run: x, host: cluster, executor: slurm}\n", "executor", ExecutorKind.SLURM),
        ("jobs:\n  a: {run: x, executor: ssh}\n", "executor", ExecutorKind.SSH),
        ("defaults: {host: cluster}\njobs:\n  a: {run: x}\n", "host", "cluster"),
        (
            "defaults: {host: cluster}\njobs:\n  a: {run: x, host: localhost}\n",
            "executor",
            ExecutorKind.LOCAL,
        ),
        ("jobs:\n  a: {run: x, progress_regex: '(\\d+)%'}\n", "progress_regex", "(\\d+)%"),
        ("jobs:\n  a: {run: x, workdir: ../up}\n", "workdir", "PARENT/up"),
        ("jobs:\n  a: {run: x, resources: {}}\n", "resources", {}),
        (
            "defaults: {resources: {mem: 1G, qos: low}}\njobs:\n  a: {run: x, resources: {qos: high}}\n",
            "resources",
            {"mem": "1G", "qos": "high"},
        ),
        ("jobs:\n  a: &base {run: x, retries: 4}\n  b: {<<: *base, needs: a}\n", "run", "x"),
    ],
)
def test_fields(base: Path, text: str, field: str, value: object) -> None:
    wf = load(text, base)
    job = list(wf.jobs.values())[-1]
    if value == "PARENT/up":
        value = str(base.parent / "up")
    assert getattr(job, field) == value


def test_merge_keys(base: Path) -> None:
    text = "jobs:\n  a: &base {run: x, retries: 4, env: {A: 1}}\n  b: {<<: *base, needs: a, retries: 1}\n"
    b = load(text, base).jobs["b"]
    assert (b.run, b.retries, b.env, b.needs) == ("x", 1, {"A": "1"}, ["a"])


def test_merged_values_are_located_at_the_merge(base: Path) -> None:
    text = "x: &bad {run: x, retries: -1}\njobs:\n  a: {<<: *bad}\n"
    found = [(p.code, p.line, p.column) for p in problems(text, base)]
    assert ("negative-number", 3, 11) in found


def test_name_defaults_to_the_file_stem(base: Path) -> None:
    path = base / "my-pipeline.yaml"
    path.write_text("jobs:\n  a: {run: x}\n")
    assert load_workflow_file(path).name == "my-pipeline"
    odd = base / "my pipeline (v2).yml"
    odd.write_text("jobs:\n  a: {run: x}\n")
    assert load_workflow_file(odd).name == "my-pipeline-v2"
    text_wf = load_workflow_text("jobs:\n  a: {run: x}\n", base_dir=base)
    assert (text_wf.name, text_wf.source) == ("workflow", "<string>")


def test_file_paths_are_relative_to_the_file(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = base / "sub"
    sub.mkdir()
    (sub / "job.sh").write_text("echo\n")
    (sub / "wf.yaml").write_text("jobs:\n  a: {script: job.sh}\n")
    monkeypatch.chdir(base)
    wf = load_workflow_file(Path("sub") / "wf.yaml")
    assert wf.jobs["a"].script == str(sub / "job.sh")
    assert wf.jobs["a"].workdir == str(sub)


def test_bytes_and_bom(base: Path) -> None:
    wf = load("\ufeffjobs:\n  a: {run: écho}\n".encode(), base)
    assert wf.jobs["a"].run == "écho"


@pytest.mark.parametrize(
    ("data", "code", "line", "column"),
    [
        (b"jobs:\n  a: {run: \xff}\n", "not-utf8", 2, 12),
        ("jobs:\n  a: {run: \ud800}\n", "not-utf8", 2, 12),
    ],
)
def test_encoding_problems(
    base: Path, data: str | bytes, code: str, line: int, column: int
) -> None:
    assert [(p.code, p.line, p.column) for p in problems(data, base)] == [(code, line, column)]


def test_file_errors(base: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_workflow_file(base / "missing.yaml")
    assert caught.value.problems[0].code == "file-not-found"
    with pytest.raises(SpecError) as caught:
        load_workflow_file(base)
    assert caught.value.problems[0].code == "unreadable"


def test_known_hosts_always_include_localhost(base: Path) -> None:
    wf = load("jobs:\n  a: {run: x, host: localhost}\n", base, hosts=["cluster"])
    assert wf.jobs["a"].host == "localhost"


# --- hostile input ------------------------------------------------------------------


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghij":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\njobs:\n  x: {run: *j}\n"


def test_alias_bomb_is_refused(base: Path) -> None:
    found = problems(billion_laughs(), base)
    assert [p.code for p in found] == ["alias-bomb"]


def test_merge_bomb_is_refused(base: Path) -> None:
    lines = ["m0: &m0 {a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}"]
    for level in range(1, 30):
        keys = ", ".join(f"k{i}: *m{level - 1}" for i in range(4))
        lines.append(f"m{level}: &m{level} {{{keys}}}")
    found = problems("\n".join(lines) + "\n", base)
    assert [p.code for p in found] == ["alias-bomb"]


def test_modest_alias_use_is_fine(base: Path) -> None:
    text = "jobs:\n  base: &b {run: x, env: {A: 1, B: 2}}\n" + "".join(
        f"  j{i}: {{<<: *b, needs: base}}\n" for i in range(2000)
    )
    assert len(load(text, base).jobs) == 2001


def test_deep_nesting_is_refused(base: Path) -> None:
    text = "jobs:\n  a: {run: x, resources: " + "[" * 5000 + "]" * 5000 + "}\n"
    assert [p.code for p in problems(text, base)] == ["too-deep"]


def test_huge_text_is_refused(base: Path) -> None:
    found = problems("#" * (40 * 1024 * 1024), base)
    assert [p.code for p in found] == ["file-too-large"]
    assert "32 MiB" in found[0].message


def test_huge_file_is_refused(base: Path) -> None:
    path = base / "huge.yaml"
    with path.open("wb") as stream:
        stream.truncate(40 * 1024 * 1024)  # sparse: big without writing 40 MiB
    with pytest.raises(SpecError) as caught:
        load_workflow_file(path)
    assert [p.code for p in caught.value.problems] == ["file-too-large"]
    assert MAX_BYTES == 32 * 1024 * 1024


# --- the loader's positions ------------------------------------------------------------


def test_positions_of_keys_and_values() -> None:
    doc = load_yaml("jobs:\n  a:\n    run: x\n    needs: [b, c]\n", "f.yaml")
    positions = doc.positions
    assert positions.key(("jobs",)) == (1, 1)
    assert positions.key(("jobs", "a")) == (2, 3)
    assert positions.value(("jobs", "a")) == (3, 5)
    assert positions.key(("jobs", "a", "run")) == (3, 5)
    assert positions.value(("jobs", "a", "run")) == (3, 10)
    assert positions.value(("jobs", "a", "needs", 1)) == (4, 16)
    # unknown paths fall back to the nearest recorded ancestor
    assert positions.value(("jobs", "a", "needs", 7)) == (4, 12)
    assert positions.value(("nothing",)) == (1, 1)


def test_duplicates_report_every_occurrence() -> None:
    doc = load_yaml("a: 1\nb: 2\na: 3\na: 4\n", "f.yaml")
    assert doc.data == {"a": 1, "b": 2}
    assert [(p.code, p.line, p.column) for p in doc.problems] == [
        ("duplicate-key", 3, 1),
        ("duplicate-key", 4, 1),
    ]
    assert all("first at line 1, column 1" in p.message for p in doc.problems)


def test_yaml_1_1_base_60_stays_text() -> None:
    assert load_yaml("t: 1:30\nu: 190:20:30\nv: 01:00:00\n").data == {
        "t": "1:30",
        "u": "190:20:30",
        "v": "01:00:00",
    }


def test_merging_a_big_mapping_many_times_is_refused(base: Path) -> None:
    keys = ", ".join(f"k{i}: {i}" for i in range(5000))
    text = f"big: &big {{{keys}}}\n" + "".join(f"x{i}: {{<<: *big}}\n" for i in range(5000))
    assert [p.code for p in problems(text, base)] == ["alias-bomb"]


def test_alias_bomb_early_in_a_big_file_is_refused(base: Path) -> None:
    padding = "".join(f"  j{i}: {{run: x}}\n" for i in range(20000))
    text = billion_laughs().replace("jobs:\n", "jobs:\n" + padding)
    assert [p.code for p in problems(text, base)] == ["alias-bomb"]


# -- arrays --------------------------------------------------------------------------


def test_array_becomes_elements_and_needs_mean_all_of_them(base: Path) -> None:
    wf = load(
        "jobs:\n"
        "  prep: {run: 'true'}\n"
        "  sweep: {needs: prep, array: [0.5, low, true], run: 'echo $CCD_ARRAY_VALUE'}\n"
        "  count: {array: 2, run: 'true'}\n"
        "  merge: {needs: [sweep, count], run: 'true'}\n",
        base,
    )
    assert list(wf.jobs) == [
        "prep",
        "sweep[0]",
        "sweep[1]",
        "sweep[2]",
        "count[0]",
        "count[1]",
        "merge",
    ]
    elements = [wf.jobs[f"sweep[{i}]"] for i in range(3)]
    assert [e.array.value for e in elements if e.array] == ["0.5", "low", "true"]
    assert all(e.needs == ["prep"] and e.array and e.array.size == 3 for e in elements)
    assert wf.jobs["count[1]"].array is not None and wf.jobs["count[1]"].array.value == "1"
    assert wf.jobs["merge"].needs == ["sweep[0]", "sweep[1]", "sweep[2]", "count[0]", "count[1]"]
    assert set(workflow_graph(wf).predecessors("merge")) == set(wf.jobs["merge"].needs)


@pytest.mark.parametrize(
    ("value", "code", "words"),
    [
        ("0", "bad-value", "between 1 and"),
        ("100001", "bad-value", "between 1 and"),
        ("[]", "bad-value", "1 to"),
        ("yes", "wrong-type", "a count"),
        ("[[1]]", "wrong-type", "plain value"),
        ("{a: 1}", "wrong-type", "a count"),
    ],
)
def test_bad_arrays(base: Path, value: str, code: str, words: str) -> None:
    found = problems(f"jobs:\n  a: {{run: 'true', array: {value}}}\n", base)
    assert [p.code for p in found] == [code], found
    assert words in found[0].message


def test_array_is_not_a_default(base: Path) -> None:
    found = problems("defaults: {array: 3}\njobs:\n  a: {run: 'true'}\n", base)
    assert found and "array" in found[0].message


def test_loading_leaves_no_cyclic_garbage(tmp_path: Path) -> None:
    # a big workflow's positions must be freed when loading ends, not at the next gc run
    import gc

    text = "jobs:\n" + "".join(f"  j{i}: {{run: 'true', needs: [j0]}}\n" for i in range(1, 50))
    text += "  j0: {run: 'true'}\n"
    gc.collect()
    gc.disable()
    try:
        load_workflow_text(text, base_dir=tmp_path)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_without_a_base_directory_relative_paths_are_problems_at_their_place(
    tmp_path: Path,
) -> None:
    """A workflow that came without its file's path (an API submit without ?source=)."""
    script = tmp_path / "train.py"
    script.write_text("print(1)\n")
    text = (
        "name: w\n"
        "jobs:\n"
        "  a: {script: train.py}\n"
        "  b: {run: 'true', workdir: data}\n"
        f"  c: {{script: {script}, workdir: /tmp}}\n"
        "  d: {run: 'true', host: lab, workdir: data}\n"
        "  e: {run: 'true'}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_workflow_text(text, source="<request>", base_dir=None, known_hosts=["lab"])
    found = [(p.line, p.column, p.code) for p in caught.value.problems]
    assert found == [(3, 15, "relative-path"), (4, 29, "relative-path")]
    assert all("?source=" in p.message for p in caught.value.problems)
    fine = "\n".join(line for line in text.splitlines() if "data" not in line and "a:" not in line)
    jobs = load_workflow_text(fine, source="<request>", base_dir=None, known_hosts=["lab"]).jobs
    assert jobs["c"].script == str(script)
    assert jobs["e"].workdir == str(Path.home())  # a local job without a file starts at home


def test_workdir_run_is_the_attempts_run_directory_on_any_host(tmp_path: Path) -> None:
    text = (
        "name: w\njobs:\n"
        "  a: {run: 'true', workdir: run}\n"
        "  b: {run: 'true', host: lab, workdir: run}\n"
    )
    jobs = load_workflow_text(text, base_dir=tmp_path, known_hosts=["lab"]).jobs
    assert (jobs["a"].workdir, jobs["b"].workdir) == ("run", "run")
    # it needs no base directory: a workflow without its file's path may use it
    jobs = load_workflow_text(text, base_dir=None, known_hosts=["lab"]).jobs
    assert (jobs["a"].workdir, jobs["b"].workdir) == ("run", "run")
    # a directory called run next to the file is still reachable as a path
    other = "name: w\njobs:\n  c: {run: 'true', workdir: ./run}\n"
    assert load_workflow_text(other, base_dir=tmp_path).jobs["c"].workdir == str(tmp_path / "run")
