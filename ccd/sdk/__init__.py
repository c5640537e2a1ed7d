"""The Python API: build workflows in code, and talk to the daemon from a program.

`ccd` itself re-exports `Workflow`, `Client` and `AsyncClient` lazily (see
``ccd/__init__.py``), so ``import ccd`` stays as cheap as ``ccctl`` needs it.
`builder` makes the same plain mapping a workflow file holds and checks it with
the same checker (`origins` says where each part was written); `client` and
`aclient` speak the daemon's API over its Unix socket; `results` holds the typed
answers both return.
"""

from __future__ import annotations
