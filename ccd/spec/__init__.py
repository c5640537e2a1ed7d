"""Workflow specifications: loading, validation and the typed model (pure, no daemon)."""

from __future__ import annotations
