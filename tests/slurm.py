"""A real single-node Slurm for the Slurm executor tests (see /work/shared/INFRA.md).

munged + slurmctld + slurmd run on this machine as root: one node `localhost` with
CPUs=8 whatever the real count (`SlurmdParameters=config_overrides`), partitions `debug`
(the default) and `short` (MaxTime 5 min, for limit tests).  A cluster lives in a slot
of its own, `/run/ccd-slurm/slotN/` (slurm.conf, state, spool, logs, a munge key and
socket), on ports of its own, so /etc/slurm, /etc/munge and /run/munge are never
touched and parallel test sessions never meet: a session holds its slot's lock while it
runs.  Every Slurm command finds the cluster through SLURM_CONF (`SlurmCluster.env`);
jobs inherit it from sbatch.  A job over SSH needs it too, e.g. through the host's
sshd_config: `sshd_factory(extra_options={"SetEnv": f"SLURM_CONF={cluster.conf}"})`.

Fixtures (`pytest_plugins = ["tests.slurm"]` in a test module or tests/conftest.py):

* `slurm_cluster` (session): the started cluster (`SlurmCluster`), brought up once.  A
  cluster left running in the slot (a session killed before its teardown, or one run
  with CCD_SLURM_KEEP=1) is reused if it is healthy and its slurm.conf is what this
  module writes now; otherwise its daemons are stopped and a fresh one is started.  At
  the end of the session every job is cancelled and the daemons we run are stopped.
* `counting_squeue`: wrapper scripts `squeue sacct scontrol sbatch scancel` that log
  each call and exec the real binary: `(bin_dir, log_path)` (a `CountingBin`).

Nothing here waits with a fixed sleep: waits poll for a state with a deadline.

PYTEST_DONT_REWRITE: this module is a pytest plugin (`pytest_plugins = [...]`) that test
modules also import directly; without this marker, registering it after such an import
warns (an error under `filterwarnings = error`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.sshd import SUPERVISOR, ProcInfo, descendants, is_gone, kill_until_none, wait_gone

BASE = Path("/run/ccd-slurm")
SLOTS = 16
#: slot N: slurmctld listens on FIRST_PORT + 2N, slurmd on the port after it
FIRST_PORT = 16817
#: how long to wait for something that normally takes a few seconds at most
DEADLINE = 30.0
CPUS = 8
PARTITION = "debug"
SHORT_PARTITION = "short"
#: CCD_SLURM_KEEP=1 leaves the cluster running at the end of the session (jobs are still
#: cancelled), so the next session reuses it and skips the start-up
KEEP_ENV = "CCD_SLURM_KEEP"
#: the states after which Slurm does nothing more with a job
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
MUNGED = "/usr/sbin/munged"
MUNGEKEY = "/usr/sbin/mungekey"
MUNGE = "/usr/bin/munge"
_INSTALL_HINT = "run tests/run-all.sh as root (it installs slurmctld slurmd slurm-client munge)"


def require_slurm_tool(name: str, package: str) -> str:
    """The absolute path of a Slurm/munge tool; fails (never skips) if it is missing."""
    found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found (Debian package {package}): {_INSTALL_HINT}")
    return found


@cache
def real_memory_mb() -> int:
    """90% of the memory `slurmd -C` sees: slurmd refuses a node with more than it has."""
    out = subprocess.run(
        [SLURMD, "-C"], capture_output=True, text=True, check=True, timeout=DEADLINE
    ).stdout
    found = re.search(r"\bRealMemory=(\d+)", out)
    if found is None:
        raise RuntimeError(f"no RealMemory in `slurmd -C`:\n{out}")
    return int(found.group(1)) * 9 // 10


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _wait_for(
    what: str,
    ready: Callable[[], bool],
    timeout: float = DEADLINE,
    details: Callable[[], str] | None = None,
) -> None:
    """Poll `ready()` every 20 ms until true; each caller says in a comment what it polls."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            more = f":\n{details()}" if details else ""
            raise TimeoutError(f"{what}: not after {timeout:.0f} s{more}")
        time.sleep(0.02)


def _terminate(pid: int, timeout: float = DEADLINE) -> None:
    """SIGTERM `pid` and wait; SIGKILL if it is still there after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not is_gone(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone([pid])
            return
        time.sleep(0.01)  # polling /proc for a daemon shutting down


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons do
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


#: how long ports of daemons just killed may stay bound (a forked child of slurmd
#: closes its copy of the listening socket as it exits, a moment after its parent)
PORTS_FREED = 5.0


def _ports_taken(*ports: int) -> list[int]:
    """The `ports` still bound once those of just-killed daemons had time to close."""
    with contextlib.suppress(TimeoutError):
        # polling bind() until every port is free, with a deadline
        _wait_for("ports free", lambda: all(_port_free(p) for p in ports), PORTS_FREED)
    return [p for p in ports if not _port_free(p)]


def _setting(line: str) -> str | None:
    """The key of a one-setting slurm.conf line (`MinJobAge=2`); None for comments and
    lines of several settings (`PartitionName=x Nodes=…`), which never replace another."""
    key, sep, value = line.strip().partition("=")
    if not sep or not key or key.startswith("#") or any(c.isspace() for c in key + value):
        return None
    return key.lower()  # slurm.conf keys are case-insensitive


@dataclass
class SlurmCluster:
    """One single-node cluster in its slot directory; every command reads `conf`."""

    slot: int
    dir: Path
    conf: Path
    env: dict[str, str]  # {"SLURM_CONF": …}: merge into the environment of commands
    ctld_port: int
    slurmd_port: int
    partition: str = PARTITION  # the default partition
    short_partition: str = SHORT_PARTITION  # MaxTime=00:05:00
    extra_conf: tuple[str, ...] = ()
    #: True if the daemons were already running when this session took the slot
    reused: bool = False
    #: role -> pid: munged, slurmctld, supervisor (a subreaper) and slurmd below it
    pids: dict[str, int] = field(default_factory=dict)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _lock_fd: int | None = field(default=None, repr=False)
    #: run by `start_fresh` once munged answers, before slurmctld starts (e.g. start the
    #: slurmdbd a fresh slurmctld with accounting cannot start without)
    before_controller: Callable[[SlurmCluster], None] | None = field(default=None, repr=False)

    # -- files ---------------------------------------------------------------------------
    @property
    def munge_dir(self) -> Path:
        return self.dir / "munge"

    @property
    def munge_socket(self) -> Path:
        return self.munge_dir / "munge.sock"

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    def log(self, name: str = "slurmctld") -> str:
        """A daemon's log: slurmctld, slurmd, munged, or jobcomp (one line a job)."""
        path = self.munge_dir / "munged.log" if name == "munged" else self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def output(self, name: str) -> str:
        """What a daemon wrote to stderr (log/NAME.out): why it did not start, if it did not."""
        path = self.log_dir / f"{name}.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def render_conf(self) -> str:
        """slurm.conf as verified in INFRA.md, plus the lines marked "beyond INFRA.md"."""
        d, logs = self.dir, self.log_dir
        lines = [
            "# written by tests/slurm.py (see /work/shared/INFRA.md)",
            f"ClusterName=ccd{self.slot}",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={real_memory_mb()}"
            " State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={SHORT_PARTITION} Nodes=localhost MaxTime=00:05:00 State=UP",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={self.munge_socket}",  # our munged, not /run/munge's
            "CredType=cred/munge",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SlurmdParameters=config_overrides",  # lets CPUs exceed the real count
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={logs}/jobcomp.log",
            "MinJobAge=300",
            # -- beyond INFRA.md --
            # SIGTERM -> SIGKILL after 1 s, not 30: a job ignoring SIGTERM would stay
            # COMPLETING for 30 s after scancel or its time limit
            "KillWait=1",
            # a job over a partition's limit is refused by sbatch, not left pending forever
            "EnforcePartLimits=ALL",
            # a node set DOWN (slurmd gone for a while) comes back once slurmd answers
            "ReturnToService=2",
            "MailProg=/bin/true",  # the default /usr/bin/mail is not installed
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={logs}/slurmctld.log",
            f"SlurmdLogFile={logs}/slurmd.log",
        ]
        # an extra `Key=Value` line replaces the base line of that key (MinJobAge=2,
        # AccountingStorageType=…); other extra lines are added at the end
        replaced = {key for line in self.extra_conf if (key := _setting(line)) is not None}
        lines = [line for line in lines if _setting(line) not in replaced]
        return "\n".join([*lines, *self.extra_conf]) + "\n"

    # -- commands ------------------------------------------------------------------------
    def run(
        self, *argv: str, check: bool = False, timeout: float = DEADLINE
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command (or `runuser -u ccdtest -- sbatch …`) against this cluster."""
        return subprocess.run(
            list(argv),
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def submit(self, *args: str) -> str:
        """`sbatch --parsable ARGS` as root; returns the job id."""
        result = self.run("sbatch", "--parsable", *args)
        if result.returncode != 0:
            raise RuntimeError(f"sbatch {args} failed ({result.returncode}): {result.stderr}")
        return result.stdout.strip().split(";")[0]

    def ping(self) -> bool:
        """True if `scontrol ping` says the controller is UP."""
        result = self.run("scontrol", "ping", timeout=DEADLINE)
        return result.returncode == 0 and "is UP" in result.stdout

    def node_states(self) -> set[str]:
        """The node's state(s) as `sinfo -h -o %T` prints them: {"idle"}, {"mixed"}, …"""
        return set(self.run("sinfo", "-h", "-o", "%T").stdout.split())

    def node_idle(self) -> bool:
        """True when sinfo shows the node idle."""
        return self.node_states() == {"idle"}

    def job_state(self, job_id: str) -> str:
        """`squeue -h -j ID -t all -o %T`: PENDING, RUNNING, COMPLETED, …; "" if unknown."""
        return self.run("squeue", "-h", "-j", job_id, "-t", "all", "-o", "%T").stdout.strip()

    def wait_state(self, job_id: str, *states: str, timeout: float = DEADLINE) -> str:
        """Poll squeue until the job is in one of `states` (any final one if none given)."""
        wanted = set(states) or FINAL_STATES
        seen = ""

        def reached() -> bool:
            nonlocal seen
            seen = self.job_state(job_id)
            return seen in wanted

        # polling the controller (squeue) for the job's state, with a deadline
        _wait_for(f"job {job_id} in {sorted(wanted)} (last {seen!r})", reached, timeout)
        return seen

    def job_info(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as a dict: JobState, Reason, ExitCode, StdOut, …"""
        result = self.run("scontrol", "show", "job", "-o", job_id, check=True)
        line = result.stdout.strip()
        pairs = re.split(r" (?=[A-Za-z][\w:/]*=)", line)
        return dict(pair.split("=", 1) for pair in pairs if "=" in pair)

    def squeue_all(self) -> list[dict[str, str]]:
        """Every job the controller knows (finished ones for MinJobAge): id, state, user, name."""
        out = self.run("squeue", "-h", "-t", "all", "-o", "%i %T %u %j", check=True).stdout
        jobs = []
        for line in out.splitlines():
            job_id, state, user, name = line.split(" ", 3)
            jobs.append({"id": job_id, "state": state, "user": user, "name": name})
        return jobs

    def cancel_all(self) -> None:
        """scancel every job that is not finished (whole arrays by their array id)."""
        out = self.run("squeue", "-h", "-o", "%F", check=True).stdout
        ids = sorted(set(out.split()))
        if ids:
            self.run("scancel", *ids, check=True)

    def wait_idle(self, timeout: float = DEADLINE) -> None:
        """Wait until no job is pending, running or completing (all of them are ours)."""
        # polling squeue (without -t: unfinished jobs only) until it lists nothing
        _wait_for(
            "no unfinished jobs",
            lambda: self.run("squeue", "-h", "-o", "%i %T", check=True).stdout.strip() == "",
            timeout,
            details=lambda: self.run("squeue", "-t", "all").stdout,
        )

    # -- daemons -------------------------------------------------------------------------
    def _spawn(
        self, name: str, argv: list[str], *, pipe: bool = False, user: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a daemon in the foreground, its output appended to log/NAME.out."""
        with (self.log_dir / f"{name}.out").open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else out,
                stderr=out,
                start_new_session=True,  # Ctrl-C of pytest must not reach the daemons
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        self._children.append(proc)
        return proc

    def role_of(self, pid: int) -> str | None:
        """Which of this slot's daemons `pid` is, from its exact argv (as `_spawn` gave
        it): munged, slurmctld, supervisor or slurmd; None for any other process."""
        argv = _argv(pid)
        if not argv:
            return None
        if argv[0] == MUNGED and f"--socket={self.munge_socket}" in argv:
            return "munged"
        if argv[1:4] == ["-I", "-c", SUPERVISOR]:
            return "supervisor" if argv[4:8] == [SLURMD, "-D", "-f", str(self.conf)] else None
        if argv[0] in (SLURMCTLD, SLURMD) and argv[1:4] == ["-D", "-f", str(self.conf)]:
            return Path(argv[0]).name
        return None

    def _alive(self, role: str) -> bool:
        pid = self.pids.get(role)
        return pid is not None and not is_gone(pid) and self.role_of(pid) == role

    def _save_pids(self) -> None:
        (self.dir / "pids.json").write_text(json.dumps(self.pids))

    def _stop(self, role: str) -> None:
        pid = self.pids.pop(role, None)
        if pid is not None and self.role_of(pid) == role:
            _terminate(pid)
        self._reap()
        self._save_pids()

    def _reap(self) -> None:
        for child in list(self._children):
            if child.poll() is not None:
                self._children.remove(child)

    def start_munge(self) -> None:
        """Start our munged (as user munge, on our socket) and wait until it answers."""
        if self._alive("munged"):
            return
        d = self.munge_dir
        argv = [require_slurm_tool(MUNGED, "munge"), "--foreground", "--num-threads=4"]
        argv += [f"--socket={self.munge_socket}", f"--key-file={d}/munge.key"]
        argv += [f"--pid-file={d}/munged.pid", f"--seed-file={d}/munged.seed"]
        argv += [f"--log-file={d}/munged.log"]
        proc = self._spawn("munged", argv, user="munge")
        self.pids["munged"] = proc.pid
        self._save_pids()

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"munged exited ({proc.returncode}):\n{self.output('munged')}")
            probe = [require_slurm_tool(MUNGE, "munge"), "-n", "-S", str(self.munge_socket)]
            return subprocess.run(probe, capture_output=True, timeout=DEADLINE).returncode == 0

        # polling with `munge -n` until munged encodes credentials, with a deadline
        _wait_for("munged answering", answers, details=lambda: self.output("munged"))

    def stop_munge(self) -> None:
        """Stop munged: Slurm commands then fail with a munge error (a "status query fails"
        test); the daemons recover once `start_munge()` has run."""
        self._stop("munged")

    def start_controller(self) -> None:
        """Start slurmctld (recovering the saved state) and wait for `scontrol ping` UP."""
        if self._alive("slurmctld"):
            return
        argv = [require_slurm_tool(SLURMCTLD, "slurmctld"), "-D", "-f", str(self.conf)]
        proc = self._spawn("slurmctld", argv)
        self.pids["slurmctld"] = proc.pid
        self._save_pids()

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"slurmctld exited ({proc.returncode}):\n{self.output('slurmctld')}"
                )
            return self.ping()

        # polling `scontrol ping` until the controller answers, with a deadline
        _wait_for("slurmctld UP", up, details=lambda: self.output("slurmctld"))

    def stop_controller(self) -> None:
        """Stop slurmctld (SIGTERM: it saves its state).  Running jobs go on under slurmd
        and report their end once the controller is back."""
        self._stop("slurmctld")

    def start_slurmd(self) -> None:
        """Start slurmd below a subreaper (SUPERVISOR of tests/sshd.py), so the job steps it
        daemonizes stay in our process tree; wait until sinfo shows the node idle."""
        if self._alive("slurmd"):
            return
        slurmd = [require_slurm_tool(SLURMD, "slurmd"), "-D", "-f", str(self.conf)]
        argv = [sys.executable, "-I", "-c", SUPERVISOR, *slurmd, "-N", "localhost"]
        proc = self._spawn("slurmd", argv, pipe=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the supervisor prints slurmd's pid at once
        proc.stdout.close()
        if not first.strip().isdigit():
            proc.wait(timeout=DEADLINE)
            raise RuntimeError(f"slurmd supervisor failed:\n{self.output('slurmd')}")
        self.pids["supervisor"], self.pids["slurmd"] = proc.pid, int(first)
        self._save_pids()

        def idle() -> bool:
            if proc.poll() is not None or is_gone(self.pids["slurmd"]):
                raise RuntimeError(f"slurmd exited:\n{self.output('slurmd')}")
            return self.node_idle()

        # polling sinfo until slurmd has registered and the node is idle, with a deadline
        _wait_for("node idle", idle, details=lambda: self.run("sinfo").stdout)

    def stop_slurmd(self) -> None:
        """Stop slurmd and kill what is left below its supervisor (job steps, jobs)."""
        supervisor = self.pids.get("supervisor")
        self._stop("slurmd")
        if supervisor is not None and self.role_of(supervisor) == "supervisor":
            kill_until_none(lambda procs: descendants(procs, [supervisor]))
            # the supervisor exits once it has no child left
            _wait_for("slurmd supervisor gone", lambda: is_gone(supervisor))
        self.pids.pop("supervisor", None)
        self._reap()
        self._save_pids()

    # -- life cycle ----------------------------------------------------------------------
    def healthy(self) -> bool:
        """All daemons ours and alive, slurm.conf current, controller UP, node usable."""
        roles = ("munged", "slurmctld", "supervisor", "slurmd")
        if not all(self._alive(role) for role in roles):
            return False
        if not self.conf.exists() or self.conf.read_text() != self.render_conf():
            return False
        if not self.ping():
            return False
        states = self.node_states()
        return bool(states) and states <= {"idle", "mixed", "allocated", "completing"}

    def kill_leftovers(self) -> None:
        """Kill every daemon of this slot (found by `role_of`, whether in pids.json or not)
        and what runs below slurmd's supervisor (job steps, jobs).  Only for daemons that
        no session uses any more: the caller holds the slot's lock."""

        def select(procs: list[ProcInfo]) -> set[int]:
            ours = {p.pid: self.role_of(p.pid) for p in procs if p.uid in (0, munge_uid)}
            found = {pid for pid, role in ours.items() if role is not None}
            # slurmctld forks slurmscriptd; the supervisor holds job steps and jobs
            parents = [pid for pid, role in ours.items() if role in ("slurmctld", "supervisor")]
            return found | descendants(procs, parents)

        munge_uid = pwd.getpwnam("munge").pw_uid

        kill_until_none(select)
        self.pids.clear()
        self._reap()

    def start_fresh(self) -> None:
        """Wipe the slot's state and logs, write slurm.conf, start munged/slurmctld/slurmd."""
        for sub in ("state", "spool", "log"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        (self.dir / "state").mkdir(mode=0o700)
        (self.dir / "spool").mkdir(mode=0o755)
        (self.dir / "log").mkdir(mode=0o755)
        self._prepare_munge()
        self.conf.write_text(self.render_conf())
        self.conf.chmod(0o644)  # read by the plain user's sbatch too
        self.start_munge()
        if self.before_controller is not None:
            self.before_controller(self)
        self.start_controller()
        self.start_slurmd()

    def _prepare_munge(self) -> None:
        """Our munge directory (the munge user's, 0755: the plain user reaches the socket)
        and a key of our own (0400, owned by munge, as munged insists)."""
        d = self.munge_dir
        d.mkdir(mode=0o755, exist_ok=True)
        shutil.chown(d, "munge", "munge")
        d.chmod(0o755)
        key = d / "munge.key"
        if not key.exists():
            subprocess.run(
                [require_slurm_tool(MUNGEKEY, "munge"), "--create", f"--keyfile={key}"],
                check=True,
                capture_output=True,
                timeout=DEADLINE,
            )
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        for stale in ("munge.sock", "munge.sock.lock", "munged.pid", "munged.log"):
            with contextlib.suppress(FileNotFoundError):
                (d / stale).unlink()

    def shutdown(self, keep: bool = False) -> None:
        """Cancel every job; unless `keep`, stop slurmd, slurmctld and munged.  Releases
        the slot."""
        try:
            if self._alive("slurmctld") and self._alive("munged"):
                self.cancel_all()
                self.wait_idle()
            if not keep:
                self.stop_slurmd()
                self.stop_controller()
                self.stop_munge()
        finally:
            self.release()

    def release(self) -> None:
        """Give the slot up (what runs in it is left alone)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _lock_slot(slot: int) -> int | None:
    """The slot's lock (held until closed, or until this process ends), or None if taken."""
    fd = os.open(BASE / f"slot{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def open_cluster(
    extra_conf: Sequence[str] = (),
    slot: int | None = None,
    *,
    fresh: bool = False,
    before_controller: Callable[[SlurmCluster], None] | None = None,
) -> SlurmCluster:
    """A started cluster in the first free slot (or in `slot`): the one already running
    there if it is healthy and configured as we would (unless `fresh`), else a fresh one.

    `extra_conf`: more slurm.conf lines; a `Key=Value` line replaces the base line of
    that key.  `fresh`: never reuse what runs in the slot (e.g. a cluster whose saved
    state would not match a new accounting database).  `before_controller`: see
    `SlurmCluster.before_controller`."""
    require_slurm_tool(SLURMD, "slurmd")
    BASE.mkdir(mode=0o755, exist_ok=True)
    BASE.chmod(0o755)  # the plain user's sbatch reads slurm.conf below it
    busy: list[str] = []
    for n in range(SLOTS) if slot is None else [slot]:
        fd = _lock_slot(n)
        if fd is None:
            busy.append(f"slot{n}: locked by another session")
            continue
        directory = BASE / f"slot{n}"
        directory.mkdir(mode=0o755, exist_ok=True)
        cluster = SlurmCluster(
            slot=n,
            dir=directory,
            conf=directory / "slurm.conf",
            env={"SLURM_CONF": str(directory / "slurm.conf")},
            ctld_port=FIRST_PORT + 2 * n,
            slurmd_port=FIRST_PORT + 2 * n + 1,
            extra_conf=tuple(extra_conf),
            _lock_fd=fd,
            before_controller=before_controller,
        )
        with contextlib.suppress(FileNotFoundError, ValueError):
            saved = json.loads((directory / "pids.json").read_text())
            cluster.pids = {role: int(pid) for role, pid in saved.items()}
        try:
            if not fresh and cluster.healthy():
                cluster.reused = True
                cluster.cancel_all()  # jobs of the session that left it running
                cluster.wait_idle()
                # polling sinfo until the node is idle again, with a deadline
                _wait_for("node idle", cluster.node_idle)
                return cluster
            cluster.kill_leftovers()
            taken = _ports_taken(cluster.ctld_port, cluster.slurmd_port)
            if taken:  # by something that is not ours: try the next slot
                busy.append(f"slot{n}: ports {taken} in use")
                cluster.release()
                continue
            cluster.start_fresh()
        except BaseException:
            with contextlib.suppress(Exception):  # the error that got us here matters more
                cluster.shutdown()
            raise
        return cluster
    raise RuntimeError(f"no free Slurm test slot in {BASE}: {'; '.join(busy)}")


def stop_leftovers(slot: int) -> bool:
    """Kill what runs in `slot` unless a session holds it; True if the slot was free."""
    fd = _lock_slot(slot)
    if fd is None:
        return False
    try:
        SlurmCluster(slot, BASE / f"slot{slot}", Path(), {}, 0, 0).kill_leftovers()
    finally:
        os.close(fd)
    return True


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """munged + slurmctld + slurmd, once per session (reused if already running)."""
    cluster = open_cluster()
    yield cluster
    cluster.shutdown(keep=os.environ.get(KEEP_ENV) == "1")


# -- counting wrappers -------------------------------------------------------------------

WRAPPED = ("squeue", "sacct", "scontrol", "sbatch", "scancel")


class CountingBin(NamedTuple):
    """A directory of wrappers (put it first on PATH) and the log they append to."""

    bin_dir: Path
    log_path: Path

    def calls(self, command: str | None = None) -> list[str]:
        """The logged calls (`"squeue -h -j 12"`), all or those of one command."""
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return [line for line in lines if command is None or line.split(" ", 1)[0] == command]


def make_counting_bin(directory: Path) -> CountingBin:
    """Write the wrappers into `directory`: each appends `NAME ARGS` (newlines in the args
    as `\\n`) to the log in one write, then execs the real binary found now on PATH."""
    log_path = directory / "calls.log"
    log_path.touch()
    log_path.chmod(0o666)  # also counted when the plain user's jobs/sessions call them
    for name in WRAPPED:
        real = require_slurm_tool(name, "slurm-client")
        script = directory / name
        script.write_text(
            "#!/bin/bash\n"
            f"# counting wrapper (tests/slurm.py): log the call, then run the real {name}\n"
            f'line="{name} $*"\n'
            f"printf '%s\\n' \"${{line//$'\\n'/\\\\n}}\" >> {shlex.quote(str(log_path))}\n"
            f'exec {shlex.quote(real)} "$@"\n'
        )
        script.chmod(0o755)
    return CountingBin(directory, log_path)


@pytest.fixture
def counting_squeue() -> Iterator[CountingBin]:
    """Counting wrappers for squeue/sacct/scontrol/sbatch/scancel: `(bin_dir, log_path)`.

    In a fresh 0755 directory rather than tmp_path (0700 below pytest's root-only base),
    so the plain user `ccdtest` can run them too.
    """
    directory = Path(tempfile.mkdtemp(prefix="ccd-slurm-bin-"))
    directory.chmod(0o755)
    try:
        yield make_counting_bin(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
