"""A job's declared environment, set up by the wrapper and run by a real /bin/sh.

Real venvs (made by the test, without pip), conda-less fallbacks, a ``conda``
and a ``module`` that are small shell fixtures (the real ones are not installed
here), and a container runtime stand-in that records its command line (the real
podman run is in tests/integration/test_container.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccd.config import HostConfig
from ccd.executors.environment import Environment, effective
from ccd.executors.wrapper import render_wrapper
from ccd.expand import shell_word
from ccd.spec.model import Job

BASE_PATH = "/usr/bin:/bin"


def run_job(
    tmp_path: Path,
    command: str,
    environment: Environment,
    *,
    exports: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    path: str = BASE_PATH,
    extra: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run one wrapper; its exit code and log."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    script = render_wrapper(
        run_dir=str(run_dir),
        workdir=str(tmp_path),
        env=env or {},
        command=command,
        environment=environment,
        exports=exports,
    )
    (run_dir / "wrapper.sh").write_text(script)
    process_env = {"PATH": path, "HOME": str(tmp_path), **(extra or {})}
    subprocess.run(
        ["/bin/sh", str(run_dir / "wrapper.sh")], env=process_env, timeout=60, check=False
    )
    return int((run_dir / "exit").read_text()), (run_dir / "log").read_text()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("venvs") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def test_a_venv_is_activated_for_the_job(tmp_path: Path, venv: Path) -> None:
    code, log = run_job(
        tmp_path, "command -v python; echo $VIRTUAL_ENV", Environment(venv=str(venv))
    )
    assert (code, log) == (0, f"{venv}/bin/python\n{venv}\n")


def test_env_path_is_expanded_after_the_venv_so_it_has_the_last_word(
    tmp_path: Path, venv: Path
) -> None:
    exports = {"PATH": shell_word("/opt/x/bin:$PATH"), "HOME_TOO": shell_word("${HOME}/d $1")}
    code, log = run_job(
        tmp_path, 'echo "$PATH"; echo "$HOME_TOO"', Environment(venv=str(venv)), exports=exports
    )
    assert (code, log) == (0, f"/opt/x/bin:{venv}/bin:{BASE_PATH}\n{tmp_path}/d $1\n")


def test_a_venv_missing_on_the_host_fails_the_job_before_its_command(tmp_path: Path) -> None:
    code, log = run_job(tmp_path, "echo ran", Environment(venv=str(tmp_path / "nope")))
    assert code == 127
    assert f"ccd: venv {tmp_path / 'nope'} has no bin/python on this host" in log
    assert "ran" not in log


def conda_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "envs" / "ml"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "bin").mkdir()
    tool = prefix / "bin" / "mltool"
    tool.write_text("#!/bin/sh\necho mltool from ml\n")
    tool.chmod(0o755)
    return prefix


def test_a_conda_prefix_is_used_directly_without_conda(tmp_path: Path) -> None:
    prefix = conda_prefix(tmp_path)
    code, log = run_job(tmp_path, 'mltool; echo "$CONDA_PREFIX"', Environment(conda=str(prefix)))
    assert (code, log) == (0, f"mltool from ml\n{prefix}\n")


def test_a_conda_name_without_conda_says_what_to_do(tmp_path: Path) -> None:
    code, log = run_job(tmp_path, "echo ran", Environment(conda="ml"))
    assert code == 127
    assert "ccd: conda: ml names an environment, and conda is not on this job's PATH" in log
    assert "ran" not in log


def test_conda_activates_through_its_shell_hook_when_it_is_there(tmp_path: Path) -> None:
    # a stand-in for conda that answers `conda shell.posix activate NAME` as conda does
    fake = tmp_path / "bin" / "conda"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\n[ "$1 $2" = "shell.posix activate" ] || exit 2\n'
        'echo "export CONDA_DEFAULT_ENV=$3; export ACTIVATED_BY_HOOK=yes"\n'
    )
    fake.chmod(0o755)
    code, log = run_job(
        tmp_path,
        'echo "$CONDA_DEFAULT_ENV $ACTIVATED_BY_HOOK"',
        Environment(conda="ml"),
        path=f"{fake.parent}:{BASE_PATH}",
    )
    assert (code, log) == (0, "ml yes\n")


def modules_home(tmp_path: Path) -> Path:
    """An Lmod stand-in: init/sh defines `module` as a shell function, as Lmod's does."""
    home = tmp_path / "lmod"
    (home / "init").mkdir(parents=True)
    (home / "init" / "sh").write_text(
        "module() {\n"
        '  [ "$1" = load ] || return 2; shift\n'
        '  for m in "$@"; do [ "$m" = missing ] && { echo "no module $m" >&2; return 1; }; done\n'
        '  LOADED="${LOADED:+$LOADED }$*"; export LOADED\n'
        "}\n"
    )
    return home


def test_modules_are_loaded_after_finding_the_module_command(tmp_path: Path) -> None:
    extra = {"LMOD_PKG": str(modules_home(tmp_path))}
    environment = Environment(modules=("gcc/12", "cuda"), setup=("echo setup first",))
    code, log = run_job(tmp_path, 'echo "loaded: $LOADED"', environment, extra=extra)
    assert (code, log) == (0, "setup first\nloaded: gcc/12 cuda\n")


def test_a_failing_module_load_fails_the_job(tmp_path: Path) -> None:
    extra = {"LMOD_PKG": str(modules_home(tmp_path))}
    code, log = run_job(tmp_path, "echo ran", Environment(modules=("missing",)), extra=extra)
    assert code == 127
    assert "no module missing\nccd: module load missing failed\n" in log


def test_modules_on_a_host_without_module_say_so(tmp_path: Path) -> None:
    code, log = run_job(tmp_path, "echo ran", Environment(modules=("gcc",)))
    assert code == 127
    assert "ccd: this job loads modules (gcc), but its host has no 'module' command" in log


def fake_runtime(tmp_path: Path, name: str) -> Path:
    """A stand-in runtime: records its arguments, then runs the job's sh -c text."""
    bin_dir = tmp_path / "rt"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$ARGS_FILE"\n'
        'for a in "$@"; do last=$a; done\nexec sh -c "$last"\n'
    )
    tool.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("runtime", ["podman", "apptainer"])
def test_a_container_job_runs_through_the_runtime_with_its_directories_bound(
    tmp_path: Path, venv: Path, runtime: str
) -> None:
    bin_dir = fake_runtime(tmp_path, runtime)
    args_file = tmp_path / "args"
    environment = Environment(
        container="img:1", venv=str(venv), runtime=runtime, container_options=("--x",)
    )
    code, log = run_job(
        tmp_path,
        'echo "$VIRTUAL_ENV $CCD_JOB $E"',
        environment,
        env={"CCD_JOB": "j"},
        exports={"E": shell_word("e")},
        path=f"{bin_dir}:{BASE_PATH}",
        extra={"ARGS_FILE": str(args_file)},
    )
    assert (code, log) == (0, f"{venv} j e\n")
    args = args_file.read_text().split("\0")[:-1]
    run_dir, work = str(tmp_path / "run"), str(tmp_path)
    if runtime == "podman":
        assert args[:3] == ["run", "--rm", "--init"]
        assert ["-v", f"{run_dir}:{run_dir}", "-v", f"{work}:{work}", "-w", work] == args[4:10]
        assert args[10:14] == ["-e", "CCD_JOB", "-e", "ccd_command"]
    else:
        assert args[:5] == ["exec", "--bind", run_dir, "--bind", work]
        assert args[5:7] == ["--pwd", work]
    assert args[-5:-2] == ["--x", "img:1", "sh"]  # options, then the image, then sh -c
    # the venv is activated inside the container, after the runtime started
    assert "VIRTUAL_ENV=" in args[-1]


def test_a_container_without_a_runtime_says_which_were_looked_for(tmp_path: Path) -> None:
    nothing = tmp_path / "empty"
    nothing.mkdir()  # a PATH without any runtime (this machine may have podman)
    code, log = run_job(tmp_path, "echo ran", Environment(container="img:1"), path=str(nothing))
    assert code == 127
    assert "none of apptainer, singularity, podman, docker is on its host's PATH" in log


def test_the_jobs_declaration_wins_and_lists_follow_the_hosts() -> None:
    host = HostConfig(venv="/h/venv", modules=["gcc"], setup=["host line"], runtime="podman")
    job = Job(name="j", run="x", workdir="/", venv="/j/venv", modules=["cuda"], setup=["job line"])
    assert effective(job, host) == Environment(
        venv="/j/venv",
        modules=("gcc", "cuda"),
        runtime="podman",
        setup=("host line", "job line"),
    )
    plain = Job(name="p", run="x", workdir="/")
    assert effective(plain, host).venv == "/h/venv"
    assert effective(plain, None) == Environment()


def test_no_declaration_leaves_the_daemons_environment_alone(tmp_path: Path) -> None:
    code, log = run_job(tmp_path, 'echo "$PATH"', Environment())
    assert (code, log) == (0, f"{BASE_PATH}\n")
