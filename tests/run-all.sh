#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite exactly as CI does:
# ruff, mypy, then pytest (unit, integration against a real daemon, e2e of ccctl).
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use for real: Graphviz (ccctl graph), tmux (the live view),
# systemd-analyze (offline check of the user unit), sshd (SSH executor), ip (netns faults),
# a single-node Slurm with munge (Slurm executor, tests/slurm.py), and its accounting:
# slurmdbd on MariaDB (the sacct path, tests/slurmdbd.py); podman with runc and catatonit
# (its --init) runs container: jobs in an image made from busybox (test_container.py).
# chromium and its chromedriver: the dashboard's browser tests (tests/e2e/test_ui_browser.py),
# never a browser a tool downloads.
packages=(graphviz tmux systemd openssh-server iproute2 slurmctld slurmd slurm-client munge
  slurmdbd mariadb-server podman runc catatonit busybox-static chromium chromium-driver)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "== missing system packages: ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi

echo "== installing ccd with its test dependencies"
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'

echo "== ruff"
python3 -m ruff check ccd tests bench
python3 -m ruff format --check ccd tests bench
echo "== mypy"
python3 -m mypy
echo "== pytest"
# Four workers on two cores: the slow tests wait (Slurm's one-minute time limits, a
# cut network link, keepalives), so the suite is bound by waiting, not by CPU; each
# worker has its own Slurm cluster slot, sshd ports and namespaces (tests/slurm.py,
# tests/sshd.py, tests/netns.py).  worksteal keeps the long tests from queueing on one
# worker.  -p no:benchmark: a pytest-benchmark left installed refuses to run under xdist.
python3 -m pytest -n 4 --dist worksteal -p no:benchmark "$@"

echo "== pytest, every platform fallback forced (CCD_PLATFORM_FALLBACKS=all)"
# The paths macOS and other platforms take (polled exits, re-read logs, psutil's
# process table), run for real here: the local executor, recovery and chaos tests
# again, whose guarantees (exactly-once across kill -9, tree-kill on cancel and
# timeout, every log byte) must hold with them too.  ~2 minutes.
# test_local_platform checks first that the daemons did take the fallbacks.
CCD_PLATFORM_FALLBACKS=all python3 -m pytest -n 4 --dist worksteal -p no:benchmark "$@" \
  tests/integration/test_local_platform.py tests/unit/test_local_executor.py \
  tests/integration/test_recovery.py tests/integration/test_chaos.py \
  tests/integration/test_sigterm.py tests/integration/test_workflows.py \
  tests/integration/test_api.py::test_log_from_an_offset_and_events_as_sse \
  tests/integration/test_api.py::test_progress_is_still_seen_after_a_logs_f_of_the_job_ends \
  tests/e2e/test_ccctl.py::test_logs_and_logs_follow
