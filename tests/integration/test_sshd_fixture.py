"""The real-sshd fixtures work with asyncssh the way the SSH executor tests need them."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest

from tests.netns import NetnsLabFactory
from tests.sshd import (
    SshdFactory,
    SshHost,
    SshUser,
    host_base_dir,
    is_gone,
    make_host,
    teardown_hosts,
)

# The fixtures live in these plugin modules (registering them again from a conftest is
# harmless); tests/conftest.py is the better home for this line.


async def run_as(host: SshHost, command: str) -> str:
    async with asyncssh.connect(**host.connect_kwargs()) as conn:
        result = await conn.run(command, check=True)
        return str(result.stdout)


async def test_login_as_plain_user_with_key_and_known_hosts(
    ssh_host: SshHost, ssh_user: SshUser
) -> None:
    assert ssh_host.known_hosts.read_text().startswith(f"[{ssh_host.address}]:{ssh_host.port} ")
    out = await run_as(ssh_host, 'id -un; echo "$HOME"; test -w "$HOME" && echo writable')
    assert out.split() == [ssh_user.name, str(ssh_user.home), "writable"]
    assert "Accepted publickey for ccdtest" in ssh_host.log()


async def test_max_sessions_refuses_one_channel_too_many(sshd_factory: SshdFactory) -> None:
    host = sshd_factory(max_sessions=2)
    async with asyncssh.connect(**host.connect_kwargs()) as conn:
        first = await conn.create_process("cat")
        second = await conn.create_process("cat")
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.create_process("cat")
        # the connection stays usable: a freed slot can be used again — though sshd may
        # count a just-closed channel for a moment, so retry (polling, with a deadline)
        first.stdin.write_eof()
        await first.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert (await conn.run("echo again", check=True)).stdout == "again\n"
                break
            except asyncssh.ChannelOpenError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
        second.stdin.write_eof()
        await second.wait()
    assert "no more sessions" in host.log()


async def test_proxy_jump_through_a_second_host(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    jump = sshd_factory()
    target = sshd_factory()
    assert jump.address != target.address
    config = tmp_path / "ssh_config"
    config.write_text(
        jump.ssh_config_entry("bastion") + target.ssh_config_entry("node", proxy_jump="bastion")
    )
    async with asyncssh.connect("node", config=[str(config)]) as conn:
        result = await conn.run("id -un; echo $SSH_CONNECTION", check=True)
    user, connection = str(result.stdout).splitlines()
    assert user == "ccdtest"
    assert connection.endswith(f" {target.address} {target.port}")
    # only "node" was asked for: logging into the jump host is ProxyJump at work
    assert "Accepted publickey for ccdtest" in jump.log()
    assert "Accepted publickey for ccdtest" in target.log()


async def test_changed_host_key_is_not_verifiable(ssh_host: SshHost) -> None:
    old_known_hosts = ssh_host.known_hosts.read_text()
    ssh_host.regenerate_host_key()
    assert ssh_host.known_hosts.read_text() == old_known_hosts
    assert ssh_host.known_hosts_line not in old_known_hosts
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await run_as(ssh_host, "true")
    ssh_host.write_known_hosts()
    assert (await run_as(ssh_host, "id -un")).strip() == "ccdtest"


async def test_stop_refuses_new_connects_and_start_brings_it_back(ssh_host: SshHost) -> None:
    async with asyncssh.connect(**ssh_host.connect_kwargs()) as conn:
        ssh_host.stop()
        assert not ssh_host.running
        with pytest.raises(OSError):
            await run_as(ssh_host, "true")
        # sessions already open survive the listener …
        assert (await conn.run("echo alive", check=True)).stdout == "alive\n"
        assert ssh_host.session_pids()
        # … until kill_sessions
        ssh_host.kill_sessions()
        assert not ssh_host.session_pids()
        with pytest.raises((asyncssh.Error, OSError)):
            await asyncio.wait_for(conn.run("echo dead", check=True), 10)
    ssh_host.start()
    assert (await run_as(ssh_host, "id -un")).strip() == "ccdtest"


async def test_teardown_kills_detached_jobs_of_the_user(ssh_user: SshUser) -> None:
    base = host_base_dir("ccd-sshd-t-")
    host = make_host(base, "solo", ssh_user, "127.0.0.250")
    try:
        host.start()
        # a job that leaves its session for good, as the executor's jobs do
        out = await run_as(host, "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!")
        job = int(out.strip())
        assert not is_gone(job)
    finally:
        teardown_hosts([host], ssh_user.uid)
        shutil.rmtree(base)
    assert is_gone(job)
    assert not host.session_pids()


CTL_CLIENT = """
import asyncio, sys, time
import asyncssh

async def main() -> None:
    host, port, user, key, known_hosts = sys.argv[1:6]
    start = time.monotonic()
    try:
        async with asyncssh.connect(
            host, int(port), username=user, client_keys=[key], known_hosts=known_hosts,
            config=[], connect_timeout=2,
        ) as conn:
            result = await conn.run("id -un", check=True)
            print("OK", result.stdout.strip(), f"{time.monotonic() - start:.2f}")
    except Exception as exc:
        print("FAIL", type(exc).__name__, f"{time.monotonic() - start:.2f}")

asyncio.run(main())
"""


def test_netns_lab_cut_and_restore(netns_lab_factory: NetnsLabFactory) -> None:
    lab = netns_lab_factory(1)
    host = lab.start_sshd(1)
    assert host.known_hosts.read_text().startswith(f"{lab.host_address(1)} ssh-ed25519 ")

    def connect_from_ctl() -> list[str]:
        argv = [sys.executable, "-c", CTL_CLIENT, host.address, str(host.port)]
        argv += [host.user, str(host.identity_file), str(host.known_hosts)]
        code, out, err = lab.run("ctl", argv)
        assert code == 0, err
        return out.split()

    assert connect_from_ctl()[:2] == ["OK", "ccdtest"]
    # the root namespace cannot reach the lab: the guard route
    routes = subprocess.run(["ip", "route", "show", "exact", "10.200.0.0/16"], capture_output=True)
    assert routes.stdout.startswith(b"unreachable 10.200.0.0/16"), routes
    with socket.socket() as s, pytest.raises(OSError):
        s.connect((host.address, host.port))

    lab.cut(1)
    started = time.monotonic()
    result = connect_from_ctl()
    assert result[:2] == ["FAIL", "TimeoutError"], result
    assert 1.5 < time.monotonic() - started < 10

    lab.cut(1, unreachable=True)  # ctl's end down as well: fails at once
    result = connect_from_ctl()
    assert result[0] == "FAIL" and float(result[2]) < 1.0, result

    lab.restore(1)
    assert connect_from_ctl()[:2] == ["OK", "ccdtest"]
