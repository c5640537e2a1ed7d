"""The event store: an append-only SQLite event log and the state folded from it.

`Store` appends every `Event` to the ``events`` table and, in the same
transaction, folds it into the ``workflows`` and ``jobs`` tables, so the
current-state tables are always exactly the fold of the log.  See
`ccd.store.schema` for the tables and the durability settings, and
`ccd.store.fold` for what each event kind does to the rows.
"""

from __future__ import annotations

from ccd.store.core import BATCH_CAP, Store
from ccd.store.fold import BadEvent

__all__ = ["BATCH_CAP", "BadEvent", "Store"]
