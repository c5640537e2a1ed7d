"""Network namespaces for fault tests: cut a host off the network mid-job.

Layout (INFRA.md "Network namespaces"): a client namespace `ctl` and host namespaces
`h1..hN`, each host linked to `ctl` by a veth pair, `cN` (10.200.N.1, in ctl) ↔ `eth0`
(10.200.N.2, in hN).  The code under test runs inside `ctl` (`run_in("ctl", argv)`);
sshd runs inside `hN` (`start_sshd(N, user)`).  Hosts cannot reach each other.

Safety: only 10.200.0.0/16 is used, and before any namespace exists the root namespace
gets `unreachable 10.200.0.0/16`, so nothing meant for the lab can leave the machine
when run in the wrong namespace.  Real namespace names carry the pid, so parallel test
runs never collide; `ctl`/`h1`… are the logical names the helpers accept.

    with netns_lab(2, user) as lab:          # or the `netns_lab_factory` fixture
        host = lab.start_sshd(1)
        proc = lab.run_in("ctl", [sys.executable, "-c", script])
        lab.cut(1)  # silent partition: packets vanish, connects time out
        lab.restore(1)

PYTEST_DONT_REWRITE: this module is a pytest plugin (`pytest_plugins = [...]`) that test
modules also import directly; without this marker, registering it after such an import
warns (an error under `filterwarnings = error`).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.sshd import (
    DEADLINE,
    SshHost,
    SshUser,
    host_base_dir,
    kill_pids,
    make_host,
    require_tool,
    teardown_hosts,
    wait_gone,
)

LAB_NET = "10.200.0.0/16"
GUARD_LOCK = "/run/ccd-tests-netns.lock"
#: exists while the guard route is one that a lab added (so a lab may remove it)
GUARD_MARK = "/run/ccd-tests-netns.guard"
_CLONE_NEWNET = 0x40000000
_labs = itertools.count(1)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_tool("ip", "iproute2"), *args], capture_output=True, text=True, timeout=DEADLINE
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def netns_socket(netns: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket that lives in network namespace `netns` (a real name).

    setns(2) switches only the calling thread, so a short-lived thread enters the
    namespace and creates the socket; a socket stays in the namespace it was made in.
    Pass it to `asyncssh.connect(..., sock=s)` after connecting it, or connect it directly.
    """
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_create() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            made.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=enter_and_create, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def _guard_state() -> str:
    """'absent', 'present' (our unreachable guard) or a description of foreign routes."""
    routes: list[dict[str, Any]] = json.loads(_ip("-j", "route", "show", "root", LAB_NET).stdout)
    if not routes:
        return "absent"
    if len(routes) == 1 and routes[0].get("type") == "unreachable" and routes[0]["dst"] == LAB_NET:
        return "present"
    return json.dumps(routes)


@contextlib.contextmanager
def _guard_lock() -> Iterator[None]:
    """Serialises guard route changes with lab creation/removal across test runs."""
    with open(GUARD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _other_live_labs() -> list[str]:
    """ctl namespaces of labs of other, still running processes."""
    live = []
    for line in _ip("netns", "list").stdout.splitlines():
        match = re.fullmatch(r"ccd(\d+)n\d+-ctl", line.split()[0] if line.split() else "")
        if match and int(match[1]) != os.getpid() and Path(f"/proc/{match[1]}").exists():
            live.append(match[0])
    return live


@dataclass
class NetnsLab:
    """A running lab; see the module docstring.  Hosts are numbered 1..n_hosts."""

    n_hosts: int
    user: SshUser | None = None
    prefix: str = field(default_factory=lambda: f"ccd{os.getpid()}n{next(_labs)}")
    guard_added: bool = False  # the guard route was added by a lab (this or a parallel one)
    created: list[str] = field(default_factory=list)  # real namespace names
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    hosts: dict[int, SshHost] = field(default_factory=dict)
    base: Path | None = None

    # -- names and addresses -------------------------------------------------------------
    @property
    def ctl(self) -> str:
        return f"{self.prefix}-ctl"

    def host_ns(self, i: int) -> str:
        self._check(i)
        return f"{self.prefix}-h{i}"

    def ns(self, name: str) -> str:
        """The real namespace name for 'ctl' / 'h1'… (real names pass through)."""
        if name == "ctl":
            return self.ctl
        if name.startswith("h") and name[1:].isdigit():
            return self.host_ns(int(name[1:]))
        if name in self.created:
            return name
        raise ValueError(f"no namespace {name!r} in this lab ({self.prefix})")

    @staticmethod
    def host_address(i: int) -> str:
        return f"10.200.{i}.2"

    @staticmethod
    def ctl_address(i: int) -> str:
        return f"10.200.{i}.1"

    def _check(self, i: int) -> None:
        if not 1 <= i <= self.n_hosts:
            raise ValueError(f"host {i} is not in 1..{self.n_hosts}")

    # -- set up and tear down ------------------------------------------------------------
    def setup(self) -> None:
        if not 1 <= self.n_hosts <= 254:
            raise ValueError("a lab has 1..254 hosts")
        with _guard_lock():
            # the guard comes first: nothing for 10.200/16 may leave this machine
            state = _guard_state()
            if state not in ("absent", "present"):
                raise RuntimeError(f"the root namespace already routes {LAB_NET}: {state}")
            if state == "absent":
                _ip("route", "replace", "unreachable", LAB_NET)
                Path(GUARD_MARK).touch()
            # added by this lab, or by a parallel run's lab that left it to the last one out
            self.guard_added = Path(GUARD_MARK).exists()
            # the ctl namespace exists before the lock is released: it tells a parallel
            # run's close() that this lab still relies on the guard
            _ip("netns", "add", self.ctl)
            self.created.append(self.ctl)
        for name in [self.host_ns(i) for i in range(1, self.n_hosts + 1)]:
            _ip("netns", "add", name)
            self.created.append(name)
        for name in self.created:
            _ip("-n", name, "link", "set", "lo", "up")
        for i in range(1, self.n_hosts + 1):
            h = self.host_ns(i)
            veth = ["type", "veth", "peer", "name", "eth0", "netns", h]
            _ip("-n", self.ctl, "link", "add", f"c{i}", *veth)
            _ip("-n", self.ctl, "addr", "add", f"{self.ctl_address(i)}/24", "dev", f"c{i}")
            _ip("-n", h, "addr", "add", f"{self.host_address(i)}/24", "dev", "eth0")
            _ip("-n", self.ctl, "link", "set", f"c{i}", "up")
            _ip("-n", h, "link", "set", "eth0", "up")

    def close(self) -> None:
        """Kill every process in the lab's namespaces, delete them, drop our guard."""
        errors: list[BaseException] = []
        if self.user is not None:
            # sshd sessions, and the login user's jobs they started (also outside the lab)
            try:
                teardown_hosts(list(self.hosts.values()), self.user.uid)
            except Exception as exc:
                errors.append(exc)
        for name in self.created:
            try:
                self._empty(name)
            except Exception as exc:
                errors.append(exc)
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait(timeout=DEADLINE)
        errors += self._delete_namespaces()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
        if errors:
            raise errors[0]

    @staticmethod
    def _empty(name: str) -> None:
        """Kill every process in namespace `name`, again until it is empty (a process
        may fork between the listing and its kill)."""
        deadline = time.monotonic() + DEADLINE
        while pids := _ip("netns", "pids", name, check=False).stdout.split():
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes stay in {name}: {pids}")
            wait_gone(kill_pids(int(pid) for pid in pids))

    def _delete_namespaces(self) -> list[BaseException]:
        errors: list[BaseException] = []
        with _guard_lock():
            for name in reversed(self.created):
                result = _ip("netns", "del", name, check=False)
                if result.returncode != 0:
                    errors.append(RuntimeError(f"ip netns del {name}: {result.stderr}"))
            self.created.clear()
            # the last lab out removes the guard the labs added; one that was there
            # before any lab (no mark) stays
            if self.guard_added and not _other_live_labs():
                _ip("route", "del", "unreachable", LAB_NET, check=False)
                Path(GUARD_MARK).unlink(missing_ok=True)
            self.guard_added = False
        return errors

    # -- use -----------------------------------------------------------------------------
    def run_in(self, ns: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside namespace `ns` ('ctl', 'h1'…); killed at teardown."""
        cmd = [require_tool("ip", "iproute2"), "netns", "exec", self.ns(ns), *argv]
        popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[Any] = subprocess.Popen(cmd, **popen_kwargs)
        self.procs.append(proc)
        return proc

    def run(self, ns: str, argv: Sequence[str], timeout: float = DEADLINE) -> tuple[int, str, str]:
        """Run `argv` inside `ns` to the end: (exit code, stdout, stderr)."""
        proc = self.run_in(ns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{argv} ran over {timeout}s:\n{out}\n{err}") from None
        return proc.returncode, out, err

    def cut(self, i: int, unreachable: bool = False) -> None:
        """Partition host i from ctl.

        Default: a silent partition, as when a host or its network dies — the host's end
        of the link goes down, ctl keeps its route, packets vanish, new connects time out
        and open connections hang (only keepalives notice).  `unreachable=True` instead
        takes ctl's end down (`ip -n ctl link set cN down`): ctl loses its route and new
        connects fail at once with ENETUNREACH; open connections still just hang.
        """
        if unreachable:
            _ip("-n", self.ctl, "link", "set", f"c{i}", "down")
        else:
            _ip("-n", self.host_ns(i), "link", "set", "eth0", "down")

    def restore(self, i: int) -> None:
        """Undo `cut(i)` (either kind); buffered traffic flows again."""
        _ip("-n", self.host_ns(i), "link", "set", "eth0", "up")
        _ip("-n", self.ctl, "link", "set", f"c{i}", "up")

    def start_sshd(
        self,
        i: int,
        user: SshUser | None = None,
        *,
        port: int = 22,
        max_sessions: int = 10,
        max_startups: str = "200",
        extra_options: dict[str, str] | None = None,
    ) -> SshHost:
        """Start sshd inside host namespace i on 10.200.i.2 (port 22: known_hosts names
        it by bare address).  Its alias is `h{i}`."""
        user = user or self.user
        if user is None:
            raise ValueError("start_sshd needs the ssh_user (pass user=, or to the lab)")
        self.user = user
        if i in self.hosts:
            raise ValueError(f"host {i} already has an sshd")
        if self.base is None:
            self.base = host_base_dir(f"{self.prefix}-")
        host = make_host(
            self.base,
            f"h{i}",
            user,
            self.host_address(i),
            port,
            max_sessions=max_sessions,
            max_startups=max_startups,
            netns=self.host_ns(i),
            extra_options=extra_options,
        )
        self.hosts[i] = host
        host.start()
        return host


@contextlib.contextmanager
def netns_lab(n_hosts: int, user: SshUser | None = None) -> Iterator[NetnsLab]:
    """A lab with `ctl` and `h1..h{n_hosts}`, torn down on exit (see module docstring)."""
    require_tool("ip", "iproute2")
    lab = NetnsLab(n_hosts, user)
    try:
        lab.setup()
        yield lab
    finally:
        lab.close()


NetnsLabFactory = Callable[[int], NetnsLab]


@pytest.fixture
def netns_lab_factory(ssh_user: SshUser) -> Iterator[NetnsLabFactory]:
    """`make(n_hosts) -> NetnsLab` (set up, with ssh_user for start_sshd)."""
    with contextlib.ExitStack() as stack:

        def make(n_hosts: int) -> NetnsLab:
            return stack.enter_context(netns_lab(n_hosts, ssh_user))

        yield make
