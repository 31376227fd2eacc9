"""The wrist pose's rotation (Hand.msg ``wrist_pose``) from a hand's 21 keypoints.

Convention: x from the wrist towards keypoint 9 within the palm plane; z the palm normal pointing
out of the palm (least-squares plane over keypoints 0, 5, 9, 13, 17, signed by handedness:
``(index_mcp - wrist) x (pinky_mcp - wrist)`` for a right hand, its negative for a left hand);
y = z x x (the pinky side of a right hand).
"""
from __future__ import annotations

import numpy as np

from hand_perception.core.retargeting.wrist_frame import WristFrameEstimator


def wrist_rotation(world_keypoints: np.ndarray, handedness: str,
                   estimator: WristFrameEstimator) -> np.ndarray:
    """(3, 3) float64 wrist rotation (columns x, y, z; the module docstring's convention) from
    (21, 3) keypoints in camera-parallel axes; NaN when the palm is degenerate and nothing came
    before."""
    points = np.asarray(world_keypoints, np.float64)
    frame = estimator.process_valid(points, handedness) if np.isfinite(points).all() else None
    if frame is None or not frame.valid:
        return np.full((3, 3), np.nan)
    z_axis = frame.rotation[:, 2]
    towards_middle = points[9] - points[0]
    x_axis = towards_middle - (towards_middle @ z_axis) * z_axis
    norm = np.linalg.norm(x_axis)
    # Wrist-to-middle along the normal (not a real hand): fall back to the MCP-mean direction.
    x_axis = x_axis / norm if norm > 1e-9 else frame.rotation[:, 0]
    return np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis])
