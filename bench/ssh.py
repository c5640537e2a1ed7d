"""SSH executor figures against a real loopback sshd with MaxSessions 10.

* throughput: 200 trivial jobs on one host, through ccd (submit over the socket to
  a real daemon, batched launch, exits streamed by the host's follower, events) and
  through a plain asyncssh baseline in this process (one connection,
  `conn.run("true")` per job, at most 8 channels at once: what a script must do
  within MaxSessions 10), in `--repeat` pairs (baseline, then ccd), best of each kept;
* marker latency: a remote job prints `::ccd progress=…` lines stamped with the
  time they were printed; latency is the stored event's time minus that stamp
  (same machine, same clock), reported as p50/p95/max, alone and again while
  1,000 other jobs run on the host;
* 1,000 waiting jobs: 1,000 `sleep 60` jobs on the host; once all run, the CPU
  the daemon and the host's side of it (the sshd processes of ccd's connection
  and the follower) use over an idle window, and the SFTP requests and exec
  channels ccd opened meanwhile (the daemon's own counters, GET
  /v1/hosts/NAME/link).  Then one cancel of all 1,000, timed.

Needs root (it creates the test user `ccdtest` and starts sshd), like the tests.

    python bench/ssh.py [--json] [--follower auto|python3|sh|none] [--idle S] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncssh

from bench.common import BenchDaemon, Row, new_scratch, percentile, print_rows, remove_scratch
from ccd.cli.client import path_of
from tests.sshd import (
    SshHost,
    SshUser,
    ensure_user,
    host_base_dir,
    make_host,
    new_ed25519_key,
    teardown_hosts,
)

JOBS = 200
MARKERS = 100
WAITING = 1000
TICKS = os.sysconf("SC_CLK_TCK")


def make_user(base: Path) -> SshUser:
    entry = ensure_user()
    key = base / "client_ed25519"
    public = new_ed25519_key(key, "ccd-bench")
    return SshUser(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir), key, public)


async def baseline(host: SshHost) -> float:
    start = time.perf_counter()
    async with asyncssh.connect(**host.connect_kwargs()) as conn:
        channels = asyncio.Semaphore(8)

        async def one() -> None:
            async with channels:
                while True:
                    try:
                        await conn.run("true", check=True)
                        return
                    except asyncssh.ChannelOpenError:
                        await asyncio.sleep(0.01)  # sshd still counts a just-closed channel

        await asyncio.gather(*(one() for _ in range(JOBS)))
    return time.perf_counter() - start


def daemon_config(base: Path, host: SshHost, follower: str) -> str:
    (base / "ssh_config").write_text("")
    return (
        f"ssh_config: {base / 'ssh_config'}\nmax_jobs: {WAITING + 50}\nhosts:\n  remote:\n"
        f"    hostname: {host.address}\n    port: {host.port}\n    user: {host.user}\n"
        f"    identity_file: {host.identity_file}\n    known_hosts: {host.known_hosts}\n"
        f"    max_jobs: {WAITING + 10}\n    poll_interval: 0.2\n    follower: {follower}\n"
    )


def marker_latencies(daemon: BenchDaemon) -> list[float]:
    job = (
        f"i=1; while [ $i -le {MARKERS} ]; do "
        'echo "::ccd progress=$i msg=$(date +%s.%N)"; i=$((i+1)); sleep 0.05; done'
    )
    wf, _ = daemon.run(f"name: latency\njobs:\n  m: {{host: remote, run: '{job}'}}\n")
    latencies = []
    for line in daemon.client.stream_lines(path_of("workflows", wf, "events")):
        event = json.loads(line)
        if event["kind"] == "job.progress" and event["data"].get("message"):
            latencies.append(event["time"] - float(event["data"]["message"]))
    return sorted(latencies)


# -- CPU of the daemon and of the host's side ----------------------------------------------
def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid` in clock ticks (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def host_side(host: SshHost) -> dict[str, list[int]]:
    """The pids on the host that serve ccd: sshd sessions and the follower."""
    procs: dict[str, list[int]] = {"sshd": [], "follower": []}
    for p in host.tree():
        if p.comm == "sshd" and p.pid != host.listener:
            procs["sshd"].append(p.pid)
        else:
            try:
                argv = Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b".ccd-follower/follow-" in arg for arg in argv):
                procs["follower"].append(p.pid)
    return procs


@dataclass
class Idle:
    seconds: float
    daemon: float  # share of one core
    sshd: float
    follower: float
    sftp: int
    execs: int

    @property
    def total(self) -> float:
        return self.daemon + self.sshd + self.follower


def link_of(daemon: BenchDaemon) -> dict[str, Any]:
    return dict(daemon.client.call("GET", "/v1/hosts/remote/link"))


def measure_idle(daemon: BenchDaemon, host: SshHost, seconds: float) -> Idle:
    procs = host_side(host)
    pids = {"daemon": [daemon.pid], **procs}
    before = {k: sum(cpu_ticks(p) for p in v) for k, v in pids.items()}
    link_before = link_of(daemon)
    start = time.perf_counter()
    time.sleep(seconds)  # the idle window itself: nothing is asked of the daemon
    elapsed = time.perf_counter() - start
    link_after = link_of(daemon)
    share = {
        k: (sum(cpu_ticks(p) for p in v) - before[k]) / TICKS / elapsed for k, v in pids.items()
    }
    return Idle(
        elapsed,
        share["daemon"],
        share["sshd"],
        share["follower"],
        link_after["sftp"] - link_before["sftp"],
        link_after["execs"] - link_before["execs"],
    )


def wait_running(daemon: BenchDaemon, wf: str, count: int) -> float:
    """Seconds until `count` jobs of `wf` are running (from now)."""
    start = time.perf_counter()
    running = 0
    for line in daemon.client.stream_lines(path_of("workflows", wf, "events"), {"follow": True}):
        event = json.loads(line) if line.strip() else {}
        if event.get("kind") == "job.state" and event["data"]["state"] == "running":
            running += 1
            if running == count:
                return time.perf_counter() - start
    raise RuntimeError(f"workflow {wf} ended with {running} of {count} jobs started")


@dataclass
class Waiting:
    started_s: float
    idle: Idle
    latencies: list[float]
    cancel_s: float
    follower: str | None


def waiting_jobs(daemon: BenchDaemon, host: SshHost, idle_s: float) -> Waiting:
    jobs = "\n".join(f"  s{i}: {{host: remote, run: 'sleep 60'}}" for i in range(WAITING))
    wf, _ = daemon.submit(f"name: waiting\njobs:\n{jobs}\n")
    started = wait_running(daemon, wf, WAITING)
    time.sleep(2)  # let the launch's last writes and events settle before measuring
    idle = measure_idle(daemon, host, idle_s)
    follower = link_of(daemon)["follower"]
    latencies = marker_latencies(daemon)
    start = time.perf_counter()
    daemon.client.call("POST", path_of("workflows", wf, "cancel"))
    daemon.wait(wf)
    return Waiting(started, idle, latencies, time.perf_counter() - start, follower)


def rows(pairs: list[tuple[float, float]], lat: list[float], waiting: Waiting) -> list[Row]:
    idle = waiting.idle
    busy = waiting.latencies
    per_s = (idle.sftp + idle.execs) / idle.seconds
    base_s, ccd_s = min(b for b, _ in pairs), min(c for _, c in pairs)
    each = [b / c for b, c in pairs]
    spread = f" (pairs {min(each):.2f}–{max(each):.2f})" if len(pairs) > 1 else ""
    return [
        Row(
            f"ssh: 200 trivial jobs on one host (MaxSessions 10), jobs/s, best of {len(pairs)}",
            "≥ 0.7×",
            f"{JOBS / ccd_s:.0f}",
            f"{JOBS / base_s:.0f} (asyncssh conn.run)",
            f"{base_s / ccd_s:.2f}{spread}",
            met=base_s / ccd_s >= 0.7,
        ),
        Row(
            "ssh: marker latency (print → event stored), p95",
            "< 1 s",
            f"{percentile(lat, 95):.3f} s (p50 {statistics.median(lat):.3f})",
            met=percentile(lat, 95) < 1,
        ),
        Row(
            f"ssh: {WAITING:,} `sleep 60` jobs waiting: CPU of daemon + sshd + follower",
            "< 2% of a core",
            f"{100 * idle.total:.2f}% (daemon {100 * idle.daemon:.2f}, sshd "
            f"{100 * idle.sshd:.2f}, {waiting.follower} follower {100 * idle.follower:.2f})",
            met=idle.total < 0.02,
        ),
        Row(
            f"ssh: SFTP requests + exec channels per second, {WAITING:,} jobs waiting",
            "≈ 0",
            f"{per_s:.2f} ({idle.sftp} SFTP, {idle.execs} exec in {idle.seconds:.0f} s)",
            met=per_s < 0.5,
        ),
        Row(
            f"ssh: marker latency with {WAITING:,} jobs running, p95",
            "< 0.1 s",
            f"{percentile(busy, 95):.3f} s (p50 {statistics.median(busy):.3f})",
            met=percentile(busy, 95) < 0.1,
        ),
        Row(
            f"ssh: {WAITING:,} jobs submitted → all running; one cancel → all ended",
            "",
            f"{waiting.started_s:.1f} s; {waiting.cancel_s:.1f} s",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print run_all's rows as JSON")
    parser.add_argument("--follower", default="auto", choices=["auto", "python3", "sh", "none"])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    parser.add_argument("--repeat", type=int, default=3, help="throughput pairs; best is kept")
    args = parser.parse_args()
    base = new_scratch("ccd-bench-ssh-")
    hosts_dir = host_base_dir("ccd-bench-sshd-")
    user = make_user(base)
    host = make_host(hosts_dir, "remote", user, "127.0.0.2", max_sessions=10)
    host.start()
    daemon = None
    try:
        daemon = BenchDaemon(base, daemon_config(base, host, args.follower))
        jobs = "\n".join(f"  j{i}: {{host: remote, run: 'true'}}" for i in range(JOBS))
        pairs = []
        for i in range(args.repeat):  # the baseline, then ccd right after it
            base_s = asyncio.run(baseline(host))
            pairs.append((base_s, daemon.run(f"name: ssh-throughput-{i}\njobs:\n{jobs}\n")[1]))
        lat = marker_latencies(daemon)
        waiting = waiting_jobs(daemon, host, args.idle)
    finally:
        if daemon is not None:
            daemon.close()
        teardown_hosts([host], user.uid)
        remove_scratch(base)
        shutil.rmtree(hosts_dir, ignore_errors=True)
    print_rows(rows(pairs, lat, waiting), as_json=args.json)


if __name__ == "__main__":
    main()
