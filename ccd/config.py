"""The daemon's configuration file (``config.yaml``)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ccd import paths
from ccd.errors import CcdError


def default_local_slots() -> int:
    # Research jobs are often I/O-bound or sleep on remote work; two per core,
    # at least 8, keeps a laptop responsive without starving small sweeps.
    return max(8, 2 * (os.cpu_count() or 1))


class HostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hostname: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    #: run-directory root on the host
    workdir: str | None = None
    #: jobs of all workflows running on this host at once
    max_jobs: int | None = Field(default=None, ge=1)
    python: str = "python3"
    #: shell lines run before each job (e.g. ``module load ...``)
    setup: list[str] = Field(default_factory=list)


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: database, daemon log and local run directories
    state_dir: Path = Field(default_factory=paths.state_dir)
    #: the API socket
    socket: Path = Field(default_factory=paths.socket_path)
    #: jobs running at once over all workflows and hosts
    max_jobs: int = Field(default=1024, ge=1)
    #: seconds between TERM and KILL when a job is cancelled or times out
    kill_grace: float = Field(default=10.0, ge=0)
    hosts: dict[str, HostConfig] = Field(default_factory=dict)

    def host_slots(self, host: str) -> int:
        cfg = self.hosts.get(host)
        if cfg is not None and cfg.max_jobs is not None:
            return cfg.max_jobs
        return default_local_slots() if host == "localhost" else 16

    @property
    def database(self) -> Path:
        return self.state_dir / "ccd.db"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    def known_hosts(self) -> set[str]:
        return {"localhost", *self.hosts}


def _describe(err: ValidationError, source: Path) -> str:
    lines = [f"{source}: invalid daemon config"]
    fields = set(DaemonConfig.model_fields) | set(HostConfig.model_fields)
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"])
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            key = str(item["loc"][-1])
            close = difflib.get_close_matches(key, fields, n=1)
            msg = f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None) -> DaemonConfig:
    """Read the config file; a missing default file means all defaults."""
    explicit = path is not None or "CCD_CONFIG" in os.environ
    source = Path(path) if path is not None else paths.config_path()
    if not source.exists():
        if explicit:
            raise CcdError(f"{source}: config file not found")
        return DaemonConfig()
    try:
        data: Any = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CcdError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CcdError(f"{source}: the config must be a mapping of settings")
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise CcdError(_describe(exc, source)) from exc
