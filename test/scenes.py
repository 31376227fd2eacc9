"""Test scenes built from the shared real photos (no ROS): importable from every test folder."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np


def second_hand_scene(shared_hands_dir: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Two (480, 640, 3) uint8 RGB frames: a 200 px hand the single letterboxed detector pass
    finds (left half) alone, and the same with a second 200 px hand (right half) that only the
    tile sweep finds."""
    import cv2

    canvas = np.full((480, 640, 3), 114, np.uint8)
    for rel, x0 in (("freihand/00000355.jpg", 40), ("freihand/00065475.jpg", 400)):
        rgb = cv2.cvtColor(cv2.imread(str(Path(shared_hands_dir) / rel)), cv2.COLOR_BGR2RGB)
        canvas[140:340, x0:x0 + 200] = cv2.resize(rgb, (200, 200), interpolation=cv2.INTER_AREA)
    alone = canvas.copy()
    alone[:, 320:] = 114
    return alone, canvas
