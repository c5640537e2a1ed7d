"""`ccctl hosts …` and `ccctl daemon …`: the machines jobs run on, and the daemon itself."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ccd.cli.client import Client, daemon_environment, path_of, start_daemon
from ccd.cli.common import JsonOpt, client, fail, print_json

daemon_app = typer.Typer(help="Start, stop and inspect the daemon.", no_args_is_help=True)
hosts_app = typer.Typer(help="The hosts jobs can run on.", no_args_is_help=True)


# -- hosts ---------------------------------------------------------------------------
@hosts_app.command("ls")
def hosts_ls(as_json: JsonOpt = False) -> None:
    """List the hosts workflows can use (daemon config and ~/.ssh/config aliases)."""
    rows = client().call("GET", "/v1/hosts")
    if as_json:
        print_json(rows)
        return
    for row in rows:
        where = row["hostname"] or ("this machine" if row["name"] == "localhost" else "ssh config")
        print(f"{row['name']:<24} {row['executor']:<6} max_jobs={row['max_jobs']:<5} {where}")


@hosts_app.command("check")
def hosts_check(
    names: Annotated[
        list[str] | None, typer.Argument(help="Hosts to check (default: all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect to hosts and report round-trip time, auth, workdir, python3 and Slurm tools.

    Exits 0 only if every checked host is usable.
    """
    c = client()
    targets = names or [h["name"] for h in c.call("GET", "/v1/hosts")]
    reports = [c.call("POST", path_of("hosts", name, "check")) for name in targets]
    if as_json:
        print_json(reports)
    else:
        for r in reports:
            if not r["usable"]:
                print(f"{r['host']}: NOT usable: {r.get('error') or 'workdir not writable'}")
                continue
            if r["host"] == "localhost":
                print("localhost: ok")
                continue
            print(
                f"{r['host']}: ok — {r['rtt_ms']:.0f} ms, user {r['user']}, "
                f"workdir {r['workdir']} (writable), {r['python'] or 'no python3'}, "
                f"sbatch {'yes' if r['sbatch'] else 'no'}, squeue {'yes' if r['squeue'] else 'no'}"
            )
    if not all(r["usable"] for r in reports):
        raise typer.Exit(1)


# -- daemon --------------------------------------------------------------------------
@daemon_app.command("start")
def daemon_start() -> None:
    """Start the daemon in the background (its log goes to the state directory)."""
    c = Client()
    health = c.ping()
    if health is not None:
        print(f"ccd is already running (pid {health['pid']}) on {c.socket_path}")
        return
    pid = start_daemon(c)
    print(f"ccd started (pid {pid}) on {c.socket_path}")


def _default_manager() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


@daemon_app.command("install")
def daemon_install(
    socket_activation: Annotated[
        bool, typer.Option("--socket", help="Also install ccd.socket (start ccd on demand).")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            help="Where to write it (default: ~/.config/systemd/user, ~/Library/LaunchAgents)."
        ),
    ] = None,
    manager: Annotated[
        str | None,
        typer.Option(help="systemd or launchd (default: this platform's: launchd on macOS)."),
    ] = None,
) -> None:
    """Install ccd as a user service: systemd (and optionally its socket), or launchd.

    The unit (or agent) sets the environment jobs start with: this ccctl's
    interpreter directory first on PATH, then the daemon config's environment:
    block.  Run it again after changing that block: the unit is rewritten.
    """

    from ccd.config import load_config
    from ccd.daemon.units import SOCKET, exec_line, render_service, unit_variables

    manager = manager or _default_manager()
    if manager not in ("systemd", "launchd"):
        fail(f"--manager must be systemd or launchd, not {manager!r}")
    if manager == "launchd" and socket_activation:
        fail("--socket is for systemd; a launchd agent starts ccd at login instead")
    block = load_config().environment
    # what an autostarted daemon gets too, so both ways of running ccd agree
    base = daemon_environment(os.environ, sys.executable)
    variables = unit_variables(block, base, os.environ.get("CCD_CONFIG"))
    if manager == "launchd":
        _install_agent(directory, variables, list(block))
        return
    target = (
        directory
        or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"
    )
    # the interpreter that runs this ccctl: right for venvs and --user installs alike
    exec_start = exec_line(sys.executable, "-m", "ccd.daemon.main", "run")
    target.mkdir(parents=True, exist_ok=True)
    units = {"ccd.service": render_service(exec_start, variables)}
    if socket_activation:
        units["ccd.socket"] = SOCKET
    changed = [name for name, text in units.items() if _write_unit(target / name, text)]
    print(f"jobs will start with PATH={variables['PATH']}")
    if block:
        print(f"the daemon config's environment: sets {', '.join(block)}")
    unit = "ccd.socket" if socket_activation else "ccd.service"
    print(f"enable it with: systemctl --user daemon-reload && systemctl --user enable --now {unit}")
    if changed:
        print("a running service keeps its old environment until: systemctl --user restart ccd")
    _warn_about_linger()


def _install_agent(directory: Path | None, variables: dict[str, str], block: list[str]) -> None:
    """The launchd half of `daemon install`: one plist, checked by plutil where it exists."""
    from ccd import paths
    from ccd.daemon.launchd import (
        LABEL,
        agents_dir,
        bootstrap_command,
        render_agent,
        restart_command,
    )

    path = (directory or agents_dir()) / f"{LABEL}.plist"
    # the socket ccctl uses now, as an autostarted daemon is told: launchd sets no
    # XDG_RUNTIME_DIR, and a shell that does would otherwise look elsewhere
    program = [sys.executable, "-m", "ccd.daemon.main", "run", "--socket", str(paths.socket_path())]
    log = paths.state_dir() / "ccd.log"
    text = render_agent(program, variables, log).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    # launchd creates the log file, not its directory
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = _write_unit(path, text)
    _lint_plist(path)
    print(f"jobs will start with PATH={variables['PATH']}")
    if block:
        print(f"the daemon config's environment: sets {', '.join(block)}")
    print(f"load it with: {bootstrap_command(path)}")
    if changed:
        print(f"a loaded agent keeps its old environment until: {restart_command(path)}")


def _lint_plist(path: Path) -> None:
    import shutil
    import subprocess

    plutil = shutil.which("plutil")
    if plutil is None:
        return  # not a Mac: the plist was written by plistlib, tests parse it back
    result = subprocess.run([plutil, "-lint", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"plutil -lint refuses {path}: {(result.stdout + result.stderr).strip()}")


def _write_unit(path: Path, text: str) -> bool:
    """Write one unit and say what happened; True if an existing unit changed."""
    try:
        before: str | None = path.read_text()
    except FileNotFoundError:
        before = None
    if before == text:
        print(f"{path} is up to date")
        return False
    path.write_text(text)
    print(f"{'updated' if before is not None else 'wrote'} {path}")
    return before is not None


def _warn_about_linger() -> None:
    import getpass

    from ccd.daemon.units import linger

    user = getpass.getuser()
    state = linger(user)
    if state.enabled is False:
        print(
            f"warning: lingering is off for {user}: the service stops at your last logout; "
            f"turn it on with: loginctl enable-linger {user}",
            file=sys.stderr,
        )
    elif state.enabled is None:
        print(
            f"warning: could not check lingering ({state.detail}); without it the service "
            f"stops at your last logout: loginctl enable-linger {user}",
            file=sys.stderr,
        )


@daemon_app.command("stop")
def daemon_stop(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for it to exit.")] = 15.0,
) -> None:
    """Stop the daemon; running jobs keep running and are picked up by the next daemon."""
    c = Client()
    health = c.ping()
    if health is None:
        print("ccd is not running")
        return
    pid = int(health["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.ping() is None and not _alive(pid):
            print(f"ccd (pid {pid}) stopped")
            return
        time.sleep(0.05)  # waiting for another process to exit
    fail(f"ccd (pid {pid}) did not stop within {timeout:g}s")


@daemon_app.command("status")
def daemon_status(as_json: JsonOpt = False) -> None:
    """Say whether the daemon runs, where, and since when; exit 3 if it does not."""
    c = Client()
    health = c.ping()
    if health is None:
        if as_json:
            print_json({"running": False, "socket": str(c.socket_path)})
        else:
            print(f"ccd is not running (socket {c.socket_path})")
        raise typer.Exit(3)
    if as_json:
        print_json({"running": True, "socket": str(c.socket_path), **health})
        return
    print(
        f"ccd {health['version']} running, pid {health['pid']}, up {health['uptime']:.0f}s, "
        f"socket {c.socket_path}, state {health['state_dir']}"
    )
    print(f"jobs start with PATH={health.get('job_path', '')}")
    names = health.get("environment") or []
    if names:
        print(f"the daemon config's environment: sets {', '.join(names)}")
    mechanisms = health.get("platform") or {}
    if mechanisms:
        print("platform: " + ", ".join(f"{k} {v}" for k, v in mechanisms.items()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    from ccd.platform import choose
    from ccd.platform.procs import process_table

    # an exited child of someone else may linger as a zombie
    return not process_table(choose().processes).zombie(pid)
