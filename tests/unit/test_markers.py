from __future__ import annotations

import pytest

from ccd.markers import (
    MAX_OUTPUT_BYTES,
    MarkerWarning,
    Output,
    Progress,
    compile_progress_regex,
    parse_line,
)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\n",
        "hello world",
        "Epoch 3/10 loss=0.2",
        "   indented output",
        "# a shell comment",
        "#cloudmeshy",
        "# cloudmeshing is fun",
        "# cloudmesh is a project",  # no key=value: a comment, not a marker
        ":: not ccd",
        "::ccdx progress=5",
        "::ccd-progress=5",
        "key=value",
    ],
)
def test_ordinary_lines_are_not_markers(line: str) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("line", "marker"),
    [
        ("# cloudmesh status=running progress=50 pid=123", Progress(50.0, status="running")),
        ("# cloudmesh status=done", Progress(None, status="done")),
        ("# cloudmesh progress=12.5", Progress(12.5)),
        ("  # cloudmesh progress=100 status=done\r\n", Progress(100.0, status="done")),
        (
            "# cloudmesh status=running progress=1 extra words pid=7",
            Progress(1.0, status="running"),
        ),
        ("::ccd progress=42", Progress(42.0)),
        ('::ccd progress=42 msg="epoch 3/10"', Progress(42.0, message="epoch 3/10")),
        ("::ccd msg=starting", Progress(None, message="starting")),
        ("::ccd progress=0 message=go", Progress(0.0, message="go")),
        ('::ccd msg="say \\"hi\\" \\\\ there"', Progress(None, message='say "hi" \\ there')),
        ('::ccd msg="two\\nlines"', Progress(None, message="two\nlines")),
        ("\t::ccd progress=7.25\n", Progress(7.25)),
        ("::ccd output acc=0.93", Output("acc", "0.93")),
        ("::ccd output path=/data/out dir/x.csv", Output("path", "/data/out dir/x.csv")),
        ('::ccd output msg="quoted \\"value\\""', Output("msg", 'quoted "value"')),
        ('::ccd output msg="spaced"   ', Output("msg", "spaced")),
        ("::ccd output empty=", Output("empty", "")),
        ("::ccd output _k2=a=b", Output("_k2", "a=b")),
    ],
)
def test_markers(line: str, marker: object) -> None:
    assert parse_line(line) == marker


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("# cloudmesh pid=123", "neither status= nor progress="),
        ("# cloudmesh progress=abc", "not a number"),
        ("# cloudmesh progress=150", "not within 0..100"),
        ("# cloudmesh progress=-1", "not within 0..100"),
        ("::ccd", "empty ::ccd marker"),
        ("::ccd   ", "empty ::ccd marker"),
        ("::ccd progress=101", "not within 0..100"),
        ("::ccd progress=nan", "not a number"),
        ("::ccd progress=fast", "not a number"),
        ("::ccd progress=1e999", "not within 0..100"),
        ("::ccd frobnicate=1", "unknown key 'frobnicate'"),
        ("::ccd hello", "cannot read"),
        ("::ccd msg=two words", "cannot read 'words'"),
        ('::ccd msg="unterminated', "cannot read"),
        ("::ccd output", "expected KEY=VALUE"),
        ("::ccd output novalue", "expected KEY=VALUE"),
        ("::ccd output 1bad=x", "expected KEY=VALUE"),
        ("::ccd output bad-key=x", "expected KEY=VALUE"),
        ('::ccd output k="open', "unterminated or malformed"),
        ('::ccd output k="a" trailing', "unterminated or malformed"),
    ],
)
def test_malformed_markers_are_warnings(line: str, words: str) -> None:
    marker = parse_line(line)
    assert isinstance(marker, MarkerWarning)
    assert words in marker.message


@pytest.mark.parametrize(
    "value",
    [
        "x" * (MAX_OUTPUT_BYTES + 1),
        "é" * (MAX_OUTPUT_BYTES // 2 + 1),
        "😀" * (MAX_OUTPUT_BYTES // 4 + 1),
    ],
)
def test_large_outputs_are_refused_with_a_hint(value: str) -> None:
    marker = parse_line(f"::ccd output big={value}")
    assert isinstance(marker, MarkerWarning)
    assert "64 KiB" in marker.message
    assert "file" in marker.message and "path" in marker.message


@pytest.mark.parametrize(
    "value", ["x" * MAX_OUTPUT_BYTES, "é" * (MAX_OUTPUT_BYTES // 2), "😀" * (MAX_OUTPUT_BYTES // 4)]
)
def test_outputs_up_to_the_limit_are_kept(value: str) -> None:
    assert parse_line(f"::ccd output big={value}") == Output("big", value)


@pytest.mark.parametrize(
    ("pattern", "line", "value"),
    [
        (r"Epoch (?P<progress>\d+)", "Epoch 30/100", 30.0),
        (r"(\d+(?:\.\d+)?)%", "done 12.5% of it", 12.5),
        (r"Epoch (?P<current>\d+)/(?P<total>\d+)", "Epoch 3/10", 30.0),
        (r"Epoch (?P<current>\d+)/(?P<total>\d+)", "Epoch 3/0", None),
        (r"Epoch (?P<progress>\d+)", "no match here", None),
        (r"step (\d+)", "step 250", 250.0),  # out of range is the caller's to warn about
        (r"(a)?b", "b", None),  # the group did not take part
        (r"x=(\w+)", "x=abc", None),
    ],
)
def test_progress_regex(pattern: str, line: str, value: float | None) -> None:
    assert compile_progress_regex(pattern)(line) == value


@pytest.mark.parametrize(
    ("pattern", "words"),
    [("(", "does not compile"), (r"Epoch \d+", "needs a group"), ("a{99999999999}", "compile")],
)
def test_bad_progress_regex(pattern: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        compile_progress_regex(pattern)


def test_progress_regex_with_a_python_warning_still_compiles() -> None:
    # re warns "Possible nested set" for '[[': with warnings as errors this once
    # escaped the validator as a FutureWarning (found by the fuzz test)
    match = compile_progress_regex("([[]+)")
    assert match("no percent here") is None
