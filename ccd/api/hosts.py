"""Routes about the hosts jobs can run on: the list the daemon knows, a check of one,
and the state of ccd's connection to one (its follower, what it asked of the host).

A host is known from the daemon's config or from the user's ssh_config; checking
one connects to it through the SSH executor (localhost is always usable).  A host
that cannot be reached is a normal answer (``usable: false`` and why), not an
error status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ccd.api.deps import ServicesDep
from ccd.api.models import ERRORS
from ccd.errors import NotFound
from ccd.executors.base import LaunchError

router = APIRouter(responses=ERRORS)


@router.get("/v1/hosts")
async def hosts(services: ServicesDep) -> list[dict[str, Any]]:
    """Hosts the daemon knows: its config's and the ssh_config aliases."""
    config = services.config
    configured = config.hosts
    return [
        {
            "name": name,
            "executor": "local" if name == "localhost" else "ssh",
            "configured": name in configured,
            "hostname": configured[name].hostname if name in configured else None,
            "max_jobs": config.host_slots(name),
        }
        for name in sorted(config.known_hosts())
    ]


@router.post("/v1/hosts/{name}/check")
async def check_host(name: str, services: ServicesDep) -> dict[str, Any]:
    """Connect to a host and report whether jobs can run there."""
    if name not in services.config.known_hosts():
        raise NotFound(
            f"unknown host '{name}': add it to hosts: in the daemon config or to your ssh config"
        )
    if name == "localhost":
        return {"host": name, "usable": True, "rtt_ms": 0.0}
    try:
        report = await services.ssh.check(name)
    except (LaunchError, TimeoutError) as exc:
        return {"host": name, "usable": False, "error": str(exc) or "timed out connecting"}
    report["usable"] = bool(report["workdir_writable"])
    return report


@router.get("/v1/hosts/{name}/link")
async def host_link(name: str, services: ServicesDep) -> dict[str, Any]:
    """The daemon's connection to an SSH host as it is now: connected, which follower
    streams its jobs (or why SFTP polling does), and counts of SFTP requests, exec
    channels, launches and streamed frames.  Asks the host nothing."""
    if name == "localhost" or name not in services.config.known_hosts():
        raise NotFound(f"no SSH host '{name}'")
    stats = services.ssh.link_stats(name)
    return stats if stats is not None else {"host": name, "connected": False, "follower": None}
