"""The node-free pieces of hand_tracker_node: the clock that says when the next image is due,
and the garbage collection it runs between frames."""
from __future__ import annotations

import gc
import math
import weakref

import pytest

from hand_perception.ros.hand_tracker_support import ArrivalClock, BetweenFramesGarbageCollector


def test_next_image_is_expected_one_mean_interval_after_the_last() -> None:
    clock = ArrivalClock(smoothing=0.5)
    assert clock.next_expected_s() == -math.inf  # unknown: no idle time is assumed
    clock.arrived(10.0)
    assert clock.next_expected_s() == -math.inf
    clock.arrived(10.1)
    assert clock.next_expected_s() == pytest.approx(10.2)
    clock.arrived(10.3)  # a late image: the mean interval moves half way (0.1 -> 0.15)
    assert clock.next_expected_s() == pytest.approx(10.45)
    clock.arrived(10.3)  # a repeated arrival time does not shrink the interval to 0
    assert clock.next_expected_s() == pytest.approx(10.45)


@pytest.mark.parametrize("smoothing", [0.0, -0.1, 1.5, math.nan])
def test_smoothing_outside_0_1_is_rejected(smoothing) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        ArrivalClock(smoothing)


class _Node:
    """A container that can sit in a reference cycle and be watched through a weakref."""


@pytest.fixture
def unfrozen():
    """Undo the collector's gc.freeze() so that no other test runs with a frozen heap."""
    yield
    BetweenFramesGarbageCollector.release()


def test_collector_freezes_what_exists_and_collects_young_cycles_after_every_frame(
        unfrozen) -> None:
    collector = BetweenFramesGarbageCollector(full_every=3)
    assert gc.get_freeze_count() > 0
    collections = [stats["collections"] for stats in gc.get_stats()]
    cycle = _Node()
    cycle.self = cycle  # only the cyclic collector can free it
    alive = weakref.ref(cycle)
    del cycle
    assert collector.after_frame() == 0
    assert alive() is None
    assert [collector.after_frame() for _ in range(5)] == [0, 2, 0, 0, 2]
    after = [stats["collections"] for stats in gc.get_stats()]
    assert after[0] - collections[0] >= 4 and after[2] - collections[2] >= 2


def test_collector_full_pass_frees_cycles_that_survived_young_passes(unfrozen) -> None:
    collector = BetweenFramesGarbageCollector(full_every=2)
    cycle = _Node()
    cycle.self = cycle
    alive = weakref.ref(cycle)
    gc.collect(0)  # the cycle is still referenced: it moves to an older generation
    gc.collect(1)
    del cycle
    assert collector.after_frame() == 0
    assert alive() is not None, "a young pass freed an old-generation cycle"
    assert collector.after_frame() == 2
    assert alive() is None


def test_release_lets_the_collector_free_cycles_that_were_frozen(unfrozen) -> None:
    cycle = _Node()
    cycle.self = cycle
    alive = weakref.ref(cycle)
    collector = BetweenFramesGarbageCollector()  # freezes the cycle with everything else
    del cycle
    gc.collect()
    assert alive() is not None, "a frozen cycle was collected"
    collector.release()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("full_every", [0, -1])
def test_collector_rejects_a_full_interval_below_1(full_every) -> None:
    with pytest.raises(ValueError, match="full_every"):
        BetweenFramesGarbageCollector(full_every)
