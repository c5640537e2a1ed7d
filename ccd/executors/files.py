"""Fingerprints of files where jobs run: a job's ``inputs`` and ``outputs_files``.

A fingerprint is what a cache key holds of a file: a digest of its bytes
(``cache: content``), or its size and modification time (``cache: mtime``); None
when the file does not exist. On this machine the daemon reads the files itself,
in a worker thread, and remembers each content digest by the file's identity
(device, inode, size, mtime): a 10 GB input shared by a thousand jobs is read
once, and a file touched without changes is read again but keeps its digest. On
another host one short command (POSIX ``sh``, ``stat``, ``sha256sum`` or
``shasum``) answers for all of a job's files at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import stat
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from ccd.caching import DIGEST_PREFIX
from ccd.executors.base import LaunchError

#: (host, paths, by content) -> each path's fingerprint, None when it is missing
FileStates = Callable[[str, Sequence[str], bool], Awaitable[dict[str, str | None]]]
#: runs a command on a host: (exit status, stdout, stderr)
RunOnHost = Callable[[str, str], Awaitable[tuple[int, str, str]]]

_CHUNK: Final = 1 << 20
#: content digests by (path, device, inode, size, mtime_ns); bounded, oldest dropped
_MEMO_MAX: Final = 10_000
_memo: dict[tuple[str, int, int, int, int], str] = {}


def local_states(paths: Sequence[str], content: bool) -> dict[str, str | None]:
    """Fingerprints of files on this machine (blocking: run it in a thread)."""
    return {path: _local_state(path, content) for path in paths}


def _local_state(path: str, content: bool) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LaunchError(f"cannot read input {path}: {exc.strerror or exc}") from None
    if not content:
        return f"size {st.st_size} mtime {st.st_mtime_ns}"
    if stat.S_ISDIR(st.st_mode):
        # its own mtime does not move when a file deep inside changes: never memoised
        return _directory_digest(path)
    identity = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    found = _memo.get(identity)
    if found is None:
        found = _content_digest(path)
        if len(_memo) >= _MEMO_MAX:
            del _memo[next(iter(_memo))]
        _memo[identity] = found
    return found


def _content_digest(path: str) -> str:
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                sha.update(chunk)
    except OSError as exc:
        raise LaunchError(f"cannot read input {path}: {exc.strerror or exc}") from None
    return DIGEST_PREFIX + sha.hexdigest()[:32]


def _directory_digest(path: str) -> str:
    """A directory by the relative path and content of each file in it, recursively."""
    sha = hashlib.sha256()
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            file = os.path.join(root, name)
            sha.update(os.path.relpath(file, path).encode() + b"\0")
            sha.update(str(_local_state(file, True)).encode())
    return DIGEST_PREFIX + sha.hexdigest()[:32]


def remote_command(paths: Sequence[str], content: bool) -> str:
    """One sh command printing ``<index> <fingerprint>`` (or ``<index> -``) per path."""
    lines = ["i=0", "for f do"]
    lines.append('  if [ ! -e "$f" ]; then echo "$i -"')
    if content:
        # GNU coreutils' sha256sum, else the BSD/macOS shasum; a directory by its listing
        lines.append(
            '  elif [ -d "$f" ]; then h=$(cd "$f" && find . -type f | LC_ALL=C sort |'
            ' while IFS= read -r g; do printf \'%s \' "$g"; { sha256sum "$g" 2>/dev/null'
            ' || shasum -a 256 "$g"; } | cut -d" " -f1; done | { sha256sum 2>/dev/null ||'
            ' shasum -a 256; } | cut -d" " -f1) && echo "$i sha256:$h"'
        )
        lines.append(
            '  else h=$({ sha256sum "$f" 2>/dev/null || shasum -a 256 "$f"; } | cut -d" " -f1)'
            ' && echo "$i sha256:$h"'
        )
    else:
        lines.append(
            "  else s=$(stat -c '%s %Y' \"$f\" 2>/dev/null || stat -f '%z %m' \"$f\") &&"
            ' echo "$i stat $s"'
        )
    lines += ["  fi", "  i=$((i + 1))", "done"]
    script = "\n".join(lines)
    # the paths stay the remote shell's words: ~/ is expanded there
    words = " ".join(_remote_word(path) for path in paths)
    return f"sh -c {shlex.quote(script)} sh {words}"


def _remote_word(path: str) -> str:
    if path == "~" or path.startswith("~/"):
        return '"$HOME"' + shlex.quote(path[1:]) if len(path) > 1 else '"$HOME"'
    return shlex.quote(path)


def parse_remote(paths: Sequence[str], output: str) -> dict[str, str | None]:
    """`remote_command`'s output, each path's fingerprint; LaunchError if one is missing."""
    found: dict[int, str | None] = {}
    for line in output.splitlines():
        index, _, value = line.strip().partition(" ")
        if index.isdigit() and value:
            found[int(index)] = None if value == "-" else _remote_value(value)
    states: dict[str, str | None] = {}
    for position, path in enumerate(paths):
        if position not in found:
            raise LaunchError(f"could not read input {path} on its host")
        states[path] = found[position]
    return states


def _remote_value(value: str) -> str:
    if value.startswith(DIGEST_PREFIX):
        return value[: len(DIGEST_PREFIX) + 32]
    size, _, mtime = value.removeprefix("stat ").partition(" ")
    # seconds there, nanoseconds here: either way one host's files compare to themselves
    return f"size {size} mtime {mtime}"


class HostFiles:
    """Fingerprints of files on any host: this machine directly, another one through
    `run_on` (its SSH connection)."""

    def __init__(self, run_on: RunOnHost | None = None) -> None:
        self._run_on = run_on

    async def __call__(
        self, host: str, paths: Sequence[str], content: bool
    ) -> dict[str, str | None]:
        if not paths:
            return {}
        if host == "localhost":
            return await asyncio.to_thread(local_states, list(paths), content)
        if self._run_on is None:
            raise LaunchError(f"cannot read files on host '{host}' here")
        status, out, err = await self._run_on(host, remote_command(paths, content))
        if status != 0 and not out:
            raise LaunchError(f"could not read the job's files on '{host}': {err.strip()}")
        return parse_remote(paths, out)
