"""Every example in configs/examples/ built both ways: read as YAML, and re-expressed
with the Python builder, gives one model, so one canonical JSON.

Most examples are re-expressed from their loaded data (every job's keys passed to
``wf.job`` as they are), so a new example is covered as soon as it is added; a few
are also written by hand, the way a user would.  The cloudmesh-cc example is in
another format, which the builder does not write: what is compared for it is the
workflow its conversion gives (ccd's format), which is what ccd runs.  Only
`source` differs between the two ways, as it names the file each came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ccd.sdk.builder import Workflow
from ccd.spec import cloudmesh
from ccd.spec.export import workflow_yaml
from ccd.spec.loader import load_yaml
from ccd.spec.validate import load_workflow_file, load_workflow_text

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "examples"
FILES = sorted(EXAMPLES.rglob("*.yaml"))
HOSTS = ("localhost",)


def canonical(spec: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = spec.model_dump(mode="json")
    dumped.pop("source")
    return dumped


def ccd_format(path: Path) -> dict[str, Any]:
    """The example's data in ccd's own format (a cloudmesh-cc file converted)."""
    document = load_yaml(path.read_bytes(), str(path))
    data = document.data
    assert isinstance(data, dict)
    if cloudmesh.is_cloudmesh(data):
        converted = cloudmesh.convert(data, document.positions, base_dir=path.parent)
        assert converted.problems == [] and converted.data is not None
        data = converted.data
    return data


def rebuilt(path: Path) -> Workflow:
    data = ccd_format(path)
    wf = Workflow(
        data.get("name", path.stem),
        concurrency=data.get("concurrency"),
        defaults=data.get("defaults"),
        base_dir=path.parent,
    )
    for name, body in data["jobs"].items():
        wf.job(name, **body)
    return wf


def test_there_are_examples_including_one_in_cloudmesh_format() -> None:
    assert len(FILES) >= 4
    assert any(cloudmesh.is_cloudmesh(load_yaml(f.read_bytes()).data) for f in FILES)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_the_builder_and_the_yaml_give_the_same_workflow(path: Path) -> None:
    expected = canonical(load_workflow_file(path, known_hosts=HOSTS))
    assert canonical(rebuilt(path).validate(known_hosts=HOSTS)) == expected
    assert canonical(Workflow.from_yaml(path).validate(known_hosts=HOSTS)) == expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_the_canonical_yaml_of_each_example_reads_back_the_same(path: Path) -> None:
    spec = load_workflow_file(path, known_hosts=HOSTS)
    text = workflow_yaml(spec)
    # from anywhere: every path in it is absolute
    again = load_workflow_text(text, source="/elsewhere/x.yaml", base_dir="/elsewhere")
    assert canonical(again) == canonical(spec)
    assert workflow_yaml(again) == text


def test_quickstart_by_hand() -> None:
    wf = Workflow("quickstart", base_dir=EXAMPLES)
    prepare = wf.job(
        "prepare",
        run=(
            'echo "preparing data"\n'
            "for i in 1 2 3 4 5; do\n"
            '  echo "::ccd progress=$((i * 20)) msg=\\"chunk $i/5\\""\n'
            "  sleep 0.3\n"
            "done\n"
            'echo "::ccd output rows=50000"\n'
        ),
    )
    train = wf.job(
        "train",
        needs=[prepare],
        script="scripts/train.py",
        args=["--epochs", 5],
        progress_regex=r"epoch (?P<current>\d+)/(?P<total>\d+)",
    )
    wf.job(
        "report",
        needs=train,
        run=f'echo "trained on {prepare.outputs["rows"]} rows, '
        f'accuracy {train.outputs["accuracy"]}"',
    )
    expected = canonical(load_workflow_file(EXAMPLES / "quickstart.yaml"))
    assert canonical(wf.validate(known_hosts=HOSTS)) == expected


def test_fanout_by_hand_with_a_loop() -> None:
    wf = Workflow("sweep", concurrency=8, defaults={"timeout": "5m"}, base_dir=EXAMPLES)
    setup = wf.job("setup", run='echo "setting up"')
    runs = [
        wf.job(
            f"run-{i:02d}",
            needs=[setup],
            run='echo "::ccd output score=$((RANDOM % 100))"',
            env={"SEED": i},
        )
        for i in range(1, 9)
    ]
    wf.job(
        "summary",
        needs=runs,
        run='echo "scores: $CCD_OUTPUT_RUN_01_SCORE $CCD_OUTPUT_RUN_02_SCORE ..."',
    )
    expected = canonical(load_workflow_file(EXAMPLES / "fanout.yaml"))
    assert canonical(wf.validate(known_hosts=HOSTS)) == expected


def test_retry_by_hand() -> None:
    wf = Workflow("failures", base_dir=EXAMPLES)
    flaky = wf.job(
        "flaky",
        run='[ "$CCD_ATTEMPT" -ge 2 ] || { echo "transient error"; exit 3; }; echo ok',
        retries=2,
        retry_delay="1s",
    )
    broken = wf.job("broken", run='echo "this job always fails" >&2; exit 1')
    wf.job("after-broken", needs=[broken], run='echo "never runs; skipped because broken failed"')
    wf.job("independent", needs=[flaky], run='echo "runs whatever happens to broken"')
    wf.job("slow", run="sleep 60", timeout=2)
    expected = canonical(load_workflow_file(EXAMPLES / "retry.yaml"))
    assert canonical(wf.validate(known_hosts=HOSTS)) == expected
