from __future__ import annotations

from ccd.logscan import MAX_LINE, LogScanner
from ccd.markers import MarkerWarning, Output, Progress


def test_markers_split_across_chunks() -> None:
    scan = LogScanner()
    assert scan.feed(b"noise\n::ccd prog") == []
    found = scan.feed(b"ress=40\nmore noise\n::ccd output k=v\n")
    assert found == [Progress(value=40.0), Output("k", "v")]


def test_last_line_without_newline_is_read_at_close() -> None:
    scan = LogScanner()
    assert scan.feed(b"# cloudmesh status=done progress=100") == []
    assert scan.close() == [Progress(value=100.0, status="done")]


def test_ordinary_lines_produce_nothing() -> None:
    scan = LogScanner()
    assert scan.feed(b"epoch 1\n# a comment\n::other\n" * 1000) == []


def test_progress_regex_reports_the_newest_value() -> None:
    scan = LogScanner(r"Epoch (?P<progress>\d+)/10")
    assert scan.feed(b"Epoch 1/10\nEpoch 2/10\nloss 3\n") == [Progress(value=2.0)]


def test_overlong_line_is_dropped_not_buffered() -> None:
    scan = LogScanner()
    scan.feed(b"x" * (MAX_LINE + 10))
    scan.feed(b"y" * MAX_LINE)
    assert scan.feed(b"::ccd progress=1\n") == []  # still the overlong line
    assert scan.feed(b"::ccd progress=2\n") == [Progress(value=2.0)]


def test_malformed_marker_is_a_warning() -> None:
    found = LogScanner().feed(b"::ccd progress=abc\n")
    assert len(found) == 1 and isinstance(found[0], MarkerWarning)
