from __future__ import annotations

import pytest

from ccd.expand import expand

VARIABLES = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/ada",
    "A": "a",
    "A_B9": "ab9",
    "EMPTY": "",
    "DOLLAR": "$HOME",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/opt/tools/bin:$PATH", "/opt/tools/bin:/usr/bin:/bin"),
        ("${HOME}/bin", "/home/ada/bin"),
        ("$HOME/bin", "/home/ada/bin"),
        ("$A_B9", "ab9"),
        ("$A_B9/x", "ab9/x"),
        ("${A}_B9", "a_B9"),
        ("x${A}y$A.z", "xaya.z"),
        ("$A$A", "aa"),
        ("$A-$A", "a-a"),
        ("plain text", "plain text"),
        ("", ""),
    ],
)
def test_references_become_values(text: str, expected: str) -> None:
    assert expand(text, VARIABLES.get) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$$", "$"),
        ("price: $$5", "price: $5"),
        ("$$PATH", "$PATH"),
        ("$$$PATH", "$/usr/bin:/bin"),
        ("$$$$", "$$"),
    ],
)
def test_double_dollar_is_one_literal_dollar(text: str, expected: str) -> None:
    assert expand(text, VARIABLES.get) == expected


@pytest.mark.parametrize(
    "text",
    [
        "$1",
        "$",
        "a$",
        "${",
        "${A",
        "${}",
        "${A:-b}",
        "${A B}",
        "$-x",
        "$ x",
        "${1}",
        "$.A",
        # a workflow's output reference is not a variable
        "${{ jobs.a.outputs.k }}",
    ],
)
def test_any_other_dollar_is_literal(text: str) -> None:
    assert expand(text, VARIABLES.get) == text


def test_an_unset_variable_becomes_empty() -> None:
    assert expand("/opt/x/bin:$NOPE:${NOPE}:$EMPTY", VARIABLES.get) == "/opt/x/bin:::"


def test_values_are_not_expanded_again() -> None:
    assert expand("$DOLLAR", VARIABLES.get) == "$HOME"


def test_lookup_is_asked_for_names_only() -> None:
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return None

    expand("$A ${B_2} $$C $1 ${D:-e}", lookup)
    assert asked == ["A", "B_2"]
