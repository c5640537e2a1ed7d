"""Workflow specifications: loading, validation and the typed model (pure, no daemon).

`validate` is the entry point (`load_workflow_file`, `load_workflow_text`) and
`model` the result. On the way: `loader` reads YAML (`quick` and `composer`,
agreeing through `yaml_rules`; `positions` says where things were written),
`cloudmesh` converts cloudmesh-cc files, and `checker` checks the data with
`fields` (one check per job key) and `graph` (parents, cycles), then `build`
makes the model. Nothing here imports the engine, executors, store, API or CLI.
"""

from __future__ import annotations
