"""ccd's follower on a remote host: the run directories of live attempts, streamed.

ccd uploads this file into the host's runs directory and runs it with the host's
``python3`` on one exec channel for as long as the connection lives.  It imports
nothing of ccd and runs on Python 3.6 and later (login nodes keep old system
Pythons): no ``from __future__ import annotations``, containers typed through
`typing` (pyproject.toml lets ruff allow that here), no syntax newer than 3.6.

On stdin ccd sends one command a line (see ccd/executors/ssh/frames.py):

    A <id> <offset> <mode> <pid> <dir>   follow <dir>'s log from <offset>
    D <id>                               stop following it
    F <token> <id>                       look at <id> now, then answer F <token>
    P                                    ping (any line re-arms the watchdog)

On stdout it answers with frames, each a header line, some with a payload:

    R python3 <pid> <version>            ready
    L <id> <offset> <n>  + n bytes       the log's bytes at <offset>
    X <id> <mtime> <n>   + n bytes       the exit file (its text), after the log's end
    G <id>                               the wrapper died without an exit file
    F <token>                            a flush is done
    H                                    heartbeat
    E <text>                             a notice for ccd's log

Mode ``l`` is a run directory written on this machine (an SSH job): inotify wakes
the follower, a slow sweep looks anyway and checks the wrapper's pid.  Mode ``s``
is written elsewhere (a Slurm job on a compute node, through a shared filesystem,
where inotify sees nothing): its log is looked at every poll interval, and its exit
file is left to ccd.  Nothing here writes to the run directories.
"""

import contextlib
import ctypes
import os
import select
import signal
import struct
import sys
import time
from typing import Dict, List, Optional, Set

VERSION = "1"
CHUNK = 256 * 1024
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
EVENT = struct.Struct("iIII")


class Watched:
    __slots__ = ("dir", "id", "offset", "pid", "shared", "wd")

    def __init__(self, ident: int, offset: int, shared: bool, pid: int, path: str) -> None:
        self.id = ident
        self.offset = offset
        self.shared = shared
        self.pid = pid
        self.dir = path
        self.wd = -1


class Inotify:
    """The kernel's inotify through ctypes; `fd` is -1 where there is none."""

    def __init__(self) -> None:
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._add = libc.inotify_add_watch
            self._rm = libc.inotify_rm_watch
            self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            self.fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
        except (AttributeError, OSError):
            self.fd = -1

    def add(self, path: str) -> int:
        if self.fd < 0:
            return -1
        return int(self._add(self.fd, os.fsencode(path), WATCH_MASK))

    def remove(self, wd: int) -> None:
        if self.fd >= 0 and wd >= 0:
            self._rm(self.fd, wd)

    def read(self) -> List[int]:
        """The watch descriptors with news (-1: the queue overflowed, look at all)."""
        try:
            buf = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        wds = []
        pos = 0
        while pos + EVENT.size <= len(buf):
            wd, mask, _cookie, length = EVENT.unpack_from(buf, pos)
            pos += EVENT.size + length
            wds.append(-1 if mask & IN_Q_OVERFLOW else wd)
        return wds


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_exit(path: str) -> Optional[bytes]:
    """The exit file's text, None while it is missing or empty (being written)."""
    try:
        with open(os.path.join(path, "exit"), "rb") as fh:
            text = fh.read(256)
    except OSError:
        return None
    return text or None


def exit_mtime(path: str) -> float:
    try:
        return os.stat(os.path.join(path, "exit")).st_mtime
    except OSError:
        return time.time()


class Follower:
    def __init__(self, poll: float, sweep: float, heartbeat: float, watchdog: int) -> None:
        self.poll = poll
        self.sweep = sweep
        self.heartbeat = heartbeat
        self.watchdog = watchdog
        self.watched: Dict[int, Watched] = {}
        self.by_wd: Dict[int, Set[int]] = {}
        self.out: List[bytes] = []
        self.out_size = 0
        self.inotify = Inotify()
        self.pending = b""
        now = time.monotonic()
        self.next_sweep = now + sweep
        self.next_poll = now + poll
        self.next_beat = now + heartbeat

    # -- output -------------------------------------------------------------------------
    def emit(self, header: str, payload: bytes = b"") -> None:
        self.out.append(header.encode() + b"\n" + payload)
        self.out_size += len(payload)
        if self.out_size >= 4 * CHUNK:  # a log that grew by gigabytes meanwhile
            self.flush_out()

    def flush_out(self) -> None:
        if not self.out:
            return
        data = b"".join(self.out)
        self.out = []
        self.out_size = 0
        view = memoryview(data)
        while view:
            written = os.write(1, view)
            view = view[written:]
        self.next_beat = time.monotonic() + self.heartbeat

    # -- commands -----------------------------------------------------------------------
    def command(self, line: str) -> None:
        signal.alarm(self.watchdog)  # ccd is there: the watchdog waits again
        if line.startswith("A "):
            _, ident, offset, mode, pid, path = line.split(" ", 5)
            self.add(Watched(int(ident), int(offset), mode == "s", int(pid), path))
        elif line.startswith("D "):
            self.forget(int(line.split(" ")[1]))
        elif line.startswith("F "):
            _, token, ident = line.split(" ")
            w = self.watched.get(int(ident))
            if w is not None:
                self.check(w, liveness=False)
            self.emit(f"F {token}")

    def add(self, w: Watched) -> None:
        self.forget(w.id)
        self.watched[w.id] = w
        if not w.shared:
            # the watch first: a change between the look below and the watch is not lost
            w.wd = self.inotify.add(w.dir)
            if w.wd >= 0:
                self.by_wd.setdefault(w.wd, set()).add(w.id)
        self.check(w, liveness=False)

    def forget(self, ident: int) -> None:
        w = self.watched.pop(ident, None)
        if w is None or w.wd < 0:
            return
        ids = self.by_wd.get(w.wd, set())
        ids.discard(ident)
        if not ids:
            self.by_wd.pop(w.wd, None)
            self.inotify.remove(w.wd)

    # -- looking at a run directory -----------------------------------------------------
    def drain(self, w: Watched) -> None:
        try:
            fd = os.open(os.path.join(w.dir, "log"), os.O_RDONLY)
        except OSError:
            return  # not created yet
        try:
            size = os.fstat(fd).st_size
            while w.offset < size:
                data = os.pread(fd, min(CHUNK, size - w.offset), w.offset)
                if not data:
                    break
                self.emit(f"L {w.id} {w.offset} {len(data)}", data)
                w.offset += len(data)
        finally:
            os.close(fd)

    def check(self, w: Watched, liveness: bool) -> None:
        if w.shared:
            self.drain(w)
            return
        # the exit file before the log: what the job wrote before it is all there
        text = read_exit(w.dir)
        if text is None and liveness and w.pid > 0 and not alive(w.pid):
            text = read_exit(w.dir)  # it may have written it just before exiting
            if text is None:
                self.drain(w)
                self.emit(f"G {w.id}")
                self.forget(w.id)
                return
        self.drain(w)
        if text is not None:
            self.emit(f"X {w.id} {exit_mtime(w.dir):.3f} {len(text)}", text)
            self.forget(w.id)

    def look(self, polled_only: bool, liveness: bool) -> None:
        for w in list(self.watched.values()):
            if w.shared or w.wd < 0:
                self.check(w, liveness)
            elif not polled_only and (not liveness or w.pid <= 0 or not alive(w.pid)):
                # inotify tells of this one's writes: the sweep only asks whether its
                # wrapper still lives (one system call), and looks if it does not
                self.check(w, liveness)

    # -- the loop -----------------------------------------------------------------------
    def read_commands(self) -> bool:
        """Run the complete lines on stdin; False once ccd closed it."""
        data = os.read(0, 65536)
        if not data:
            return False
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            self.command(line.decode("utf-8", "surrogateescape"))
        return True

    def inotify_news(self) -> None:
        wds = self.inotify.read()
        if -1 in wds:
            self.look(polled_only=False, liveness=False)
            return
        for wd in set(wds):
            for ident in list(self.by_wd.get(wd, ())):
                w = self.watched.get(ident)
                if w is not None:
                    self.check(w, liveness=False)

    def timers(self) -> None:
        now = time.monotonic()
        if now >= self.next_sweep:
            self.look(polled_only=False, liveness=True)
            self.next_sweep = now + self.sweep
        elif now >= self.next_poll:
            self.look(polled_only=True, liveness=False)
        if now >= self.next_poll:
            self.next_poll = now + self.poll
        if now >= self.next_beat and not self.out:
            self.emit("H")

    def wait_for(self) -> float:
        due = [self.next_sweep, self.next_beat]
        if any(w.shared or w.wd < 0 for w in self.watched.values()):
            due.append(self.next_poll)
        return max(0.0, min(due) - time.monotonic())

    def run(self) -> None:
        signal.alarm(self.watchdog)
        kind = "inotify" if self.inotify.fd >= 0 else f"polling every {self.poll:g}s"
        self.emit(f"R python3 {os.getpid()} {VERSION}")
        self.emit(f"E follower {os.getpid()}: {kind}")
        self.flush_out()
        fds = [0] + ([self.inotify.fd] if self.inotify.fd >= 0 else [])
        while True:
            readable, _, _ = select.select(fds, [], [], self.wait_for())
            if 0 in readable and not self.read_commands():
                return
            if self.inotify.fd in readable:
                self.inotify_news()
            self.timers()
            self.flush_out()


def main() -> None:
    poll, sweep, heartbeat = (float(arg) for arg in sys.argv[1:4])
    watchdog = int(sys.argv[4])
    with contextlib.suppress(BrokenPipeError):  # ccd went away
        Follower(poll, sweep, heartbeat, watchdog).run()


if __name__ == "__main__":
    main()
