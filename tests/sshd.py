"""Real OpenSSH servers for the SSH executor tests (see /work/shared/INFRA.md).

Every host is its own `/usr/sbin/sshd -D -e` on a loopback address (127.0.0.2, .3, …)
and a free port, or on port 22 inside a network namespace (`tests/netns.py`), so one host
can be taken down alone.  Logins are key-only as the plain user `ccdtest`; the client key
lives in a root-only session directory, because the code under test runs as root and
connects *as* `ccdtest`.

Fixtures (`pytest_plugins = ["tests.sshd"]` in a test module or tests/conftest.py):

* `ssh_user` (session): the `ccdtest` user and its client key pair (`SshUser`).
* `sshd_factory`: `make(max_sessions=100, max_startups="200", address=None) -> SshHost`,
  started; everything it started is stopped at teardown, and the `ccdtest` processes the
  hosts' sessions left behind are killed.
* `ssh_host`: one started host with MaxSessions 10, the default of real HPC login nodes.

Nothing here waits with a fixed sleep: waits poll for a state with a deadline.

PYTEST_DONT_REWRITE: this module is a pytest plugin (`pytest_plugins = [...]`) that test
modules also import directly; without this marker, registering it after such an import
warns (an error under `filterwarnings = error`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

SSHD = "/usr/sbin/sshd"  # sshd re-execs itself and refuses to start from a relative path
USER = "ccdtest"
#: how long to wait for something that normally takes well under a second
DEADLINE = 30.0
#: Runs sshd under a child subreaper (prctl PR_SET_CHILD_SUBREAPER): every process of the
#: host — the listener, the per-connection sshd processes (still there after the listener
#: is killed), and the jobs they start, even setsid/double-forked ones — stays below it
#: in the process tree instead of being reparented to PID 1.  That is how a host's
#: sessions and jobs are found: sshd rewrites its argv and environ (setproctitle), so
#: neither can mark them.  Prints the listener's pid, reaps, exits when no child is left.
SUPERVISOR = """
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
pid = os.fork()
if pid == 0:
    os.dup2(2, 1)  # stdout is the pipe the pid goes to; sshd logs to stderr (the log)
    os.execv(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
    except InterruptedError:
        pass
"""
#: the first loopback address handed out by `sshd_factory` (127.0.0.1 is left alone)
FIRST_ADDRESS = 2

_INSTALL_HINT = "run tests/run-all.sh as root (it installs openssh-server and iproute2)"


def require_tool(path: str, package: str) -> str:
    """The absolute path of a tool the tests need; fails (never skips) if it is missing."""
    found = path if os.path.isabs(path) and os.access(path, os.X_OK) else shutil.which(path)
    if not found:
        pytest.fail(f"{path} not found (Debian package {package}): {_INSTALL_HINT}")
    return found


# -- keys ------------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> None:
    """Write a private key file that is 0600 from its first byte on."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def new_ed25519_key(path: Path, comment: str) -> str:
    """Generate an ed25519 key pair at `path` / `path.pub`; returns the public key line."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    write_private(path, key.export_private_key())
    public = key.export_public_key().decode().strip()
    path.with_name(path.name + ".pub").write_text(public + "\n")
    return public


def known_hosts_name(address: str, port: int) -> str:
    """How OpenSSH (and asyncssh) name a host in known_hosts: bare for port 22."""
    return address if port == 22 else f"[{address}]:{port}"


# -- the test user ---------------------------------------------------------------------


@dataclass(frozen=True)
class SshUser:
    """The plain login user of the test hosts and the client key that logs in as it."""

    name: str
    uid: int
    gid: int
    home: Path
    key_path: Path  # private key, 0600, in a root-only directory
    public_key: str  # the OpenSSH public key line

    @property
    def public_key_path(self) -> Path:
        return self.key_path.with_name(self.key_path.name + ".pub")


def ensure_user(name: str = USER) -> pwd.struct_passwd:
    """Create the plain test user if missing, with a home and bash, and unlock it.

    `useradd` leaves the account locked (`!`), which sshd refuses even for key logins
    with `UsePAM no`; `usermod -p '*'` unlocks it without giving it a password.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = require_tool("/usr/sbin/useradd", "passwd")
        result = subprocess.run(
            [useradd, "-m", "-s", "/bin/bash", "-c", "ccd test user", name],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        # 9: created meanwhile by a parallel test run
        if result.returncode not in (0, 9):
            pytest.fail(f"useradd {name} failed ({result.returncode}): {result.stderr}")
        entry = pwd.getpwnam(name)
    usermod = require_tool("/usr/sbin/usermod", "passwd")
    subprocess.run([usermod, "-p", "*", name], check=True, capture_output=True, timeout=DEADLINE)
    # jobs write under ~/.ccd (the executor creates ~/.ccd/runs): the home must be there
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(mode=0o755, parents=True)
        for skel in Path("/etc/skel").glob(".*"):
            if skel.is_file():
                shutil.copy(skel, home / skel.name)
                os.chown(home / skel.name, entry.pw_uid, entry.pw_gid)
    if home.stat().st_uid != entry.pw_uid:
        os.chown(home, entry.pw_uid, entry.pw_gid)
    return entry


@pytest.fixture(scope="session")
def ssh_user(tmp_path_factory: pytest.TempPathFactory) -> SshUser:
    """The `ccdtest` user (created if missing) and a fresh ed25519 client key pair."""
    require_tool(SSHD, "openssh-server")
    entry = ensure_user(USER)
    key_dir = tmp_path_factory.mktemp("ssh-client")  # under pytest's 0700 root directory
    key_path = key_dir / "id_ed25519"
    public = new_ed25519_key(key_path, f"{USER}@ccd-tests")
    return SshUser(
        name=USER,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        home=Path(entry.pw_dir),
        key_path=key_path,
        public_key=public,
    )


# -- processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    uid: int
    state: str
    comm: str


def _read_proc(pid: int) -> ProcInfo | None:
    base = Path(f"/proc/{pid}")
    try:
        stat = (base / "stat").read_text()
        status = (base / "status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm is in parentheses and may itself contain spaces or parentheses
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    return ProcInfo(pid, int(fields[1]), uid, fields[0], comm)


def processes() -> list[ProcInfo]:
    """A snapshot of every process (processes that vanish meanwhile are left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _read_proc(int(entry))) is not None:
            found.append(info)
    return found


def descendants(procs: Iterable[ProcInfo], roots: Iterable[int]) -> set[int]:
    """The pids below `roots` in the process tree (not the roots themselves)."""
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def is_gone(pid: int) -> bool:
    """True once `pid` has exited: PID 1 reaps orphans slowly here, so a zombie counts."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def wait_gone(pids: Iterable[int], timeout: float = DEADLINE) -> None:
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending:
        pending = {pid for pid in pending if not is_gone(pid)}
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"processes still alive after SIGKILL: {sorted(pending)}")
        if pending:
            time.sleep(0.005)  # polling /proc for the kernel to finish the kill


def kill_pids(pids: Iterable[int]) -> set[int]:
    """SIGKILL each pid (by id); returns the ones that were signalled."""
    signalled = set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            signalled.add(pid)
    return signalled


def kill_until_none(select: Callable[[list[ProcInfo]], set[int]]) -> None:
    """Kill what `select` picks from a fresh snapshot until it picks nothing alive.

    Repeated because a process may fork between the snapshot and its kill.
    """
    deadline = time.monotonic() + DEADLINE
    while True:
        victims = {pid for pid in select(processes()) if not is_gone(pid)}
        victims.discard(os.getpid())
        if not victims:
            return
        wait_gone(kill_pids(victims))
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes keep coming back: {sorted(victims)}")


# -- one sshd --------------------------------------------------------------------------


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclass
class SshHost:
    """One sshd serving one "host", with everything a client needs to reach it.

    `address`/`port` is where sshd listens; inside a network namespace (`netns` set) the
    address is only reachable from namespaces linked to it (see tests/netns.py).
    """

    name: str  # the alias used in ssh config entries
    address: str
    port: int
    user: str
    identity_file: Path  # the client's private key
    known_hosts: Path  # this host's key as `[addr]:port ssh-ed25519 …` (bare addr on 22)
    host_key_path: Path
    dir: Path  # sshd_config, host key, authorized_keys/, sshd.log
    public_key: str  # authorized for `user`
    max_sessions: int = 10
    max_startups: str = "10:30:100"
    #: extra sshd_config lines, written *first*: for sshd the first value of an option wins
    extra_options: dict[str, str] = field(default_factory=dict)
    netns: str | None = None  # the real name of the network namespace, if any
    #: pick another free port if the chosen one turns out to be taken at the first start
    #: (never at a restart: clients keep the port they were given)
    port_is_free_choice: bool = False
    started_once: bool = False
    listener: int | None = None  # pid of the listening sshd
    #: one per start(); each lives on while sessions/jobs of that start are alive
    supervisors: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    # -- files ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "sshd.pid"

    @property
    def authorized_keys_dir(self) -> Path:
        return self.dir / "authorized_keys"

    @property
    def host_public_key(self) -> str:
        return self.host_key_path.with_name(self.host_key_path.name + ".pub").read_text().strip()

    @property
    def known_hosts_line(self) -> str:
        """The known_hosts line for the host key as it is *now*."""
        kind, blob = self.host_public_key.split()[:2]
        return f"{known_hosts_name(self.address, self.port)} {kind} {blob}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def write_known_hosts(self) -> None:
        self.known_hosts.write_text(self.known_hosts_line + "\n")

    def write_config(self) -> None:
        """sshd_config as verified in INFRA.md; `extra_options` go first so they win."""
        self.authorized_keys_dir.mkdir(mode=0o755, exist_ok=True)
        # sshd reads authorized_keys with the user's privileges: world-readable
        keys = self.authorized_keys_dir / self.user
        keys.write_text(self.public_key + "\n")
        keys.chmod(0o644)
        lines = [f"{key} {value}" for key, value in self.extra_options.items()]
        lines += [
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys_dir}/%u",
            "StrictModes no",  # keys under /tmp are refused otherwise
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "AllowTcpForwarding yes",  # ProxyJump through this host
            f"MaxSessions {self.max_sessions}",
            f"MaxStartups {self.max_startups}",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- life cycle ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the listening sshd is alive."""
        return self.listener is not None and not is_gone(self.listener)

    @property
    def pid(self) -> int | None:
        return self.listener if self.running else None

    def command(self) -> list[str]:
        sshd = [SSHD, "-D", "-e", "-f", str(self.config_path)]
        cmd = [sys.executable, "-I", "-c", SUPERVISOR, *sshd]
        if self.netns is not None:
            cmd = [require_tool("ip", "iproute2"), "netns", "exec", self.netns, *cmd]
        return cmd

    def start(self) -> None:
        """Start sshd and return once the port answers with an SSH banner."""
        if self.running:
            return
        require_tool(SSHD, "openssh-server")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        for _attempt in range(5):
            self.write_config()
            mark = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                supervisor = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                )
            self.supervisors.append(supervisor)
            assert supervisor.stdout is not None
            first = supervisor.stdout.readline()  # the supervisor forks at once
            supervisor.stdout.close()
            if not first.strip().isdigit():
                supervisor.wait(timeout=DEADLINE)
                raise RuntimeError(f"sshd {self.name}: supervisor failed:\n{self.log()[mark:]}")
            self.listener = int(first)
            if self._wait_banner():
                self.started_once = True
                return
            tail = self.log()[mark:]
            taken = "Address already in use" in tail or "Cannot bind any address" in tail
            if not (taken and self.port_is_free_choice and not self.started_once):
                raise RuntimeError(f"sshd {self.name} did not start:\n{tail}")
            # another test run took the port between our probe and sshd's bind
            self.port = _free_port(self.address)
            self.write_known_hosts()
        raise RuntimeError(f"sshd {self.name}: no free port found:\n{self.log()}")

    def open_socket(self) -> socket.socket:
        """A TCP socket in the host's network namespace (the root one if none)."""
        if self.netns is None:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        from tests.netns import netns_socket  # tests.netns imports this module

        return netns_socket(self.netns)

    def _wait_banner(self) -> bool:
        """Poll a connect every few ms (with a deadline) until sshd sends its banner.

        False if sshd exited meanwhile (its log tells why).
        """
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if not self.running:
                return False
            with contextlib.suppress(OSError), self.open_socket() as s:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                s.connect((self.address, self.port))
                if s.recv(256).startswith(b"SSH-"):
                    return True
            time.sleep(0.005)  # polling another process to bind its socket
        self.stop()
        raise TimeoutError(f"sshd {self.name} sent no banner:\n{self.log()}")

    def stop(self) -> None:
        """Kill the listening sshd.  Sessions already open survive (see kill_sessions)."""
        if self.listener is not None:
            wait_gone(kill_pids([self.listener]))
            self.listener = None
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _reap(self) -> None:
        """Forget supervisors that exited (all their processes are gone)."""
        for supervisor in list(self.supervisors):
            if supervisor.poll() is not None:
                self.supervisors.remove(supervisor)

    def tree(self, procs: list[ProcInfo] | None = None) -> list[ProcInfo]:
        """Every process of this host: sshd (listener, sessions) and what they started."""
        procs = processes() if procs is None else procs
        below = descendants(procs, [s.pid for s in self.supervisors if s.poll() is None])
        return [p for p in procs if p.pid in below]

    def session_pids(self) -> set[int]:
        """The sshd processes serving this host's connections (not the listener)."""
        return {p.pid for p in self.tree() if p.comm == "sshd" and p.pid != self.listener}

    def kill_sessions(self) -> None:
        """Kill every sshd process serving a connection of this host: the connections
        drop as if the server went away.  Commands started by those sessions are left
        running, as on a real host whose sshd dies; the fixture teardown kills them."""
        kill_until_none(lambda _procs: self.session_pids())

    def user_pids(self, uid: int) -> set[int]:
        """Processes of `uid` started through this host (jobs, shells), detached or not."""
        return {p.pid for p in self.tree() if p.uid == uid}

    def destroy(self, uid: int) -> None:
        """Stop sshd and kill everything it started: sshd processes and `uid`'s only."""
        self.stop()
        kill_until_none(
            lambda procs: {p.pid for p in self.tree(procs) if p.comm == "sshd" or p.uid == uid}
        )
        for supervisor in self.supervisors:
            supervisor.wait(timeout=DEADLINE)  # exits once it has no child left
        self._reap()

    def regenerate_host_key(self) -> None:
        """A new host key and a restart; `known_hosts` keeps the old key on purpose."""
        new_ed25519_key(self.host_key_path, f"{self.name}-host")
        if self.running:
            self.restart()

    # -- client side ---------------------------------------------------------------------
    def ssh_config_entry(self, alias: str | None = None, proxy_jump: str | None = None) -> str:
        """An OpenSSH client `Host` block for this host (asyncssh reads it too)."""
        lines = [
            f"Host {alias or self.name}",
            f"    HostName {self.address}",
            f"    Port {self.port}",
            f"    User {self.user}",
            f"    IdentityFile {self.identity_file}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {self.known_hosts}",
            "    StrictHostKeyChecking yes",
        ]
        if proxy_jump:
            lines.append(f"    ProxyJump {proxy_jump}")
        return "\n".join(lines) + "\n"

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `asyncssh.connect` (no config file involved)."""
        return {
            "host": self.address,
            "port": self.port,
            "username": self.user,
            "client_keys": [str(self.identity_file)],
            "known_hosts": str(self.known_hosts),
            "config": [],  # do not read root's ~/.ssh/config
        }


def make_host(
    base: Path,
    name: str,
    user: SshUser,
    address: str,
    port: int | None = None,
    *,
    max_sessions: int = 100,
    max_startups: str = "200",
    netns: str | None = None,
    extra_options: dict[str, str] | None = None,
) -> SshHost:
    """An `SshHost` with its own directory and host key (not started).

    Without `port`, a free one is picked (and re-picked if taken when sshd starts).
    """
    host_dir = base / name
    host_dir.mkdir(mode=0o755)
    host_dir.chmod(0o755)  # the login user must reach authorized_keys/
    host_key = host_dir / "host_ed25519"
    new_ed25519_key(host_key, f"{name}-host")
    host = SshHost(
        name=name,
        address=address,
        port=_free_port(address) if port is None else port,
        user=user.name,
        identity_file=user.key_path,
        known_hosts=host_dir / "known_hosts",
        host_key_path=host_key,
        dir=host_dir,
        public_key=user.public_key,
        max_sessions=max_sessions,
        max_startups=max_startups,
        extra_options=dict(extra_options or {}),
        netns=netns,
        port_is_free_choice=port is None,
    )
    host.write_known_hosts()
    return host


def host_base_dir(prefix: str) -> Path:
    """A fresh directory for host dirs that the login user can traverse (0755)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base


def teardown_hosts(hosts: list[SshHost], uid: int) -> None:
    """Stop every host and kill what it started (sshd processes, and `uid`'s processes)."""
    errors: list[BaseException] = []
    for host in hosts:
        try:
            host.destroy(uid)
        except Exception as exc:  # keep tearing down the others
            errors.append(exc)
    if errors:
        raise errors[0]


# -- fixtures --------------------------------------------------------------------------

SshdFactory = Callable[..., SshHost]


@pytest.fixture
def sshd_factory(ssh_user: SshUser) -> Iterator[SshdFactory]:
    """`make(max_sessions=100, max_startups="200", address=None) -> SshHost`, started.

    Hosts get 127.0.0.2, .3, … (or `address`) and a free port each, and are named
    host1, host2, … (the alias in `ssh_config_entry`).
    """
    base = host_base_dir("ccd-sshd-")
    hosts: list[SshHost] = []

    def make(
        max_sessions: int = 100,
        max_startups: str = "200",
        address: str | None = None,
        extra_options: dict[str, str] | None = None,
    ) -> SshHost:
        index = len(hosts) + 1
        addr = address or f"127.0.0.{FIRST_ADDRESS + len(hosts)}"
        host = make_host(
            base,
            f"host{index}",
            ssh_user,
            addr,
            max_sessions=max_sessions,
            max_startups=str(max_startups),
            extra_options=extra_options,
        )
        hosts.append(host)
        host.start()
        return host

    try:
        yield make
    finally:
        try:
            teardown_hosts(hosts, ssh_user.uid)
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ssh_host(sshd_factory: SshdFactory) -> SshHost:
    """One started host with MaxSessions 10, the default of real HPC login nodes."""
    return sshd_factory(max_sessions=10)
