"""The SSH executor: the job protocol on a remote host, over one asyncssh connection."""

from __future__ import annotations

from ccd.executors.ssh.executor import SshExecutor

__all__ = ["SshExecutor"]
