"""Cache keys (pure): which parts a key has, what changes it, and how `why` says it."""

from __future__ import annotations

from typing import Any

from ccd.caching import LITERAL_MAX, MISSING, cache_key, canonical, changes, digest, key_parts


def parts(**over: Any) -> dict[str, str]:
    return key_parts(**{**_args(), **over})


def test_a_key_leaves_out_what_differs_between_runs_of_the_same_job() -> None:
    names = set(parts())
    assert "variable CCD_OUTPUT_PREP_PATH" in names
    assert not {n for n in names if "WORKFLOW_ID" in n or "ATTEMPT" in n or "CUDA" in n}
    # params are named once, by their declaration, not again as variables
    assert "param epochs" in names and "variable CCD_PARAM_EPOCHS" not in names
    variables = {**_args()["variables"], "CCD_WORKFLOW_ID": "0", "CCD_ATTEMPT": "3"}
    assert cache_key(parts(variables=variables)) == cache_key(parts())


def _args() -> dict[str, Any]:
    return {
        "command": 'exec sh "$CCD_SCRIPT" --lr 0.1',
        "script_digest": digest(b"echo hi\n"),
        "environment": canonical({"venv": None, "modules": ["gcc/12"]}),
        "host": "localhost",
        "executor": "local",
        "workdir": "/data/run",
        "exports": {"LR": "0.1"},
        "variables": {
            "CCD_WORKFLOW_ID": "abcd1234",
            "CCD_ATTEMPT": "1",
            "CCD_OUTPUT_PREP_PATH": "/data/x",
            "CCD_PARAM_EPOCHS": "3",
            "CUDA_VISIBLE_DEVICES": "0",
        },
        "params": {"epochs": 3},
        "inputs": {"/data/in.csv": digest(b"1,2\n")},
        "parents": {"prep": ("k1", {"path": "/data/x"})},
    }


def test_every_thing_a_job_depends_on_changes_its_key() -> None:
    base = cache_key(parts())
    variants = [
        parts(command="exec sh other"),
        parts(script_digest=digest(b"echo bye\n")),
        parts(environment=canonical({"venv": "/v", "modules": ["gcc/12"]})),
        parts(host="gpu1"),
        parts(executor="slurm"),
        parts(workdir="/elsewhere"),
        parts(exports={"LR": "0.2"}),
        parts(params={"epochs": 4}),
        parts(inputs={"/data/in.csv": digest(b"1,3\n")}),
        parts(inputs={"/data/in.csv": None}),
        parts(parents={"prep": ("k2", {"path": "/data/x"})}),
        parts(parents={"prep": ("k1", {"path": "/data/y"})}),
    ]
    keys = {cache_key(v) for v in variants}
    assert base not in keys and len(keys) == len(variants)


def test_short_values_are_kept_long_ones_digested() -> None:
    p = parts(command="x" * (LITERAL_MAX + 1), exports={"LR": "0.1", "NL": "a\nb"})
    assert p["command"].startswith("sha256:") and p["env LR"] == "0.1"
    assert p["env NL"].startswith("sha256:")  # not printable on one line
    assert parts(inputs={"/gone": None})["input /gone"] == MISSING


def test_changes_say_what_differs_most_edited_first() -> None:
    before = parts()
    now = parts(
        script_digest=digest(b"new"),
        params={"epochs": 5},
        inputs={"/data/in.csv": None},
        exports={"LR": "0.1", "SEED": "7"},
        parents={"prep": ("k9", {})},
    )
    assert changes(before, now) == [
        "script changed",
        "param epochs changed: 3 -> 5",
        "input /data/in.csv is missing",
        "env SEED is new (7)",
        "parent prep changed",
    ]
    assert changes(now, now) == []
    assert changes({"param x": "1"}, {}) == ["param x is gone (was 1)"]
    mtimes = changes({"input /a": "size 1 mtime 5"}, {"input /a": "size 1 mtime 6"})
    assert mtimes == ["input /a changed (size or modification time)"]
