"""The 21 hand keypoints, in MediaPipe Hands' order, defined once for the whole package.

Every array of hand keypoints in hand_perception is indexed this way: index 0 is the wrist and each
finger runs from its base (MCP, or CMC for the thumb) to its tip. The ``.msg`` files name this
module instead of repeating the list.
"""
from __future__ import annotations

from typing import Dict, Tuple

KEYPOINT_NAMES: Tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_finger_mcp", "index_finger_pip", "index_finger_dip", "index_finger_tip",
    "middle_finger_mcp", "middle_finger_pip", "middle_finger_dip", "middle_finger_tip",
    "ring_finger_mcp", "ring_finger_pip", "ring_finger_dip", "ring_finger_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
NUM_KEYPOINTS: int = len(KEYPOINT_NAMES)
KEYPOINT_INDEX: Dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

WRIST: int = 0
FINGER_NAMES: Tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
#: Keypoint indices of each finger, from base to tip.
FINGERS: Dict[str, Tuple[int, int, int, int]] = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
FINGERTIPS: Tuple[int, ...] = (4, 8, 12, 16, 20)
#: Bones as (parent, child) keypoint pairs: the skeleton drawn in images and RViz.
BONES: Tuple[Tuple[int, int], ...] = tuple(
    [(WRIST, chain[0]) for chain in FINGERS.values()]
    + [(a, b) for chain in FINGERS.values() for a, b in zip(chain[:-1], chain[1:])]
    + [(5, 9), (9, 13), (13, 17)]
)
#: Parent of every keypoint along the kinematic tree (-1 for the wrist).
PARENT: Tuple[int, ...] = tuple(
    [-1] + [WRIST if i in (1, 5, 9, 13, 17) else i - 1 for i in range(1, NUM_KEYPOINTS)]
)

#: Handedness labels: the person's anatomical hand, as seen in a non-mirrored image.
LEFT: str = "left"
RIGHT: str = "right"
