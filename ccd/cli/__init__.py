"""``ccctl``: the thin command-line client of the ccd daemon."""

from __future__ import annotations
