"""The shell text that stages and submits Slurm jobs, run by /bin/sh with a fake sbatch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ccd.executors.slurm.scripts import (
    ARRAY_TASK,
    BATCH,
    Element,
    Probe,
    array_script,
    array_submit_script,
    batch_script,
    heredoc,
    parse_probe,
    probe_command,
    submit_script,
)

#: sbatch's stand-in: prints a job id, like `sbatch --parsable`, and where it ran
FAKE_SBATCH = '#!/bin/sh\necho "42;test"\npwd >&2\n'


def sh(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(FAKE_SBATCH)
    sbatch.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["sh", "-s"], input=script, capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.parametrize(
    "text",
    [
        "plain\n",
        "no newline at the end",
        "$HOME `id` $(id) \\n 'single' \"double\"\n",
        "CCD_EOF_\nEOF\n",
        "",
    ],
)
def test_heredoc_writes_text_verbatim(tmp_path: Path, text: str) -> None:
    target = tmp_path / "a file"
    assert sh(heredoc(str(target), text), tmp_path).returncode == 0
    assert target.read_text() == (text if text.endswith("\n") else text + "\n")


def test_batch_scripts_reset_the_exit_file_then_run_the_wrapper() -> None:
    lines = ["#SBATCH --job-name=n"]
    assert batch_script(lines, "/r/x 1") == (
        "#!/bin/sh\n#SBATCH --job-name=n\n: > '/r/x 1'/exit\nexec sh '/r/x 1'/wrapper.sh\n"
    )
    assert array_script(lines, "/r/a").endswith(
        't="$SLURM_ARRAY_TASK_ID"\n: > /r/a/"$t"/exit\nexec sh /r/a/"$t"/wrapper.sh\n'
    )


def test_submit_script_stages_the_attempt_and_prints_sbatch_s_answer(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "wf" / "j" / "1"
    result = sh(submit_script(str(run_dir), "echo job\n", ["#SBATCH --x"]), tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "42;test\n", f"{run_dir}\n")
    assert (run_dir / "wrapper.sh").read_text() == "echo job\n"
    assert (run_dir / BATCH).read_text() == batch_script(["#SBATCH --x"], str(run_dir))


def test_a_failing_step_stops_the_submission(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")  # mkdir below it fails: sbatch must not run
    result = sh(submit_script(str(tmp_path / "file" / "run"), "true\n", []), tmp_path)
    assert result.returncode != 0 and "42" not in result.stdout


def test_array_submit_script_links_each_task_to_its_element(tmp_path: Path) -> None:
    array_dir = tmp_path / "wf" / "g@array" / "0"
    elements = [Element(str(tmp_path / "wf" / f"g@{i}" / "1"), f"echo {i}\n") for i in (0, 1)]
    result = sh(array_submit_script(str(array_dir), "ccd.wf.g@0.1", elements, []), tmp_path)
    assert (result.returncode, result.stdout) == (0, "42;test\n")
    for task, element in enumerate(elements):
        run_dir = Path(element.run_dir)
        assert (array_dir / str(task)).resolve() == run_dir
        assert (run_dir / "wrapper.sh").read_text() == element.wrapper
        assert (run_dir / ARRAY_TASK).read_text() == f"ccd.wf.g@0.1\n{task}\n"
    assert (array_dir / BATCH).read_text() == array_script([], str(array_dir))


def test_probe_reads_what_a_run_directory_shows(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"

    def probe() -> Probe:
        return parse_probe(sh(probe_command(str(run_dir)), tmp_path).stdout)

    assert probe() == Probe(staged=False, started=False, array_task=None)
    run_dir.mkdir()
    (run_dir / "wrapper.sh").write_text("")
    assert probe() == Probe(staged=True, started=False, array_task=None)
    (run_dir / ARRAY_TASK).write_text("ccd.wf.g@0.1\n7\n")
    (run_dir / "pid").write_text("123\n")
    assert probe() == Probe(staged=True, started=True, array_task=("ccd.wf.g@0.1", 7))
