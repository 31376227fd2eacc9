"""Rotation matrix <-> quaternion (x, y, z, w), plain numpy: used by the retargeting configs and
by the ROS message conversions."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def quaternion_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (4,) float64 unit quaternion (x, y, z, w), w >= 0.

    Shepperd's method (branch on the largest diagonal term) stays accurate near 180 degrees.
    ``ValueError`` when the matrix is not finite or not a rotation (tolerance 1e-3)."""
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3) or not np.all(np.isfinite(r)):
        raise ValueError(f"rotation must be a finite (3, 3) matrix, got {r.tolist()}")
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-3) or np.linalg.det(r) < 0.0:
        raise ValueError(f"matrix is not a rotation (R R^T != I or det < 0): {r.round(4).tolist()}")
    trace = np.trace(r)
    if trace > 0.0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    quat = np.asarray(q) / np.linalg.norm(q)
    return -quat if quat[3] < 0.0 else quat


def matrix_from_quaternion(quat: Sequence[float]) -> np.ndarray:
    """(x, y, z, w) quaternion -> (3, 3) float64 rotation; the quaternion is normalised, so the
    caller decides how far from unit norm it accepts. ``ValueError`` for a zero or non-finite one."""
    q = np.asarray(quat, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(q)) if q.size == 4 else float("nan")
    if not math.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {list(np.ravel(quat))} must be 4 finite values, not all zero")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
