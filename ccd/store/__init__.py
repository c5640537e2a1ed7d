"""The event store: an append-only SQLite event log and the state folded from it.

`Store` appends every `Event` to the ``events`` table and, in the same
transaction, folds it into the ``workflows`` and ``jobs`` tables, so the
current-state tables are always exactly the fold of the log.  See
`ccd.store.schema` for the tables and the durability settings, and
`ccd.fold` for what each event kind does to the rows.
"""

from __future__ import annotations

from ccd.fold import BadEvent
from ccd.store.core import BATCH_CAP, Store

__all__ = ["BATCH_CAP", "BadEvent", "Store"]
