"""What one host's link asked of it and got from it: shown by ``GET /v1/hosts/NAME/link``
and read by the tests (log bytes that came with no SFTP read, launches per exec)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Counts:
    #: SFTP requests sent (each stat, open, read, write, mkdir, rename, close)
    sftp: int = 0
    #: exec channels opened (commands, launch batches, followers)
    execs: int = 0
    #: exec channels that launched jobs, and the jobs they launched
    launch_execs: int = 0
    launched: int = 0
    #: followers started, the frames they sent, the log bytes in them
    followers: int = 0
    frames: int = 0
    streamed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_sftp_requests(sftp: object, counts: Counts) -> None:
    """Count every request `sftp` (an asyncssh SFTPClient) sends from now on.

    asyncssh has no public hook for it: its client handler sends every request,
    pipelined reads and writes of uploads included, through one method, which is
    wrapped here.  If a later asyncssh lacks it, nothing is counted (and the test
    that expects SFTP polling to show in the count fails, rather than every
    "no SFTP request" test passing for nothing).
    """
    handler = getattr(sftp, "_handler", None)
    send = getattr(handler, "_send_request", None)
    if handler is None or not callable(send):
        return

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts.sftp += 1
        return send(*args, **kwargs)

    handler._send_request = counted
