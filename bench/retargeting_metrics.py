"""Metrics of bench/bench_retargeting.py (plain numpy): vector error, limit violations, jerk,
wrist-frame flips and the peers' 0, 5, 9 wrist frame."""
from __future__ import annotations

from typing import Tuple

import numpy as np

FLIP_DEG = 60.0


def vector_error(robot: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean norm (T,) of robot (T, f, 3) minus target (T, f, 3) vectors (m)."""
    return np.linalg.norm(np.asarray(robot) - np.asarray(target), axis=-1).mean(axis=-1)


def limit_violations(q: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float = 1e-6
                     ) -> Tuple[float, float]:
    """(fraction of frames with any joint outside [lower, upper] by > tol, largest excess)."""
    excess = np.maximum(np.maximum(lower - q, q - upper), 0.0)
    worst = excess.max(axis=1)
    return float((worst > tol).mean()), float(worst.max())


def rms_jerk(q: np.ndarray, fps: float) -> float:
    """RMS third derivative (rad/s³) of a joint trajectory (T, n) sampled at ``fps``."""
    third = np.diff(np.asarray(q, dtype=float), n=3, axis=0) * fps ** 3
    return float(np.sqrt((third ** 2).mean())) if third.size else 0.0


def rotation_angles_deg(rotations: np.ndarray) -> np.ndarray:
    """Angles (T-1,) in degrees between consecutive rotations (T, 3, 3)."""
    rel = np.einsum("tji,tjk->tik", rotations[:-1], rotations[1:])
    cos = (np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def flip_rate(rotations: np.ndarray, threshold_deg: float = FLIP_DEG) -> float:
    """Fraction of frame-to-frame steps whose rotation jumps by more than ``threshold_deg``."""
    return float((rotation_angles_deg(rotations) > threshold_deg).mean())


def frame_from_059(points: np.ndarray) -> np.ndarray:
    """The peers' wrist frame (3, 3) from landmarks 0, 5, 9 of a right hand (21, 3).

    Plane through the three landmarks (SVD), x from the middle knuckle towards the wrist
    projected into it, the normal's sign chosen so that z = x × normal points from the middle
    towards the index knuckle: with 0, 5, 9 nearly on a line the plane, and so the frame, flips.
    """
    tri = points[[0, 5, 9]]
    normal = np.linalg.svd(tri - tri.mean(axis=0))[2][2]
    x_axis = tri[0] - tri[2]
    x_axis = x_axis - (x_axis @ normal) * normal
    x_axis /= np.linalg.norm(x_axis)
    z_axis = np.cross(x_axis, normal)
    if z_axis @ (tri[1] - tri[2]) < 0.0:
        normal, z_axis = -normal, -z_axis
    return np.column_stack([x_axis, normal, z_axis])
