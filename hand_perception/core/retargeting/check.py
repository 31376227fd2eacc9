"""Sanity checks of a hand config against its URDF, with messages a user can act on.

Missing links are hard errors raised when the :class:`Retargeter` is built; the checks here catch
configs that load but would retarget badly: a left URDF used as a right hand (fingers curl away
from the palm normal), a thumb on the pinky side (flipped thumb axis / mirrored model), an explicit
wrist rotation that does not match the MediaPipe palm-frame convention, and implausible scaling.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import List

import numpy as np

from hand_perception.core.keypoints import FINGERTIPS
from hand_perception.core.retargeting.retargeter import Retargeter

LOG = logging.getLogger(__name__)
#: Typical adult wrist -> middle fingertip distance (m), for the scaling plausibility check.
HUMAN_HAND_LENGTH = 0.18


@dataclasses.dataclass
class ConfigCheckResult:
    """problems: human-readable messages, empty when the config looks right."""

    problems: List[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _palm_frame_points(retargeter: Retargeter, q: np.ndarray) -> np.ndarray:
    """Robot keypoints at ``q`` in the palm frame the config maps human keypoints to."""
    return retargeter.robot_keypoints(q) @ retargeter.wrist_rotation


def _curl_problem(retargeter: Retargeter) -> List[str]:
    hand = retargeter.hand
    tips = [t for t in FINGERTIPS if t != 4 and t in retargeter.options.keypoint_links]
    ends = [_palm_frame_points(retargeter, q)[tips] for q in (hand.lower, hand.upper)]
    base = _palm_frame_points(retargeter, hand.lower)[0]
    reach = [np.linalg.norm(e - base, axis=1).mean() for e in ends]
    curled, opened = (ends[0], ends[1]) if reach[0] < reach[1] else (ends[1], ends[0])
    if (curled - opened)[:, 2].mean() < 0.0:
        return [f"{retargeter.options.urdf}: the fingers curl away from the palm normal for "
                f"side={retargeter.options.side!r}: is this the other side's URDF, or a "
                f"wrist_rotation_xyzw with a flipped z axis?"]
    return []


def _thumb_problem(retargeter: Retargeter) -> List[str]:
    links = retargeter.options.keypoint_links
    thumb = next((k for k in (1, 2, 3, 4) if k in links), None)
    if thumb is None or 5 not in links:
        return ["keypoint_links has no thumb or index keypoint: thumb placement not checked"]
    pinky_side = 17 if 17 in links else 13 if 13 in links else 9
    points = _palm_frame_points(retargeter, retargeter.hand.neutral())
    across = points[5, 1] - points[pinky_side, 1]
    if np.sign(points[thumb, 1] - points[pinky_side, 1]) != np.sign(across):
        return [f"thumb link {links[thumb]!r} sits on the pinky side of the palm: flipped thumb "
                f"axis or mirrored URDF for side={retargeter.options.side!r}"]
    return []


def _rotation_problem(retargeter: Retargeter, tolerance_deg: float) -> List[str]:
    if retargeter.options.wrist_rotation_xyzw is None:
        return []
    delta = retargeter.wrist_rotation.T @ retargeter.geometric_rotation
    angle = np.degrees(np.arccos(np.clip((np.trace(delta) - 1.0) / 2.0, -1.0, 1.0)))
    if angle > tolerance_deg:
        return [f"wrist_rotation_xyzw is {angle:.0f} deg away from the robot's palm frame in the "
                f"MediaPipe convention (x wrist->knuckles, z out of the palm); set it to null "
                f"to use the geometric one"]
    return []


def _scaling_problem(retargeter: Retargeter) -> List[str]:
    hand = retargeter.hand
    links = retargeter.options.keypoint_links
    tip = 12 if 12 in links else 8
    if tip not in links:
        return []
    points = retargeter.robot_keypoints(hand.clip(np.zeros(hand.num_joints)))
    length = float(np.linalg.norm(points[tip] - points[0]))
    expected = length / HUMAN_HAND_LENGTH
    if not 0.5 < retargeter.scaling / expected < 2.0:
        return [f"scaling={retargeter.scaling} is far from robot/human size {expected:.2f} "
                f"(robot wrist->fingertip {length * 1e3:.0f} mm)"]
    return []


def check_config(retargeter: Retargeter, rotation_tolerance_deg: float = 25.0
                 ) -> ConfigCheckResult:
    """Run every check; each problem is also logged as a warning."""
    problems = (_curl_problem(retargeter) + _thumb_problem(retargeter)
                + _rotation_problem(retargeter, rotation_tolerance_deg)
                + _scaling_problem(retargeter))
    for problem in problems:
        LOG.warning("retargeting config: %s", problem)
    return ConfigCheckResult(problems=problems)
