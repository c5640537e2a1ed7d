"""ccd: a workflow coordinator for local, SSH and Slurm jobs.

``from ccd import Workflow, Client, AsyncClient`` is the Python API (`ccd.sdk`).
The names are looked up on first use (PEP 562 `__getattr__`), not imported here:
every ``ccctl`` run imports this package, and must not pay for pydantic, the
checker or httpx to print a status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "Workflow", "__version__"]

#: public name -> the module that defines it
_LAZY = {
    "Workflow": "ccd.sdk.builder",
    "Client": "ccd.sdk.client",
    "AsyncClient": "ccd.sdk.aclient",
}

if TYPE_CHECKING:
    from ccd.sdk.aclient import AsyncClient
    from ccd.sdk.builder import Workflow
    from ccd.sdk.client import Client


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ccd' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once; later look-ups are plain attributes
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
