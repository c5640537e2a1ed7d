"""SSH executor figures against a real loopback sshd with MaxSessions 10.

* throughput: 200 trivial jobs on one host, through ccd (submit over the socket to
  a real daemon, launch, log tail by SFTP, exit file, events) and through a plain
  asyncssh baseline in this process (one connection, `conn.run("true")` per job,
  at most 8 channels at once: what a script must do within MaxSessions 10);
* marker latency: a remote job prints `::ccd progress=…` lines stamped with the
  time they were printed; latency is the stored event's time minus that stamp
  (same machine, same clock), reported as p50/p95/max.

Needs root (it creates the test user `ccdtest` and starts sshd), like the tests.

    python bench/ssh.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

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


def daemon_config(base: Path, host: SshHost) -> str:
    (base / "ssh_config").write_text("")
    return (
        f"ssh_config: {base / 'ssh_config'}\nhosts:\n  remote:\n"
        f"    hostname: {host.address}\n    port: {host.port}\n    user: {host.user}\n"
        f"    identity_file: {host.identity_file}\n    known_hosts: {host.known_hosts}\n"
        f"    max_jobs: {JOBS}\n    poll_interval: 0.2\n"
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
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print run_all's rows as JSON")
    args = parser.parse_args()
    base = new_scratch("ccd-bench-ssh-")
    hosts_dir = host_base_dir("ccd-bench-sshd-")
    user = make_user(base)
    host = make_host(hosts_dir, "remote", user, "127.0.0.2", max_sessions=10)
    host.start()
    daemon = None
    try:
        base_s = asyncio.run(baseline(host))
        daemon = BenchDaemon(base, daemon_config(base, host))
        jobs = "\n".join(f"  j{i}: {{host: remote, run: 'true'}}" for i in range(JOBS))
        _, ccd_s = daemon.run(f"name: ssh-throughput\njobs:\n{jobs}\n")
        lat = sorted(marker_latencies(daemon))
    finally:
        if daemon is not None:
            daemon.close()
        teardown_hosts([host], user.uid)
        remove_scratch(base)
        shutil.rmtree(hosts_dir, ignore_errors=True)
    p95 = percentile(lat, 95)
    if args.json:
        print_rows(
            [
                Row(
                    "ssh: 200 trivial jobs on one host (MaxSessions 10), jobs/s",
                    "",
                    f"{JOBS / ccd_s:.0f}",
                    f"{JOBS / base_s:.0f} (asyncssh conn.run)",
                    f"{base_s / ccd_s:.2f}",
                ),
                Row(
                    "ssh: marker latency (print → event stored), p95",
                    "< 1 s",
                    f"{p95:.3f} s (p50 {statistics.median(lat):.3f})",
                    met=p95 < 1,
                ),
            ],
            as_json=True,
        )
        return
    print(f"{'ssh, one host, MaxSessions 10':<44} {'baseline':>10} {'ccd':>10} {'ccd/base':>9}")
    print(
        f"{'200 trivial jobs: jobs/s':<44} {JOBS / base_s:>10.0f} {JOBS / ccd_s:>10.0f} "
        f"{base_s / ccd_s:>9.2f}"
    )
    print(
        f"{'marker latency (print -> event stored), s':<44} "
        f"p50 {statistics.median(lat):.3f}  p95 {p95:.3f}  max {lat[-1]:.3f}  "
        f"({len(lat)} markers; target p95 < 1 s)"
    )


if __name__ == "__main__":
    main()
