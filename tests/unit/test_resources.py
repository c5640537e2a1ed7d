"""The pure part of local resource slots (#18 A4): sizes, requests, capacity, the ledger,
and the host config's checks of what it declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccd.config import load_config
from ccd.errors import CcdError
from ccd.resources import (
    Amounts,
    Capacity,
    Ledger,
    ResourceError,
    format_mem,
    parse_count,
    parse_mem,
    requested,
)

M, G = 1024**2, 1024**3


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512M", 512 * M),
        ("8G", 8 * G),
        ("8g", 8 * G),
        ("8GB", 8 * G),
        ("8GiB", 8 * G),
        ("1.5T", 1536 * G),
        ("0.5G", 512 * M),
        ("100K", 100 * 1024),
        ("2048", 2 * G),  # a plain number is MiB, as in Slurm's --mem
        (2048, 2 * G),
        (" 4G ", 4 * G),
        ("0", 0),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_mem(text) == size


@pytest.mark.parametrize("bad", ["", "G", "8X", "8 GB extra", "-1G", "1e3", True, None, [8], -5])
def test_bad_sizes_say_what_a_size_is(bad: object) -> None:
    with pytest.raises(ResourceError, match="mem must"):
        parse_mem(bad)


@pytest.mark.parametrize(("size", "text"), [(8 * G, "8G"), (1536 * G, "1.5T"), (4097 * M, "4097M")])
def test_sizes_are_shown_as_written(size: int, text: str) -> None:
    assert format_mem(size) == text


def test_counts() -> None:
    assert parse_count(2, "gpus") == parse_count("2", "gpus") == 2
    for bad in (-1, 1.5, "a100:2", True):
        with pytest.raises(ResourceError, match="gpus must be a whole number"):
            parse_count(bad, "gpus")


def test_a_request_counts_only_what_the_host_declares() -> None:
    capacity = Capacity.of([], None, "8G")
    asked = requested({"gpus": 2, "cpus": 4, "mem": "1G", "partition": "gpu"})
    assert asked == Amounts(gpus=2, cpus=4, mem=G)
    # an empty device list is declared (no GPUs here); cpus are not declared
    assert capacity.limited(asked) == Amounts(gpus=2, cpus=0, mem=G)
    assert capacity.beyond(asked) == [("gpus", "2", "0")]
    assert Capacity.of(3, 4, None).devices == ("0", "1", "2")


def test_the_ledger_hands_out_devices_in_order_and_takes_them_back() -> None:
    ledger = Ledger(Capacity.of(["a", "b", "c"], 8, None))
    assert ledger.take(Amounts(gpus=2, cpus=2)) == ("a", "b")
    assert ledger.take(Amounts(gpus=1)) == ("c",)
    assert ledger.free == Amounts(0, 6, 0)
    ledger.give(Amounts(gpus=1, cpus=1), ["b"])
    assert ledger.take(Amounts(gpus=1)) == ("b",)
    # an adopted attempt holds its recorded devices again, even past what is free
    ledger.give(Amounts(gpus=1), ["a"])
    assert ledger.claim(Amounts(gpus=1, cpus=9), ["a"]) == ("a",)
    assert ledger.free == Amounts(0, -2, 0)
    assert not ledger.fits(Amounts(cpus=1), Amounts())
    # a kind a request does not touch may be over-reserved by earlier waiters
    ledger.give(Amounts(cpus=9), [])
    assert ledger.fits(Amounts(cpus=1), Amounts(gpus=5))


@pytest.mark.parametrize(
    ("localhost", "message"),
    [
        ("{mem: 8X}", "hosts.localhost.mem: Value error, mem must be a size such as 512M"),
        ("{mem: 0}", "mem must be more than 0"),
        ("{gpus: [0, 0]}", "GPU device ids are listed twice"),
        ("{gpus: ['0,1']}", "a GPU device id must be one word without commas"),
        ("{gpus: -1}", "gpus must be a count of devices or a list of ids"),
    ],
)
def test_the_host_config_checks_what_it_declares(
    tmp_path: Path, localhost: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"hosts:\n  localhost: {localhost}\n")
    with pytest.raises(CcdError, match=message):
        load_config(path)


def test_the_host_config_accepts_ids_counts_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("hosts:\n  localhost: {gpus: [0, 3], cpus: 16, mem: 64G}\n  box: {mem: 4096}\n")
    config = load_config(path)
    assert config.hosts["localhost"].gpus == ["0", "3"]
    assert config.hosts["box"].mem == "4096"
