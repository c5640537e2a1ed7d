"""A single-node Slurm with real accounting: MariaDB + slurmdbd + the cluster of tests/slurm.py.

For the executor's `sacct` path (see /work/shared/INFRA.md, "Slurm, single node").  All
of it runs as root without systemd, in directories and on ports of its own, so nothing
in /etc/mysql, /etc/slurm or /run/mysqld is used or touched:

* MariaDB: a fresh datadir (`mariadb-install-db`) in `/run/ccd-slurmdbd/slotN/db`, its
  socket next to it, TCP on 127.0.0.1 only (slurmdbd connects over TCP: its client
  library would otherwise look for the system's socket); user `slurm` with a random
  password, allowed on `slurm_acct_db` only.
* slurmdbd: `slurmdbd.conf` (0600, owned by SlurmUser=root, as slurmdbd insists) in
  the same directory, found through SLURM_CONF pointing there; `DbdPort` of its own;
  it authenticates with the cluster's munged (the cluster's socket and key).
* The cluster: `open_cluster(fresh=True)` in a Slurm slot of its own, with
  `AccountingStorageType=accounting_storage/slurmdbd` on our DbdPort and
  `MinJobAge=2`: finished jobs leave `squeue` within seconds, and only `sacct` knows
  them after that; `jobacct_gather/linux` sampling every second gives sacct a job's CPU
  time and MaxRSS.  slurmctld registers the cluster (ClusterName=ccdN) in the database
  itself when it first reaches slurmdbd; no association is needed because
  AccountingStorageEnforce is not set.

A dbd slot is locked (flock) by the session using it, like a Slurm slot.  Everything is
started fresh for each session (a reused cluster's saved jobs would not match a new
database) and stopped at its end; what a killed session left behind in a slot is
killed by the next session that takes the slot.

Fixture: `accounted_cluster` (session), an `AccountedCluster`.  Nothing here waits with
a fixed sleep: waits poll for a state with a deadline.

PYTEST_DONT_REWRITE: this module is a pytest plugin that test modules also import.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.slurm import (
    DEADLINE,
    FINAL_STATES,
    SlurmCluster,
    _argv,
    _port_free,
    _terminate,
    _wait_for,
    open_cluster,
    require_slurm_tool,
)
from tests.sshd import ProcInfo, kill_until_none

BASE = Path("/run/ccd-slurmdbd")
SLOTS = 8
#: dbd slot N: slurmdbd listens on FIRST_PORT + 2N, MariaDB (127.0.0.1) on the port after
#: (the Slurm slots of tests/slurm.py use 16817-16832)
FIRST_PORT = 16901
#: seconds a finished job stays in squeue; slurmctld purges old jobs at most this often
MIN_JOB_AGE = 2
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB = "/usr/bin/mariadb"
SLURMDBD = "/usr/sbin/slurmdbd"
DATABASE = "slurm_acct_db"
DB_USER = "slurm"


def _connects(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    pairs = (item.partition("=") for item in raw.decode(errors="replace").split("\0") if item)
    return {key: value for key, _, value in pairs}


def _lock(path: Path) -> int | None:
    """An exclusive flock on `path` (held until closed or this process ends); None if taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@dataclass
class AccountingStore:
    """MariaDB and slurmdbd of one dbd slot."""

    slot: int
    dir: Path
    dbd_port: int
    db_port: int
    password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    pids: dict[str, int] = field(default_factory=dict)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _lock_fd: int | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.dir / "db"

    @property
    def db_socket(self) -> Path:
        return self.dir / "mysql.sock"

    @property
    def munge_link(self) -> Path:
        """A link to the cluster's munge socket: slurm.conf names it before the cluster's
        slot (and so its socket's path) is known."""
        return self.dir / "munge.sock"

    @property
    def dbd_conf(self) -> Path:
        return self.dir / "slurmdbd.conf"

    @property
    def dbd_env(self) -> dict[str, str]:
        """slurmdbd reads slurmdbd.conf from SLURM_CONF's directory (no slurm.conf there)."""
        return {"SLURM_CONF": str(self.dir / "slurm.conf")}

    def output(self, name: str) -> str:
        """The end of a daemon's log: mariadbd, slurmdbd (log), or NAME.out (stderr)."""
        path = self.dir / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def slurm_conf_lines(self) -> list[str]:
        """What the cluster's slurm.conf needs to send its jobs here."""
        return [
            "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStorageHost=localhost",
            f"AccountingStoragePort={self.dbd_port}",
            # for slurmdbd, "Pass" is the munge socket (AuthInfo does not apply to it)
            f"AccountingStoragePass={self.munge_link}",
            f"MinJobAge={MIN_JOB_AGE}",
            # what a job cost (sacct's MaxRSS, CPU), sampled each second, as the run
            # report's test of a short job needs (the default gathers nothing)
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherFrequency=1",
        ]

    # -- processes -------------------------------------------------------------------
    def role_of(self, pid: int) -> str | None:
        """mariadbd or slurmdbd of this slot (from argv / SLURM_CONF), else None."""
        argv = _argv(pid)
        if not argv:
            return None
        if argv[0] == MARIADBD and f"--datadir={self.datadir}" in argv:
            return "mariadbd"
        if argv[0] == SLURMDBD and _environ(pid).get("SLURM_CONF") == self.dbd_env["SLURM_CONF"]:
            return "slurmdbd"
        return None

    def kill_leftovers(self) -> None:
        """Kill this slot's daemons left by a session that ended without its teardown."""

        def select(procs: list[ProcInfo]) -> set[int]:
            return {p.pid for p in procs if p.uid == 0 and self.role_of(p.pid) is not None}

        kill_until_none(select)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.dir / f"{name}.out").open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # Ctrl-C of pytest must not reach the daemons
            )
        self._children.append(proc)
        self.pids[name] = proc.pid
        return proc

    def sql(self, statement: str) -> subprocess.CompletedProcess[str]:
        """Run SQL as MariaDB's root (socket authentication: we are root)."""
        argv = [MARIADB, "--no-defaults", f"--socket={self.db_socket}", "-u", "root"]
        return subprocess.run(
            [*argv, "-N", "-B", "-e", statement],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )

    def start_database(self) -> None:
        """A fresh datadir, mariadbd on it, and the `slurm` user slurmdbd logs in as."""
        install = [require_slurm_tool(INSTALL_DB, "mariadb-server"), "--no-defaults"]
        install += [f"--datadir={self.datadir}", "--user=root", "--skip-test-db"]
        install += ["--auth-root-authentication-method=socket"]
        result = subprocess.run(install, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")
        argv = [require_slurm_tool(MARIADBD, "mariadb-server"), "--no-defaults", "--user=root"]
        argv += [f"--datadir={self.datadir}", f"--socket={self.db_socket}"]
        argv += [f"--port={self.db_port}", "--bind-address=127.0.0.1", "--skip-name-resolve"]
        argv += [f"--pid-file={self.dir}/mariadbd.pid", f"--log-error={self.dir}/mariadbd.log"]
        argv += ["--innodb-lock-wait-timeout=900"]
        proc = self._spawn("mariadbd", argv, {})

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited:\n{self.output('mariadbd.log')}")
            return self.sql("SELECT 1").returncode == 0

        # polling with a trivial query until mariadbd accepts connections, with a deadline
        _wait_for("mariadbd answering", answers, details=lambda: self.output("mariadbd.log"))
        grants = "".join(
            f"CREATE USER '{DB_USER}'@'{host}' IDENTIFIED BY '{self.password}'; "
            f"GRANT ALL ON {DATABASE}.* TO '{DB_USER}'@'{host}'; "
            for host in ("127.0.0.1", "localhost")
        )
        result = self.sql(grants)
        if result.returncode != 0:
            raise RuntimeError(f"creating the slurm database user failed: {result.stderr}")

    def start_slurmdbd(self, munge_socket: Path) -> None:
        """slurmdbd on our DbdPort, storing into our MariaDB; waits until it listens."""
        with contextlib.suppress(FileNotFoundError):
            self.munge_link.unlink()
        self.munge_link.symlink_to(munge_socket)
        self.dbd_conf.write_text(
            "# written by tests/slurmdbd.py\n"
            "AuthType=auth/munge\n"
            f"AuthInfo=socket={self.munge_link}\n"
            "DbdHost=localhost\n"
            f"DbdPort={self.dbd_port}\n"
            "SlurmUser=root\n"
            "DebugLevel=info\n"
            f"LogFile={self.dir}/slurmdbd.log\n"
            f"PidFile={self.dir}/slurmdbd.pid\n"
            "StorageType=accounting_storage/mysql\n"
            "StorageHost=127.0.0.1\n"
            f"StoragePort={self.db_port}\n"
            f"StorageUser={DB_USER}\n"
            f"StoragePass={self.password}\n"
            f"StorageLoc={DATABASE}\n"
        )
        self.dbd_conf.chmod(0o600)  # slurmdbd refuses a conf others can read (the password)
        os.chown(self.dbd_conf, 0, 0)
        proc = self._spawn(
            "slurmdbd", [require_slurm_tool(SLURMDBD, "slurmdbd"), "-D"], self.dbd_env
        )

        def listens() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"slurmdbd exited ({proc.returncode}):\n{self.output('slurmdbd.out')}"
                    f"{self.output('slurmdbd.log')}"
                )
            return _connects(self.dbd_port)

        # polling its port until slurmdbd (tables created) accepts connections, with a deadline
        _wait_for("slurmdbd listening", listens, details=lambda: self.output("slurmdbd.log"))

    def stop(self) -> None:
        """Stop slurmdbd, then MariaDB (SIGTERM: a clean shutdown), and release the slot."""
        try:
            for role in ("slurmdbd", "mariadbd"):
                pid = self.pids.pop(role, None)
                if pid is not None and self.role_of(pid) == role:
                    _terminate(pid)
            for child in self._children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=DEADLINE)
            self._children.clear()
            self.kill_leftovers()
            shutil.rmtree(self.datadir, ignore_errors=True)
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def open_store(slot: int | None = None) -> AccountingStore:
    """A fresh, running MariaDB in the first free dbd slot (slurmdbd comes later: it
    needs the cluster's munged)."""
    require_slurm_tool(SLURMDBD, "slurmdbd")
    require_slurm_tool(MARIADBD, "mariadb-server")
    BASE.mkdir(mode=0o755, exist_ok=True)
    busy: list[str] = []
    for n in range(SLOTS) if slot is None else [slot]:
        fd = _lock(BASE / f"slot{n}.lock")
        if fd is None:
            busy.append(f"slot{n}: locked by another session")
            continue
        directory = BASE / f"slot{n}"
        store = AccountingStore(
            slot=n,
            dir=directory,
            dbd_port=FIRST_PORT + 2 * n,
            db_port=FIRST_PORT + 2 * n + 1,
            _lock_fd=fd,
        )
        try:
            if directory.exists():
                store.kill_leftovers()
            taken = [p for p in (store.dbd_port, store.db_port) if not _port_free(p)]
            if taken:  # by something that is not ours: try the next slot
                busy.append(f"slot{n}: ports {taken} in use")
                store.stop()
                continue
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(mode=0o755)  # sacct of a plain user reaches munge.sock here
            store.start_database()
        except BaseException:
            with contextlib.suppress(Exception):  # the error that got us here matters more
                store.stop()
            raise
        return store
    raise RuntimeError(f"no free slurmdbd test slot in {BASE}: {'; '.join(busy)}")


def wait_left_queue(cluster: SlurmCluster, job_ids: Sequence[str], timeout: float = 60) -> None:
    """Poll squeue until none of the jobs is listed any more: with MinJobAge=2 that takes
    2-10 s after they end (slurmctld purges old jobs periodically)."""
    wanted = set(job_ids)

    def gone() -> bool:
        return not wanted & {job["id"] for job in cluster.squeue_all()}

    # polling squeue until slurmctld has purged the finished jobs, with a deadline
    _wait_for(f"jobs {sorted(wanted)} out of squeue", gone, timeout)


@dataclass
class AccountedCluster:
    """The cluster (`cluster`: a `SlurmCluster` of tests/slurm.py) and its accounting."""

    cluster: SlurmCluster
    store: AccountingStore

    @property
    def env(self) -> dict[str, str]:
        return self.cluster.env

    @property
    def name(self) -> str:
        return f"ccd{self.cluster.slot}"

    def sacct(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Job id -> State as sacct prints it ("COMPLETED", "CANCELLED by 0", …)."""
        result = self.cluster.run(
            "sacct", "-P", "-n", "-X", "-a", "-o", "JobID,State", "-j", ",".join(job_ids)
        )
        if result.returncode != 0:
            raise RuntimeError(f"sacct failed ({result.returncode}): {result.stderr}")
        pairs = (line.split("|", 1) for line in result.stdout.splitlines() if "|" in line)
        return {job_id: state for job_id, state in pairs}

    def registered(self) -> bool:
        """True once slurmctld has registered the cluster with slurmdbd (it has a port)."""
        result = self.cluster.run(
            "sacctmgr", "-n", "-P", "list", "cluster", "format=Cluster,ControlPort"
        )
        rows = [line.split("|") for line in result.stdout.splitlines()]
        return result.returncode == 0 and [self.name, str(self.cluster.ctld_port)] in rows

    def wait_accounted(self, job_ids: Sequence[str], timeout: float = DEADLINE) -> dict[str, str]:
        """Poll sacct until every job has a final state there (sacct lags squeue by 1-2 s)."""
        seen: dict[str, str] = {}

        def done() -> bool:
            nonlocal seen
            seen = self.sacct(job_ids)
            return all(seen.get(i, "").split(" ")[0] in FINAL_STATES for i in job_ids)

        # polling sacct until slurmdbd has every job's end, with a deadline
        _wait_for(f"jobs {list(job_ids)} final in sacct", done, timeout, details=lambda: f"{seen}")
        return seen

    def shutdown(self) -> None:
        """Cancel every job, stop the cluster (never kept: its state goes with the
        database), slurmdbd and MariaDB."""
        try:
            self.cluster.shutdown(keep=False)
        finally:
            self.store.stop()


def open_accounted_cluster() -> AccountedCluster:
    """MariaDB, a fresh cluster whose accounting goes to our slurmdbd, then slurmdbd;
    returns once the cluster is registered and sacct answers."""
    store = open_store()

    def start_slurmdbd(cluster: SlurmCluster) -> None:
        # once the cluster's munged answers, before slurmctld: a fresh slurmctld with
        # accounting exits ("we have no TRES from it") if slurmdbd does not answer
        store.start_slurmdbd(cluster.munge_socket)

    try:
        cluster = open_cluster(
            extra_conf=store.slurm_conf_lines(), fresh=True, before_controller=start_slurmdbd
        )
    except BaseException:
        store.stop()
        raise
    accounted = AccountedCluster(cluster, store)
    try:
        # slurmctld registers the cluster with slurmdbd as it starts (no `sacctmgr add
        # cluster` needed); polling sacctmgr until it shows, with a deadline
        _wait_for(
            f"cluster {accounted.name} registered with slurmdbd",
            accounted.registered,
            details=lambda: store.output("slurmdbd.log") + cluster.log("slurmctld")[-2000:],
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the error that got us here matters more
            accounted.shutdown()
        raise
    return accounted


@pytest.fixture(scope="session")
def accounted_cluster() -> Iterator[AccountedCluster]:
    """MariaDB + slurmdbd + a cluster with accounting and MinJobAge=2, once per session."""
    accounted = open_accounted_cluster()
    yield accounted
    accounted.shutdown()
