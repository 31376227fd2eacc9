"""Per-user hand-size scaling: robot bone lengths over the human's, robust over frames."""
from __future__ import annotations

import dataclasses
from typing import List

import numpy as np

from hand_perception.core.options import require_range
from hand_perception.core.retargeting.retargeter import Retargeter
from hand_perception.core.retargeting.wrist_frame import validate_keypoints


@dataclasses.dataclass
class HandSizeOptions:
    """min_frames: frames needed before the estimate is valid; keeps the median of per-frame
    ratios so a few mis-detected frames do not bias it."""

    min_frames: int = 10

    def __post_init__(self) -> None:
        require_range("min_frames", self.min_frames, 1, 1e6)


@dataclasses.dataclass
class HandSizeResult:
    """scaling: robot/human length ratio (dimensionless); valid once min_frames were seen."""

    scaling: float = 1.0
    num_frames: int = 0
    valid: bool = False


class HandSizeCalibrator:
    """Accumulates keypoint frames (21, 3) m of one person's hand and estimates ``scaling``."""

    def __init__(self, retargeter: Retargeter, options: HandSizeOptions = HandSizeOptions()
                 ) -> None:
        self.options = options
        self._robot = retargeter.robot_bone_lengths()
        if not self._robot:
            raise ValueError("keypoint_links map no human bone to robot links: cannot calibrate")
        self._pairs = np.array(list(self._robot), dtype=int)
        self._robot_total = float(sum(self._robot.values()))
        self._ratios: List[float] = []

    def process(self, keypoints: np.ndarray) -> HandSizeResult:
        """Add one frame and return the current estimate."""
        points = validate_keypoints(keypoints)
        human = np.linalg.norm(points[self._pairs[:, 1]] - points[self._pairs[:, 0]], axis=1)
        if human.sum() > 1e-6:
            self._ratios.append(self._robot_total / float(human.sum()))
        if not self._ratios:
            return HandSizeResult()
        return HandSizeResult(scaling=float(np.median(self._ratios)),
                              num_frames=len(self._ratios),
                              valid=len(self._ratios) >= self.options.min_frames)
