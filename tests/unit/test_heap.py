"""ccd.heap: the collector is off inside any pause and on again after the last."""

from __future__ import annotations

import gc

from ccd.heap import gc_paused


def test_nested_pauses_enable_the_collector_only_at_the_end() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failing_block_still_enables_the_collector() -> None:
    try:
        with gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
