"""The daemon's configuration file (``config.yaml``)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ccd import paths
from ccd.errors import CcdError, Problem
from ccd.resources import check_device_ids, parse_mem
from ccd.spec.hints import Suggestions
from ccd.spec.notify import Notifier, checked_notify


def default_local_slots() -> int:
    # Research jobs are often I/O-bound or sleep on remote work; two per core,
    # at least 8, keeps a laptop responsive without starving small sweeps.
    return max(8, 2 * (os.cpu_count() or 1))


class SlurmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: seconds between two squeue calls (one call covers every job on the cluster)
    poll_interval: float = Field(default=5.0, gt=0)
    #: whether the cluster has accounting (sacct); auto: try it, fall back without
    sacct: Literal["auto", "yes", "no"] = "auto"
    #: job ids per scancel call
    max_scancel_batch: int = Field(default=100, ge=1)
    #: ccd's jobs in the cluster's queue at once (sites cap submissions: MaxSubmitJobs)
    max_jobs: int = Field(default=5000, ge=1)

    @field_validator("sacct", mode="before")
    @classmethod
    def _yaml_boolean(cls, value: Any) -> Any:
        # YAML reads an unquoted `sacct: yes` / `no` as a boolean
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value


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
    #: shell lines run before each job on this host, before its own ``setup:``
    setup: list[str] = Field(default_factory=list)
    #: the software environment of every job on this host; a job's own declaration
    #: wins (docs/environments.md): a virtualenv to activate, a conda env (name or
    #: prefix), environment modules to load, a container image and its runtime
    venv: str | None = None
    conda: str | None = None
    modules: list[str] = Field(default_factory=list)
    container: str | None = None
    #: the container runtime; None: the first of apptainer, singularity, podman, docker
    #: found on the host's PATH when the job starts
    runtime: Literal["apptainer", "singularity", "podman", "docker"] | None = None
    #: extra arguments for the runtime (e.g. ``[--nv]`` for apptainer with GPUs)
    container_options: list[str] = Field(default_factory=list)
    #: what local jobs may hold at once (``resources: {gpus: 1, cpus: 4, mem: 8G}``):
    #: GPU device ids (``[0, 1]``) or a count (ids 0..N-1), CPU cores, memory; None:
    #: not limited (and a job that asks for GPUs gets none assigned)
    gpus: list[str] | int | None = None
    cpus: int | None = Field(default=None, ge=1)
    mem: str | None = None
    #: seconds between SSH keepalives; a host is unreachable after `keepalive_count_max` misses
    keepalive_interval: float = Field(default=10.0, gt=0)
    keepalive_count_max: int = Field(default=3, ge=1)
    connect_timeout: float = Field(default=20.0, gt=0)
    #: short exec channels open at once on the connection (sshd's MaxSessions is 10 by
    #: default; two more are held all along: the follower's and the SFTP session)
    max_channels: int = Field(default=6, ge=1)
    #: seconds between two looks at this host's job logs and exit files where
    #: nothing tells of a change: on the host by its sh follower (or by python3's for
    #: Slurm jobs), over SFTP where no follower runs
    poll_interval: float = Field(default=0.5, gt=0)
    #: what follows the host's jobs: a follower ccd uploads, run by python3 when the
    #: host has it (``auto``) or always by ``python3`` / ``sh``; ``none``: SFTP polling
    follower: Literal["auto", "python3", "sh", "none"] = "auto"
    #: settings for Slurm jobs submitted on this host
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)

    @field_validator("gpus", mode="before")
    @classmethod
    def _device_ids(cls, value: Any) -> Any:
        # `gpus: [0, 1]` is written with numbers; they are device ids, kept as text
        if isinstance(value, list):
            return [str(item) if isinstance(item, int) else item for item in value]
        return value

    @field_validator("gpus")
    @classmethod
    def _gpu_capacity(cls, value: list[str] | int | None) -> list[str] | int | None:
        # the ids are joined by commas into CUDA_VISIBLE_DEVICES: each must be one word
        if isinstance(value, int) and value < 0:
            raise ValueError(f"gpus must be a count of devices or a list of ids, not {value}")
        if isinstance(value, list):
            check_device_ids(value)
        return value

    @field_validator("mem", mode="before")
    @classmethod
    def _mem_size(cls, value: Any) -> Any:
        # checked at load: a bad size would otherwise surface at the first local job;
        # a plain number (`mem: 8192`) is MiB, as in a job's resources
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and parse_mem(value) <= 0:
            raise ValueError(f"mem must be more than 0, not {value!r}")
        return value


class WebSettings(BaseModel):
    """The web dashboard always on: ``web: {listen: 127.0.0.1:8787}``."""

    model_config = ConfigDict(extra="forbid")

    #: ``host:port`` (IPv6 in brackets); ``ccctl ui`` prints the page's link
    listen: str

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen must be host:port, e.g. 127.0.0.1:8787, not {value!r}")
        return value

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class NotifyDelivery(BaseModel):
    """How hard a notification is tried: ``notify_delivery: {attempts: 8, delay: 2}``."""

    model_config = ConfigDict(extra="forbid")

    #: attempts in all for one notification, the first one included
    attempts: int = Field(default=8, ge=1)
    #: seconds before the first retry; each later one waits `backoff` times longer
    delay: float = Field(default=2.0, ge=0)
    backoff: float = Field(default=2.0, ge=1)
    #: the longest wait between two attempts (by default the tries span ~3 minutes)
    max_delay: float = Field(default=60.0, ge=0)
    #: seconds one attempt may take: a webhook's answer, a command's or sendmail's run
    timeout: float = Field(default=10.0, gt=0)


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
    #: OpenSSH client config whose Host aliases ccd can use (default ~/.ssh/config)
    ssh_config: Path | None = None
    #: variables set in the daemon's own environment, which every job inherits
    #: (``ccctl daemon install`` writes them into the unit as ``Environment=`` lines)
    environment: dict[str, str] = Field(default_factory=dict)
    #: the web dashboard, listening from the start (else from the first ``ccctl ui``)
    web: WebSettings | None = None
    #: notifiers of every workflow (ccd.spec.notify), besides a workflow's own
    notify: list[Notifier] = Field(default_factory=list)
    notify_delivery: NotifyDelivery = Field(default_factory=NotifyDelivery)

    @field_validator("notify", mode="before")
    @classmethod
    def _notifiers(cls, value: Any) -> Any:
        # the checks a workflow's notify: gets (load_config reports them with lines)
        notifiers, reports = checked_notify(value, Suggestions(), root=())
        if reports:
            raise ValueError("; ".join(message for _, _, message, _ in reports))
        return notifiers

    def ssh_config_path(self) -> Path:
        return self.ssh_config or Path.home() / ".ssh" / "config"

    def host_config(self, name: str) -> HostConfig:
        return self.hosts.get(name) or HostConfig()

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
        """Host names a workflow may use: localhost, configured hosts, ssh_config aliases."""
        return {"localhost", *self.hosts, *ssh_config_aliases(self.ssh_config_path())}


def ssh_config_aliases(path: Path) -> set[str]:
    """The literal ``Host`` names of an OpenSSH client config (patterns are skipped)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return set()
    names: set[str] = set()
    for line in text.splitlines():
        words = line.strip().replace("=", " ", 1).split()
        if len(words) >= 2 and words[0].lower() == "host":
            names.update(w for w in words[1:] if not any(c in w for c in "*?!"))
    return names


def _describe(err: ValidationError | None, source: Path, more: list[str]) -> str:
    lines = [f"{source}: invalid daemon config", *more]
    fields = {*DaemonConfig.model_fields, *HostConfig.model_fields, *NotifyDelivery.model_fields}
    for item in err.errors() if err is not None else []:
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
    notify = _notify_problems(source, data)
    if notify:  # the rest is still checked, so every problem is told at once
        data = {key: value for key, value in data.items() if key != "notify"}
    try:
        config = DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise CcdError(_describe(exc, source, notify)) from exc
    if notify:
        raise CcdError(_describe(None, source, notify))
    return config


def _notify_problems(source: Path, data: dict[Any, Any]) -> list[str]:
    """The ``notify:`` list's problems, each at its line (as a workflow's are)."""
    if "notify" not in data:
        return []
    _, reports = checked_notify(data["notify"], Suggestions())
    if not reports:
        return []
    from ccd.spec.loader import load_yaml  # only now: positions cost a second parse

    positions = load_yaml(source.read_bytes(), str(source)).positions
    lines = []
    for path, code, message, at_key in reports:
        line, column = positions.key(path) if at_key else positions.value(path)
        lines.append(f"  {Problem(str(source), line, column, code, message)}")
    return lines
