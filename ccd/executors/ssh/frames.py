"""The follower's wire format: ccd's commands to it, and its frames back.

Both directions are lines of ASCII words; a frame that carries bytes (a piece of a
log, an exit file) says how many follow its header line, so log bytes travel as
they are (no escaping, no base64) and a reader never has to guess where a frame
ends.  The follower's side is ``remote/follow.py`` and ``remote/follow.sh``;
docs/decisions.md says why the format is this simple.

Pure: encoding and decoding only, the stream (`stream.py`) does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the follower protocol version both scripts announce in their ready frame
VERSION = "1"


class FrameError(ValueError):
    """The follower sent something that is not a frame (a bug, or not our follower)."""


# -- ccd → follower ---------------------------------------------------------------------
def add_command(ident: int, offset: int, *, shared: bool, pid: int, run_dir: str) -> bytes:
    """Follow `run_dir` from log offset `offset`.  `shared`: written on other machines
    (Slurm), so polled and its exit left to ccd; `pid`: the wrapper (0: none here)."""
    if "\n" in run_dir:
        raise ValueError(f"a run directory with a newline cannot be followed: {run_dir!r}")
    return f"A {ident} {offset} {'s' if shared else 'l'} {pid} {run_dir}\n".encode(
        errors="surrogateescape"
    )


def drop_command(ident: int) -> bytes:
    return f"D {ident}\n".encode()


def flush_command(token: int, ident: int) -> bytes:
    """Look at `ident` now and answer ``F token`` once everything found is sent."""
    return f"F {token} {ident}\n".encode()


PING = b"P\n"


# -- follower → ccd ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ready:
    kind: str  # python3 or sh
    pid: int
    version: str


@dataclass(frozen=True, slots=True)
class LogBytes:
    ident: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ExitFile:
    """The wrapper wrote its exit file; every log byte before it was sent first."""

    ident: int
    mtime: float
    text: bytes


@dataclass(frozen=True, slots=True)
class Gone:
    """The wrapper's pid is gone and it wrote no exit file (log sent to its end)."""

    ident: int


@dataclass(frozen=True, slots=True)
class Flushed:
    token: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class Notice:
    text: str


Frame = Ready | LogBytes | ExitFile | Gone | Flushed | Heartbeat | Notice


@dataclass(frozen=True, slots=True)
class Header:
    """A frame's first line, parsed; `payload` bytes follow it on the stream."""

    kind: str
    fields: tuple[str, ...]
    payload: int


#: fields each header kind has, and which of them counts the payload bytes
_SHAPES: dict[str, tuple[int, int | None]] = {
    "R": (3, None),
    "L": (3, 2),
    "X": (3, 2),
    "G": (1, None),
    "F": (1, None),
    "H": (0, None),
}


def parse_header(line: bytes) -> Header:
    """A header line (with or without its newline)."""
    text = line.rstrip(b"\n").decode(errors="replace")
    kind, _, rest = text.partition(" ")
    if kind == "E":
        return Header("E", (rest,), 0)
    shape = _SHAPES.get(kind)
    fields = tuple(rest.split()) if rest else ()
    if shape is None or len(fields) != shape[0]:
        raise FrameError(f"not a follower frame: {text[:200]!r}")
    size = 0
    if shape[1] is not None:
        size = _number(fields[shape[1]], text)
    return Header(kind, fields, size)


def _number(word: str, text: str) -> int:
    if not word.isdigit():
        raise FrameError(f"not a follower frame: {text[:200]!r}")
    return int(word)


def make_frame(header: Header, payload: bytes) -> Frame:
    """The frame of `header` with its `payload` (``header.payload`` bytes)."""
    f = header.fields
    text = " ".join((header.kind, *f))
    try:
        match header.kind:
            case "R":
                return Ready(f[0], int(f[1]), f[2])
            case "L":
                return LogBytes(int(f[0]), int(f[1]), payload)
            case "X":
                return ExitFile(int(f[0]), float(f[1]), payload)
            case "G":
                return Gone(int(f[0]))
            case "F":
                return Flushed(int(f[0]))
            case "H":
                return Heartbeat()
    except ValueError as exc:
        raise FrameError(f"not a follower frame: {text[:200]!r}") from exc
    return Notice(f[0] if f else "")
