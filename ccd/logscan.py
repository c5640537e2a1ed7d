"""Turn a job's log bytes into markers (pure).

Most log lines are not markers, so a chunk's complete lines are first searched
for the two marker prefixes as plain substrings (`bytes.find`, GB/s), then, only
if one is there, with a regex that anchors them at a line's start (it tries
every line start: ~150 MB/s, slower than a job can write); only its hits are
decoded and parsed.  A per-job ``progress_regex`` needs every line, and then
only costs what it must.  Partial lines wait for their newline, but a line
longer than `MAX_LINE` is dropped rather than buffered without bound.

The log's last non-empty line (not a marker) says why a failed job failed; it is
found once, at the end, in the last `TAIL` bytes the scanner saw (a bounded copy
of each chunk's end: a 1 GB log costs no more than a short one).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ccd.markers import Marker, MarkerWarning, Progress, compile_progress_regex, parse_line

MAX_LINE = 1024 * 1024
#: bytes of the log's end kept to find its last line in
TAIL = 4096
#: the most characters of the last line kept
LAST_LINE_LIMIT = 200
_MARKER_LINE = re.compile(rb"^[ \t]*(?:::ccd[ \t]|# cloudmesh[ \t]).*$", re.MULTILINE)
#: what every marker line holds; a chunk with neither has no marker
_PREFIXES = (b"::ccd", b"# cloudmesh")
_TEXT_PREFIXES = ("::ccd", "# cloudmesh")


class LogScanner:
    def __init__(self, progress_regex: str | None = None) -> None:
        self._pending = b""
        self._overlong = False  # inside a line longer than MAX_LINE: skip to its end
        self._tail = b""  # the log's last TAIL bytes (or fewer)
        self._cut = False  # whether `_tail` starts inside a line
        self._progress: Callable[[str], float | None] | None = (
            compile_progress_regex(progress_regex) if progress_regex else None
        )

    def feed(self, chunk: bytes) -> list[Marker]:
        self._keep_tail(chunk)
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._hold(chunk)
            return []
        if self._progress is None and not self._may_hold_marker(chunk, cut):
            # the common case, searched in place: a flood's chunks are not copied
            self._pending, self._overlong = b"", False
            self._hold(chunk[cut + 1 :])
            return []
        head, tail = chunk[: cut + 1], chunk[cut + 1 :]
        if self._overlong:
            # the rest of an overlong line ends at the first newline of this chunk
            head = head[head.find(b"\n") + 1 :]
            self._overlong = False
            self._pending = b""
        markers = self._scan(self._pending + head)
        self._pending = b""
        self._hold(tail)
        return markers

    def _may_hold_marker(self, chunk: bytes, cut: int) -> bool:
        """Whether a marker prefix is in the complete lines: the held bytes and
        the chunk's first line together (a prefix may straddle them), then the
        chunk's other complete lines."""
        start, line = 0, b""
        if self._pending:
            start = chunk.find(b"\n")
            line = self._pending + chunk[:start]
        return any(prefix in line or chunk.find(prefix, start, cut) >= 0 for prefix in _PREFIXES)

    def close(self) -> list[Marker]:
        """Markers in a last line that has no newline."""
        if self._overlong or not self._pending:
            return []
        rest, self._pending = self._pending + b"\n", b""
        return self._scan(rest)

    def _keep_tail(self, chunk: bytes) -> None:
        # a slice of a big chunk, not the chunk: a flood's chunks are not copied
        tail = chunk if len(chunk) >= TAIL else self._tail + chunk
        if len(tail) > TAIL:
            self._cut = tail[-TAIL - 1] != 0x0A
            tail = tail[-TAIL:]
        elif tail is chunk:  # exactly TAIL bytes: the byte before is the last tail's
            self._cut = self._tail[-1:] not in (b"", b"\n")
        self._tail = tail

    def last_line(self) -> str | None:
        """The last non-empty line of what was fed that is not a marker, on one line and
        at most LAST_LINE_LIMIT characters; None if the log's tail holds none."""
        lines = self._tail.decode("utf-8", "replace").split("\n")
        if self._cut and len(lines) > 1:
            lines = lines[1:]  # a line's end only: the line that has a start is better
        for raw in reversed(lines):
            # a progress bar redraws its line with \r: what the terminal last showed
            line = " ".join(raw.rsplit("\r", 1)[-1].split())
            if not line:
                line = " ".join(raw.split())
            if line and not line.startswith(_TEXT_PREFIXES):
                if len(line) > LAST_LINE_LIMIT:
                    line = line[: LAST_LINE_LIMIT - 1] + "…"
                return line
        return None

    def _hold(self, data: bytes) -> None:
        if self._overlong:
            return
        self._pending += data
        if len(self._pending) > MAX_LINE:
            self._pending = b""
            self._overlong = True

    def _scan(self, lines: bytes) -> list[Marker]:
        found: list[Marker] = []
        if _PREFIXES[0] in lines or _PREFIXES[1] in lines:
            for match in _MARKER_LINE.finditer(lines):
                marker = parse_line(match.group().decode("utf-8", "replace"))
                if marker is not None:
                    found.append(marker)
        if self._progress is not None:
            found.extend(self._regex_progress(lines))
        return found

    def _regex_progress(self, lines: bytes) -> list[Marker]:
        assert self._progress is not None
        last: float | None = None
        for line in lines.decode("utf-8", "replace").splitlines():
            value = self._progress(line)
            if value is not None:
                last = value
        if last is None:
            return []
        if not 0 <= last <= 100:
            return [MarkerWarning(f"progress_regex matched {last}, which is not within 0..100")]
        return [Progress(value=last)]
