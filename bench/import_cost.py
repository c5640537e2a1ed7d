"""Import cost of the Python API: ``import ccd`` against ``python -c pass``.

Every ``ccctl`` run imports the ``ccd`` package, and so does every program that
uses the API; ``from ccd import Workflow, Client, AsyncClient`` looks the names up
lazily (``ccd/__init__.py``).  Each statement runs in a fresh interpreter, as a
shell starts one; the statements take turns, `--runs` times (median), so a noisy
machine slows all of them alike.  The target of issue #13: ``import ccd`` within
50 ms of the bare interpreter.  Each run also lists which of the daemon's heavy
modules (FastAPI, uvicorn, asyncssh, httpx, pydantic) the statement loaded: the
client path must load none of the first four.

    python bench/import_cost.py [--quick] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Row, print_rows

#: what a statement must not load when it is on the client path
HEAVY = ("fastapi", "uvicorn", "asyncssh", "httpx", "pydantic")
#: the target: ``import ccd`` at most this much slower than ``python -c pass``
BUDGET = 0.050

#: (label, statement, modules it must not load)
STATEMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("python -c pass", "pass", ()),
    ("import ccd", "import ccd", HEAVY),
    (
        "from ccd import Client",
        "from ccd import Client",
        ("fastapi", "uvicorn", "asyncssh", "httpx"),
    ),
    ("from ccd import Workflow", "from ccd import Workflow", ("fastapi", "uvicorn", "asyncssh")),
    (
        "from ccd import AsyncClient",
        "from ccd import AsyncClient",
        ("fastapi", "uvicorn", "asyncssh"),
    ),
)

_REPORT = "import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"


def wall(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT)
    return time.perf_counter() - start


def loaded(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter has after `statement`."""
    out = subprocess.run(
        [sys.executable, "-c", f"{statement}\n{_REPORT}"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def measure(runs: int) -> list[Row]:
    times: dict[str, list[float]] = {label: [] for label, _, _ in STATEMENTS}
    for _ in range(runs):
        for label, statement, _ in STATEMENTS:
            times[label].append(wall(statement))
    bare = statistics.median(times["python -c pass"])
    rows = [Row("import: python -c pass (baseline), wall", "", f"{bare * 1000:.1f} ms")]
    for label, statement, forbidden in STATEMENTS[1:]:
        median = statistics.median(times[label])
        heavy = sorted(loaded(statement) & set(HEAVY))
        bad = sorted(set(heavy) & set(forbidden))
        extra = f"{(median - bare) * 1000:+.1f} ms"
        target = f"≤ +{BUDGET * 1000:.0f} ms" if label == "import ccd" else ""
        met: bool | None = None
        if label == "import ccd":
            met = median - bare <= BUDGET and not bad
        elif bad:
            met = False
        rows.append(
            Row(
                f"import: {label}, wall (loads {', '.join(heavy) or 'none of them'})",
                target,
                f"{median * 1000:.1f} ms ({extra})",
                f"{bare * 1000:.1f} ms (python -c pass)",
                "",
                met,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--runs", type=int, default=None, help="runs of each statement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 21)
    rows = measure(runs)
    if args.json:
        print_rows(rows, True)
        return
    print(
        f"{runs} runs of each statement, median wall time of a fresh interpreter; "
        f"heavy modules: {', '.join(HEAVY)}"
    )
    print_rows(rows, False)


if __name__ == "__main__":
    main()
