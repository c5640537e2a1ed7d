"""LogScanner.last_line: the line that says why a failed job failed, from the log's tail."""

from __future__ import annotations

import pytest

from ccd.logscan import LAST_LINE_LIMIT, TAIL, LogScanner


def last_line(*chunks: bytes) -> str | None:
    scanner = LogScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    scanner.close()
    return scanner.last_line()


@pytest.mark.parametrize(
    ("chunks", "line"),
    [
        pytest.param((), None, id="no-log"),
        pytest.param((b"\n  \n\t\n",), None, id="blank-lines-only"),
        pytest.param((b"one\ntwo\n",), "two", id="the-last-line"),
        pytest.param((b"one\ntwo",), "two", id="a-last-line-without-newline"),
        pytest.param((b"err\n\n  \n",), "err", id="blank-lines-after-it"),
        pytest.param(
            (b"err\n::ccd progress=50\n  # cloudmesh status=done progress=100\n",),
            "err",
            id="markers-are-not-it",
        ),
        pytest.param((b"10%\r50%\r100%\n",), "100%", id="a-progress-bar-shows-its-last-redraw"),
        pytest.param((b"failed\r\n",), "failed", id="crlf"),
        pytest.param((b"  a \t  b  \n",), "a b", id="on-one-line"),
        pytest.param((b"Fa", b"tal: ", b"no disk\n"), "Fatal: no disk", id="across-chunks"),
        pytest.param((b"first\n", b"x" * TAIL * 3, b"\nlast\n"), "last", id="after-a-flood"),
        pytest.param(
            (b"start\n" + b"y" * (TAIL - 1) + b"\n",), "y" * (LAST_LINE_LIMIT - 1) + "…", id="cut"
        ),
        pytest.param(
            (b"\n".join([b"::ccd progress=1"] * (TAIL // 10)),),
            None,
            id="a-tail-of-markers-only-has-none",
        ),
        pytest.param((b"ok\n", b"\xff\xfe bad bytes\n"), "\ufffd\ufffd bad bytes", id="not-utf8"),
    ],
)
def test_last_line(chunks: tuple[bytes, ...], line: str | None) -> None:
    assert last_line(*chunks) == line


def test_a_line_cut_by_the_tail_is_not_shown_when_a_whole_one_is_there() -> None:
    # the tail starts inside a long line: the whole line after it is the answer,
    # and a lone partial line is shown rather than nothing
    assert last_line(b"z" * TAIL + b"\nwhole\n") == "whole"
    assert last_line(b"q" * (TAIL * 2)) == "q" * (LAST_LINE_LIMIT - 1) + "…"


def test_a_big_log_keeps_only_its_tail() -> None:
    scanner = LogScanner()
    for _ in range(100):
        scanner.feed(b"line of output\n" * 10_000)
    assert len(scanner._tail) <= TAIL
    assert scanner.last_line() == "line of output"
