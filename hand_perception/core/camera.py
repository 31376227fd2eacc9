"""Pinhole camera intrinsics (the K of sensor_msgs/CameraInfo), ROS-free."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hand_perception.core.options import require_range


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``; distortion is assumed
    removed (rectified image). Optical frame: x right, y down, z forward (REP-103)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            require_range(name, getattr(self, name), 1e-6)
        require_range("cx", self.cx)
        require_range("cy", self.cy)
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")

    @classmethod
    def from_fov(cls, width: int, height: int, horizontal_fov_deg: float = 60.0) -> "CameraIntrinsics":
        """Square pixels, principal point at the centre, focal length from the horizontal FOV."""
        require_range("horizontal_fov_deg", horizontal_fov_deg, 1.0, 179.0)
        focal = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        return cls(focal, focal, width / 2.0, height / 2.0, int(width), int(height))

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> "CameraIntrinsics":
        """From a 3x3 K (or its 9 row-major values)."""
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.size != 9 or not np.all(np.isfinite(k)):
            raise ValueError(f"K must be 9 finite values, got {k.tolist()}")
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) float64 K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> "CameraIntrinsics":
        """The same camera for a resized image of ``width`` x ``height``."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                                int(width), int(height))
