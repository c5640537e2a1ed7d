"""A job's software environment, and the sh lines of its wrapper that set it up (pure).

What a job declares (``venv:``, ``conda:``, ``modules:``, ``container:``,
``setup:``) is merged with what its host declares (`effective`): the job's
venv, conda env and container replace the host's; its setup lines and modules
come after the host's. Anything undeclared is the daemon's own environment.

In the wrapper, inside the job's subshell (so that every message reaches the
job's log), in this order:

1. ``setup:`` lines, the host's then the job's;
2. ``module load`` of the modules, after making sure ``module`` exists (Lmod and
   Environment Modules define it in init scripts that a non-interactive sh has
   not read);
3. with a container, the job's command runs inside it, and 4.–5. run there;
4. the conda env, activated by ``conda shell.posix activate`` (its activate.d
   scripts run, no extra process stands between ccd and the job, output is not
   buffered as with ``conda run``); without conda, a prefix directory is used
   directly (its ``bin`` first on PATH);
5. the venv (``VIRTUAL_ENV`` set, its ``bin`` first on PATH), then the job's
   ``env:``, so that ``PATH: /opt/x/bin:$PATH`` is the last word.

A declared piece that cannot be set up fails the job with exit 127 and a line
starting ``ccd:`` that says what is missing; the job's command does not run.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ccd.config import HostConfig
from ccd.spec.environments import is_conda_prefix
from ccd.spec.model import Job

#: the container runtimes ccd knows, in the order it looks for one
RUNTIMES = ("apptainer", "singularity", "podman", "docker")
#: where Lmod and Environment Modules keep the script that defines ``module`` for sh
MODULE_INIT_SCRIPTS = (
    '"${LMOD_PKG:-/usr/share/lmod/lmod}/init/sh"',
    "/etc/profile.d/lmod.sh",
    '"${MODULESHOME:-/usr/share/modules}/init/sh"',
    "/etc/profile.d/modules.sh",
)


@dataclass(frozen=True, slots=True)
class Environment:
    venv: str | None = None
    conda: str | None = None
    modules: tuple[str, ...] = ()
    container: str | None = None
    runtime: str | None = None
    container_options: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()


NO_ENVIRONMENT = Environment()


def effective(job: Job, host: HostConfig | None) -> Environment:
    """The environment `job` runs in on `host`: the job's declaration over the host's."""
    if host is None:
        host = HostConfig()
    return Environment(
        venv=job.venv or host.venv,
        conda=job.conda or host.conda,
        modules=(*host.modules, *job.modules),
        container=job.container or host.container,
        runtime=host.runtime,
        container_options=tuple(host.container_options),
        setup=(*host.setup, *job.setup),
    )


def declares_environment(host: HostConfig) -> bool:
    """Whether `host`'s jobs get programs from somewhere other than the daemon's PATH."""
    return bool(host.venv or host.conda or host.modules or host.container or host.setup)


def fail(message: str) -> str:
    """A sh line that ends the job's subshell with exit 127 and a ``ccd:`` message."""
    return f"{{ echo {shlex.quote('ccd: ' + message)} >&2; exit 127; }}"


def quoted_path(path: str) -> str:
    """`path` as a sh word, a leading ``~`` kept as the host's ``$HOME``."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def host_lines(env: Environment) -> list[str]:
    """Steps 1–2: what runs on the host itself, before any container."""
    lines = list(env.setup)
    if env.modules:
        names = " ".join(shlex.quote(m) for m in env.modules)
        listed = " ".join(env.modules)
        scripts = " ".join(MODULE_INIT_SCRIPTS)
        lines += [
            "command -v module >/dev/null 2>&1 || for ccd_init in "
            f'{scripts}; do [ -r "$ccd_init" ] && . "$ccd_init" && break; done',
            "command -v module >/dev/null 2>&1 || "
            + fail(
                f"this job loads modules ({listed}), but its host has no 'module' command "
                "(no Lmod or Environment Modules init script was found): add the line "
                "that defines it to the host's setup:"
            ),
            f"module load {names} || " + fail(f"module load {listed} failed"),
        ]
    return lines


def activation_lines(env: Environment, exports: Mapping[str, str]) -> list[str]:
    """Steps 4–5: conda, venv, then the job's ``env:`` (each value one sh word)."""
    lines = _conda_lines(env.conda) if env.conda else []
    if env.venv:
        venv = quoted_path(env.venv)
        lines += [
            f"[ -x {venv}/bin/python ] || "
            + fail(f"venv {env.venv} has no bin/python on this host (create it: python3 -m venv)"),
            f'VIRTUAL_ENV={venv}; export VIRTUAL_ENV; PATH="$VIRTUAL_ENV/bin:$PATH"; export PATH',
            "unset PYTHONHOME",
        ]
    lines += [f"export {name}={word}" for name, word in exports.items()]
    return lines


def _conda_lines(conda: str) -> list[str]:
    target = quoted_path(conda)
    activate = (
        f'ccd_conda=$("${{CONDA_EXE:-conda}}" shell.posix activate {target}) '
        '&& eval "$ccd_conda" || ' + fail(f"conda could not activate {conda}")
    )
    have_conda = 'if [ -n "${CONDA_EXE:-}" ] || command -v conda >/dev/null 2>&1; then'
    if not is_conda_prefix(conda):
        return [
            have_conda,
            f"  {activate}",
            "else",
            "  "
            + fail(
                f"conda: {conda} names an environment, and conda is not on this job's "
                "PATH: load it in the host's setup:, or give the environment's prefix "
                "directory"
            ),
            "fi",
        ]
    return [
        have_conda,
        f"  {activate}",
        f"elif [ -d {target}/conda-meta ]; then",
        f"  CONDA_PREFIX={target}; CONDA_DEFAULT_ENV=$CONDA_PREFIX; "
        'PATH="$CONDA_PREFIX/bin:$PATH"; export CONDA_PREFIX CONDA_DEFAULT_ENV PATH',
        "else",
        "  " + fail(f"conda environment {conda} not found on this host (no conda-meta/)"),
        "fi",
    ]


def container_lines(
    env: Environment,
    *,
    run_dir: str,
    workdir: str,
    passed: Iterable[str],
    read_only: Sequence[str] = (),
) -> list[str]:
    """Step 3: run ``$ccd_inner`` (steps 4–5 and the command) in the container.

    `workdir` and `run_dir` are sh words; `passed` names the variables the job's
    command needs inside (CCD_*, outputs); `read_only` are directories bound
    read-only (a local script's own directory)."""
    assert env.container is not None
    runtimes = (env.runtime,) if env.runtime else RUNTIMES
    lines = [
        "ccd_runtime=",
        f"for ccd_r in {' '.join(runtimes)}; do "
        'command -v "$ccd_r" >/dev/null 2>&1 && { ccd_runtime=$ccd_r; break; }; done',
        '[ -n "$ccd_runtime" ] || '
        + fail(
            f"this job runs in the container {env.container}, but none of "
            f"{', '.join(runtimes)} is on its host's PATH: install one, or load it "
            "with modules: or the host's setup:"
        ),
        "export ccd_command",
    ]
    image = shlex.quote(env.container)
    options = "".join(f" {shlex.quote(o)}" for o in env.container_options)
    apptainer_binds = f"--bind {run_dir} --bind {workdir}" + "".join(
        f" --bind {shlex.quote(path)}:{shlex.quote(path)}:ro" for path in read_only
    )
    oci_binds = f"-v {run_dir}:{run_dir} -v {workdir}:{workdir}" + "".join(
        f" -v {shlex.quote(path)}:{shlex.quote(path)}:ro" for path in read_only
    )
    variables = "".join(f" -e {name}" for name in sorted({*passed, "ccd_command"}))
    lines += [
        'case "$ccd_runtime" in',
        "  apptainer|singularity)",
        f'    exec "$ccd_runtime" exec {apptainer_binds} --pwd {workdir}{options} {image} '
        'sh -c "$ccd_inner" ;;',
        "  *)",
        # --init: a process that forwards the TERM of a cancel to the job (sh as the
        # container's pid 1 would ignore it); the host's network, as a job has outside
        f'    exec "$ccd_runtime" run --rm --init --network=host {oci_binds} -w {workdir}'
        f'{variables}{options} {image} sh -c "$ccd_inner" ;;',
        "esac",
    ]
    return lines


def script_directory(script: str | None, run_dir: str) -> list[str]:
    """The directory a container must see the job's script in, unless it is in `run_dir`."""
    if script is None:
        return []
    directory = posixpath.dirname(script)
    return [] if directory == run_dir else [directory]
