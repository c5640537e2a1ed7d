"""ccd.spec.quick: the quick composer gives the full composer's data, or gives up."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccd.errors import SpecError
from ccd.spec import composer, loader, quick
from ccd.spec.validate import load_workflow_text

FUZZ = settings(
    max_examples=int(os.environ.get("CCD_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: plain scalars that YAML 1.1 reads as something other than text, and some that look so
TRICKY = [
    "yes", "No", "on", "OFF", "true", "~", "null", "", "0x1f", "0o17", "017", "0b101",
    "1_000", "1:30", "190:20:30", "-1:30", "1.5", "1e3", "1.0e+3", ".inf", "-.Inf", ".nan",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-13-45", "=", "<<", "a", "l4_3",
    "run", "needs", "+1", "-", ".5", "0", "00", "8_0", "1__0",
]  # fmt: skip


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1, 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def check_same(text: str) -> None:
    try:
        lean = quick.quick_compose(text)
    except quick.GiveUp:
        return
    full = composer.compose(text, "f.yaml")
    assert not full.problems, full.problems
    assert same(lean, full.data), (lean, full.data)


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                *TRICKY,
                ":",
                ": ",
                "- ",
                "\n",
                "\n  ",
                "\n    ",
                " ",
                "[",
                "]",
                "{",
                "}",
                ",",
                "&x ",
                "*x",
                "<<: ",
                "!!str ",
                "!!int ",
                "!x ",
                "! ",
                "? ",
                "'",
                '"',
                "\\0",
                "\\ud800",
                "#",
                "---\n",
                "|\n",
            ]
        ),
        max_size=60,
    ).map("".join)
)
def test_quick_composer_agrees_on_yamlish_text(text: str) -> None:
    try:
        check_same(text)
    except SpecError:
        pytest.fail(f"the quick composer accepted what the full one refuses: {text!r}")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(TRICKY),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(TRICKY) | st.text(max_size=6) | st.integers(), inner)
    ),
    max_leaves=30,
)


@FUZZ
@given(documents, st.booleans())
def test_quick_composer_agrees_on_dumped_data(value: Any, flow: bool) -> None:
    check_same(yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True))


@FUZZ
@given(st.lists(st.sampled_from(TRICKY), min_size=1, max_size=8))
def test_quick_composer_agrees_on_plain_scalars(words: list[str]) -> None:
    check_same("".join(f"k{i}: {word}\n- {word}\n"[:-1] + "\n" for i, word in enumerate(words)))
    check_same("[" + ", ".join(words) + "]\n")


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "base: &b {x: 1}\nc: {<<: *b}\n",  # merges
        "a: 1\na: 2\n",  # a duplicate key
        "a: !x 1\n",  # an unsupported tag
        "a: !!int ''\n",  # a tag its text does not fit
        "? [a]\n: 1\n",  # a list as a key
        "a: 1\n---\nb: 2\n",  # two documents
        "",  # nothing
        "a: [1\n",  # a syntax error
        'a: "\\0"\n',  # NUL
    ],
)
def test_quick_composer_leaves_the_unusual_to_the_full_one(text: str) -> None:
    with pytest.raises(quick.GiveUp):
        quick.quick_compose(text)


def test_explicit_tags_are_read_quickly() -> None:
    assert quick.quick_compose("a: !!str 1\nb: ! 2\nc: !!float '1'\n") == {
        "a": "1",
        "b": "2",
        "c": 1.0,
    }


def test_a_tag_its_text_does_not_fit_is_a_problem_not_a_crash() -> None:
    for text, tag in [
        ("!!int ''", "int"),
        ("!!bool maybe", "bool"),
        ("!!timestamp x", "timestamp"),
    ]:
        with pytest.raises(SpecError) as caught:
            loader.load_yaml(f"a: {text}\n", "f.yaml")
        [problem] = caught.value.problems
        assert (problem.code, problem.line, problem.column) == ("bad-scalar", 1, 4)
        assert f"as {tag} (not a valid value)" in problem.message


def test_positions_are_found_only_when_asked() -> None:
    text = "jobs:\n  a: {run: x, needs: [b]}\n  b:\n    run: y\n"
    doc = loader.load_yaml(text, "f.yaml")
    assert isinstance(doc.positions, quick.LazyPositions)
    assert doc.positions._positions is None
    full = composer.compose(text, "f.yaml")
    for path in [("jobs",), ("jobs", "a"), ("jobs", "a", "needs", 0), ("jobs", "b", "run")]:
        assert doc.positions.key(path) == full.positions.key(path)
        assert doc.positions.value(path) == full.positions.value(path)


def test_a_problem_in_a_quickly_loaded_file_has_its_position(tmp_path: Path) -> None:
    text = "jobs:\n  a: {run: x}\n  b:\n    run: y\n    needs: [a, c]\n    retries: -1\n"
    with pytest.raises(SpecError) as caught:
        load_workflow_text(text, source="f.yaml", base_dir=tmp_path)
    assert [(p.code, p.line, p.column) for p in caught.value.problems] == [
        ("unknown-parent", 5, 16),
        ("negative-number", 6, 14),
    ]
