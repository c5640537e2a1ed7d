"""The service unit's Environment= lines: quoted as systemd reads them back.

`systemd-analyze verify` of these units runs in tests/integration/test_service.py;
here the quoting is checked value by value against systemd's documented reading of
a double-quoted word (systemd.syntax(7): C escapes; systemd.unit(5): `%%` is `%`).
"""

from __future__ import annotations

import re

import pytest

from ccd.daemon import environment
from ccd.daemon.units import assignment, exec_line, render_service, unit_variables
from ccd.errors import CcdError

_C_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


def systemd_reads(word: str) -> str:
    """One double-quoted ``Environment=`` word as systemd turns it into ``NAME=value``
    (the part of its rules these words use; anything else fails the test)."""
    assert word.startswith('"') and word.endswith('"') and len(word) >= 2, word
    body, out, i = word[1:-1], [], 0
    while i < len(body):
        char = body[i]
        assert char != '"', f"unescaped quote in {word}"
        if char == "\\":
            out.append(_C_ESCAPES[body[i + 1]])
            i += 2
        elif char == "%":
            assert body[i + 1] == "%", f"a specifier in {word}"
            out.append("%")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


HARD_VALUES = [
    "hello",
    "two words",
    "  padded  ",
    'say "hi"',
    "it's",
    "back\\slash",
    "ends with a backslash\\",
    "100% and %h and %%",
    "$HOME stays $HOME; ${A:-b} $$",
    "tab\there",
    "line one\nline two",
    "#not a comment; nor this",
    "ünïcødé ☃",
    "",
    "=leading equals=",
]


@pytest.mark.parametrize("value", HARD_VALUES)
def test_a_value_reads_back_as_written(value: str) -> None:
    word = assignment("NAME", value)
    assert systemd_reads(word) == f"NAME={value}"
    # one line of the unit: a newline escaped, never a raw one
    assert "\n" not in word


def test_dollar_is_not_doubled_since_environment_expands_nothing() -> None:
    assert assignment("P", "/opt/x/bin:$PATH") == '"P=/opt/x/bin:$PATH"'


@pytest.mark.parametrize("bad", ["\x1b[0m", "bell\a", "del\x7f", "cr\r"])
def test_control_characters_systemd_refuses_are_an_error(bad: str) -> None:
    with pytest.raises(CcdError, match="X's value has control characters systemd refuses"):
        assignment("X", bad)


def test_the_unit_sets_path_then_the_block_then_the_marker() -> None:
    block = {"CCD_TEST_VAR": "hello", "PATH": "/opt/x/bin:$PATH", "TOOLS": "$HOME/t"}
    base = {"PATH": "/v/bin:/usr/bin", "HOME": "/home/ada"}
    variables = unit_variables(block, base, config="/c/ccd config.yaml")
    assert variables == {
        "PATH": "/opt/x/bin:/v/bin:/usr/bin",
        "CCD_TEST_VAR": "hello",
        "TOOLS": "/home/ada/t",
        "CCD_CONFIG": "/c/ccd config.yaml",
        environment.MARKER: environment.digest(block),
    }
    unit = render_service("/v/bin/python -m ccd.daemon.main run", variables)
    lines = [line for line in unit.splitlines() if line.startswith("Environment=")]
    assert lines == [
        "Environment=PYTHONUNBUFFERED=1",
        'Environment="PATH=/opt/x/bin:/v/bin:/usr/bin"',
        'Environment="CCD_TEST_VAR=hello"',
        'Environment="TOOLS=/home/ada/t"',
        'Environment="CCD_CONFIG=/c/ccd config.yaml"',
        f'Environment="{environment.MARKER}={environment.digest(block)}"',
    ]
    # the lines stay in [Service]
    assert unit.index("[Service]") < unit.index("Environment=") < unit.index("[Install]")


def test_without_a_block_only_path_is_set_each_directory_once() -> None:
    variables = unit_variables({}, {"PATH": "/v/bin:/bin::/v/bin:/bin"})
    assert variables == {"PATH": "/v/bin:/bin"}
    assert re.search(r'^Environment="PATH=/v/bin:/bin"$', render_service(variables=variables), re.M)


def test_a_refused_name_writes_no_unit() -> None:
    with pytest.raises(CcdError, match="invalid variable name 'MY-VAR'"):
        unit_variables({"MY-VAR": "1"}, {"PATH": "/bin"})


def test_the_repository_unit_has_no_environment_but_pythonunbuffered() -> None:
    unit = render_service()
    assert [line for line in unit.splitlines() if "Environment" in line] == [
        "Environment=PYTHONUNBUFFERED=1"
    ]


def exec_reads(word: str) -> str:
    """One double-quoted ``ExecStart=`` word as systemd reads it: as an
    ``Environment=`` word, and ``$$`` is one ``$`` (``$NAME`` would expand)."""
    text = systemd_reads(word.replace("$$", "\0"))
    assert "$" not in text, f"an expansion in {word}"
    return text.replace("\0", "$")


@pytest.mark.parametrize(
    "path", ["/usr/bin/python3", "/home/a b/.venv/bin/python", '/opt/100%/$x/py"thon']
)
def test_the_command_line_reads_back_word_by_word(path: str) -> None:
    line = exec_line(path, "-m", "ccd.daemon.main", "run")
    words = re.findall(r'"(?:[^"\\]|\\.)*"|[^ "]+', line)
    assert " ".join(words) == line
    read = [exec_reads(w) if w.startswith('"') else w for w in words]
    assert read == [path, "-m", "ccd.daemon.main", "run"]
