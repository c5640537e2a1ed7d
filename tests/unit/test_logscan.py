from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ccd.logscan import MAX_LINE, LogScanner
from ccd.markers import MarkerWarning, Output, Progress, parse_line


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


_PIECES = [
    b"::ccd progress=40\n", b"::ccd output k=v\n", b"  # cloudmesh status=done progress=7\n",
    b"\t::ccd progress=", b"100\n", b"::c", b"cd progress=3\n", b"# cloud", b"mesh progress=9\n",
    b"plain text\n", b"x" * 300, b"\n", b"no marker ::ccd progress=5 mid-line\n", b"::ccd\tbad\n",
]  # fmt: skip


def _reference(log: bytes) -> list[object]:
    """Markers of every line, parsed one by one (the slow, obvious way)."""
    found = []
    for line in log.split(b"\n"):
        stripped = line.lstrip(b" \t")
        if stripped.startswith((b"::ccd", b"# cloudmesh")):
            marker = parse_line(line.decode("utf-8", "replace"))
            if marker is not None:
                found.append(marker)
    return found


@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
)
def test_any_chunking_finds_the_markers_of_each_line(pieces: list[bytes], cuts: list[int]) -> None:
    log = b"".join(pieces)
    bounds = sorted({0, len(log), *(c for c in cuts if c < len(log))})
    scan = LogScanner()
    found: list[object] = []
    for start, end in itertools.pairwise(bounds):
        found += scan.feed(log[start:end])
    found += scan.close()
    assert found == _reference(log)
