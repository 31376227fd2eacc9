"""Bimanual retargeting: one :class:`Retargeter` per side, fed by handedness and track id."""
from __future__ import annotations

import dataclasses
import logging
from typing import Dict, Optional, Sequence

import numpy as np

from hand_perception.core.keypoints import LEFT, RIGHT
from hand_perception.core.retargeting.retargeter import Retargeter, RetargetingResult

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class HandObservation:
    """keypoints: (21, 3) m, MediaPipe order; handedness: "left"/"right"; track_id: tracker id;
    score: handedness confidence in [0, 1], used to pick one hand when two claim a side;
    stamp_s: capture time (s), for the warm start and the One-Euro filter (None: nominal rate)."""

    keypoints: np.ndarray
    handedness: str
    track_id: int = -1
    score: float = 1.0
    stamp_s: Optional[float] = None


@dataclasses.dataclass
class BimanualResult:
    """hands: side -> result for the sides seen this frame (missing sides are absent)."""

    hands: Dict[str, RetargetingResult] = dataclasses.field(default_factory=dict)


class BimanualRetargeter:
    """Routes each observed hand to its side's retargeter; resets a side when its track changes."""

    def __init__(self, left: Optional[Retargeter] = None, right: Optional[Retargeter] = None
                 ) -> None:
        self.retargeters = {side: r for side, r in ((LEFT, left), (RIGHT, right)) if r}
        for side, retargeter in self.retargeters.items():
            if retargeter.options.side != side:
                raise ValueError(f"the {side} retargeter is configured for "
                                 f"side={retargeter.options.side!r}")
        self._tracks: Dict[str, int] = {}

    def _pick(self, side: str, hands: Sequence[HandObservation]) -> Optional[HandObservation]:
        candidates = [h for h in hands if h.handedness == side]
        if not candidates:
            return None
        # Prefer the track already driving this side so a brief handedness swap does not jump.
        same = [h for h in candidates if h.track_id == self._tracks.get(side)]
        return same[0] if same else max(candidates, key=lambda h: h.score)

    def process(self, hands: Sequence[HandObservation]) -> BimanualResult:
        """Retarget every side that has an observation this frame."""
        result = BimanualResult()
        for side, retargeter in self.retargeters.items():
            hand = self._pick(side, hands)
            if hand is None:
                continue
            if self._tracks.get(side) != hand.track_id:
                LOG.debug("%s hand now driven by track %d", side, hand.track_id)
                retargeter.reset()  # another person/hand: no warm start or smoothing across
                self._tracks[side] = hand.track_id
            result.hands[side] = retargeter.process(hand.keypoints, hand.stamp_s)
        return result
