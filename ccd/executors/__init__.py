"""Executors run one job attempt on one kind of host through the job protocol."""

from __future__ import annotations
