"""The daemon's own environment: the config's ``environment:`` block, applied once.

Every local job inherits the daemon's environment, so the block is applied to
the daemon itself at start-up, before any job starts: one place for ``ccd run``,
an autostart by ``ccctl`` and the systemd service alike.

Under systemd the unit ``ccctl daemon install`` wrote already sets the block's
values (expanded when it was written, since systemd's ``Environment=`` expands
nothing).  Applying ``PATH: /opt/x/bin:$PATH`` again would put /opt/x/bin on PATH
twice, so the unit also sets `MARKER` to the block's `digest`, and the daemon skips
a block whose digest the environment already carries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from ccd.errors import CcdError
from ccd.expand import expand

#: set by the unit to the digest of the block its Environment= lines came from
MARKER = "CCD_ENVIRONMENT_DIGEST"


#: what a variable's name may be: what sh, os.environ and systemd all accept
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check(block: Mapping[str, str]) -> None:
    """Refuse names and values no environment can hold, before the daemon starts or
    a unit is written (os.environ and systemd would refuse them later, less clearly)."""
    for name, text in block.items():
        if not _NAME.fullmatch(name):
            raise CcdError(
                f"daemon config: environment: invalid variable name {name!r}: use "
                "letters, digits and _, not starting with a digit"
            )
        if "\0" in text:
            raise CcdError(f"daemon config: environment: {name}'s value contains a NUL")


def digest(block: Mapping[str, str]) -> str:
    """A short fingerprint of the block, names and values in their order."""
    text = json.dumps(list(block.items()), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(block: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The values the block's variables get, in the block's order: each value's
    ``$NAME`` is read from `environ` as the entries before it have changed it, so
    ``PATH: /opt/x/bin:$PATH`` prefixes the PATH there is (see `ccd.expand`)."""
    resolved: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return resolved[name] if name in resolved else environ.get(name)

    for name, text in block.items():
        resolved[name] = expand(text, lookup)
    return resolved


@dataclass(frozen=True)
class Applied:
    #: the variables the block names, in its order
    names: list[str]
    #: False: the unit had set them already (its digest matched)
    changed: bool
    #: the unit's Environment= lines came from another block (config edited since)
    stale_unit: bool = False


def apply(block: Mapping[str, str], environ: MutableMapping[str, str]) -> Applied:
    """Set the block's variables in `environ` (the daemon's ``os.environ``), unless
    the unit that started the daemon set these very values already."""
    check(block)
    written_from = environ.pop(MARKER, None)  # the unit's note, not for jobs
    names = list(block)
    if written_from is not None and written_from == digest(block):
        return Applied(names, changed=False)
    environ.update(resolve(block, environ))
    return Applied(names, changed=bool(block), stale_unit=written_from is not None)
