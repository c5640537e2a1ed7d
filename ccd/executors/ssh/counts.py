"""What one host's link asked of it and got from it: shown by ``GET /v1/hosts/NAME/link``
and read by the tests (log bytes that came with no SFTP read, launches per exec)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Counts:
    #: SFTP requests (stat, open, read, write, rename, close, …)
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
