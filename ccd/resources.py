"""Local resource slots, the pure part: sizes, a job's request, a host's capacity, the ledger.

A local job's ``resources: {gpus: N, cpus: N, mem: SIZE}`` is held against what
``hosts.localhost`` declares (``gpus: [0, 1]`` or a count, ``cpus``, ``mem``).  This
module parses both sides and keeps the books; the waiting (asyncio) is in
`ccd.engine.pool`.  A size is a number with an optional binary unit K, M, G or T
(``512M``, ``8G``, ``1.5T``; a trailing ``B`` or ``iB`` is allowed); a plain number is
MiB, as in Slurm's ``--mem``.  A kind the host does not declare is not limited.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIB = 1024**2
_UNITS = {"K": 1024, "M": MIB, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[KMGT])?(?:I?B)?", re.IGNORECASE)


class ResourceError(ValueError):
    """A size or count that is not one; the message says what was expected."""


def parse_mem(value: object) -> int:
    """A memory size in bytes: ``512M``, ``8G``, ``1.5T``; a plain number is MiB."""
    if isinstance(value, bool):
        raise ResourceError(f"mem must be a size such as 512M or 8G, not {value!r}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ResourceError(f"mem must not be negative, not {value!r}")
        return math.ceil(value * MIB)
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ResourceError(
            f"mem must be a size such as 512M, 8G or 1.5T (a plain number is MiB), not {value!r}"
        )
    unit = match["unit"]
    scale = _UNITS[unit.upper()] if unit else MIB
    return math.ceil(float(match["number"]) * scale)


def format_mem(size: int) -> str:
    """A byte count the way it is written in a config: ``8G``, ``1.5T``, ``512M``."""
    for unit in "TGM":
        scaled = size / _UNITS[unit]
        if scaled >= 1 and (scaled * 10).is_integer():
            return f"{scaled:g}{unit}"
    return f"{size}B"


def parse_count(value: object, kind: str) -> int:
    """A whole, non-negative number of GPUs or CPUs (``2`` or ``"2"``)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ResourceError(f"{kind} must be a whole number of devices or cores, not {value!r}")
    return value


def device_ids(gpus: Sequence[str] | int | None) -> tuple[str, ...] | None:
    """A host's GPU device ids: as listed, or ``0..N-1`` for a count; None: not declared."""
    if gpus is None:
        return None
    if isinstance(gpus, int):
        return tuple(str(i) for i in range(gpus))
    return tuple(gpus)


def check_device_ids(ids: Sequence[str]) -> None:
    """Device ids end up joined by commas in CUDA_VISIBLE_DEVICES: no empty, comma or twice."""
    for device in ids:
        if not device.strip() or "," in device or any(c.isspace() for c in device):
            raise ResourceError(f"a GPU device id must be one word without commas, not {device!r}")
    if len(set(ids)) != len(ids):
        raise ResourceError(f"GPU device ids are listed twice: {list(ids)}")


@dataclass(frozen=True, slots=True)
class Amounts:
    """GPUs, CPU cores and bytes of memory (a job's request, or what is free)."""

    gpus: int = 0
    cpus: int = 0
    mem: int = 0

    def __bool__(self) -> bool:
        return bool(self.gpus or self.cpus or self.mem)

    def describe(self) -> str:
        parts = [f"gpus: {self.gpus}"] if self.gpus else []
        parts += [f"cpus: {self.cpus}"] if self.cpus else []
        parts += [f"mem: {format_mem(self.mem)}"] if self.mem else []
        return ", ".join(parts)


def requested(resources: Mapping[str, Any]) -> Amounts:
    """What a job's ``resources:`` asks of a local host; raises ResourceError."""
    return Amounts(
        gpus=parse_count(resources.get("gpus") or 0, "gpus"),
        cpus=parse_count(resources.get("cpus") or 0, "cpus"),
        mem=parse_mem(resources.get("mem") or 0),
    )


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a host declares; None: that kind is not limited there."""

    devices: tuple[str, ...] | None = None
    cpus: int | None = None
    mem: int | None = None

    @classmethod
    def of(cls, gpus: Sequence[str] | int | None, cpus: int | None, mem: str | None) -> Capacity:
        return cls(device_ids(gpus), cpus, None if mem is None else parse_mem(mem))

    def limited(self, amounts: Amounts) -> Amounts:
        """The part of a request this host counts (undeclared kinds are free for all)."""
        return Amounts(
            gpus=amounts.gpus if self.devices is not None else 0,
            cpus=amounts.cpus if self.cpus is not None else 0,
            mem=amounts.mem if self.mem is not None else 0,
        )

    def total(self) -> Amounts:
        return Amounts(gpus=len(self.devices or ()), cpus=self.cpus or 0, mem=self.mem or 0)

    def beyond(self, amounts: Amounts) -> list[tuple[str, str, str]]:
        """The (kind, asked, declared) of each kind a request can never get here."""
        limited, total = self.limited(amounts), self.total()
        over = []
        if limited.gpus > total.gpus:
            over.append(("gpus", str(limited.gpus), str(total.gpus)))
        if limited.cpus > total.cpus:
            over.append(("cpus", str(limited.cpus), str(total.cpus)))
        if limited.mem > total.mem:
            over.append(("mem", format_mem(limited.mem), format_mem(total.mem)))
        return over


class Ledger:
    """What is free on one host, and which GPU devices; every change goes through here."""

    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self._devices = capacity.devices or ()
        #: free device ids, in the host's order (a job gets the first free ones)
        self._free_devices: list[str] = list(self._devices)
        total = capacity.total()
        self._cpus = total.cpus
        self._mem = total.mem

    @property
    def free(self) -> Amounts:
        return Amounts(len(self._free_devices), self._cpus, self._mem)

    def fits(self, amounts: Amounts, reserved: Amounts) -> bool:
        """Whether `amounts` fits in what is free beyond `reserved` (earlier waiters')."""
        free = self.free
        # a kind the request does not touch may be over-reserved: it does not matter
        return (
            (not amounts.gpus or amounts.gpus <= free.gpus - reserved.gpus)
            and (not amounts.cpus or amounts.cpus <= free.cpus - reserved.cpus)
            and (not amounts.mem or amounts.mem <= free.mem - reserved.mem)
        )

    def exhausted(self, reserved: Amounts) -> bool:
        """Nothing is left beyond `reserved` of any kind the host counts: no later
        waiter can fit (each one asks for some of a counted kind)."""
        cap, free = self.capacity, self.free
        return (
            (cap.devices is None or free.gpus - reserved.gpus <= 0)
            and (cap.cpus is None or free.cpus - reserved.cpus <= 0)
            and (cap.mem is None or free.mem - reserved.mem <= 0)
        )

    def take(self, amounts: Amounts) -> tuple[str, ...]:
        """Take `amounts` (it must fit); the GPU device ids it holds."""
        devices = tuple(self._free_devices[: amounts.gpus])
        del self._free_devices[: amounts.gpus]
        self._cpus -= amounts.cpus
        self._mem -= amounts.mem
        return devices

    def claim(self, amounts: Amounts, devices: Sequence[str] | None) -> tuple[str, ...]:
        """Take what a running attempt holds already (adopted after a restart): its
        recorded devices (None: not recorded, the first free ones), even beyond what
        is free, since the attempt runs whatever the books say."""
        held = tuple(self._free_devices[: amounts.gpus] if devices is None else devices)
        self._free_devices = [d for d in self._free_devices if d not in held]
        self._cpus -= amounts.cpus
        self._mem -= amounts.mem
        return held

    def give(self, amounts: Amounts, devices: Sequence[str]) -> None:
        """Give back what `take` or `claim` took."""
        self._cpus += amounts.cpus
        self._mem += amounts.mem
        back = set(devices).union(self._free_devices)
        # in the host's order again; an id the host no longer declares is dropped
        self._free_devices = [d for d in self._devices if d in back]


def plus(a: Amounts, b: Amounts) -> Amounts:
    return Amounts(a.gpus + b.gpus, a.cpus + b.cpus, a.mem + b.mem)
