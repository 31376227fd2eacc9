"""The node-free pieces of hand_tracker_node: the clock that says when the next image is due."""
from __future__ import annotations

import math

import pytest

from hand_perception.ros.hand_tracker_support import ArrivalClock


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
