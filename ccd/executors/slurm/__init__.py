"""The Slurm executor: the job-protocol wrapper as a batch script, polled in batches."""

from __future__ import annotations
