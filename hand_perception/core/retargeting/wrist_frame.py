"""A wrist frame from the 21 keypoints that does not flip when landmarks 0, 5, 9 line up.

Frame convention (the "MediaPipe palm frame" used throughout retargeting), for both hands:
origin at keypoint 0 (wrist); +x from the wrist towards the mean of the four finger MCPs, inside
the palm plane; +z the palm normal pointing out of the palm (the side the fingers curl to);
+y = z × x. The palm plane is a least-squares fit over keypoints 0, 5, 9, 13, 17, so three nearly
colinear landmarks cannot tip it over. The normal's sign comes from the handedness (summed MCP
cross products, which stay well conditioned) and, when that is ambiguous, from the previous frame.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Optional, Tuple

import numpy as np

from hand_perception.core.keypoints import LEFT, NUM_KEYPOINTS, RIGHT, WRIST
from hand_perception.core.options import require_choice, require_range

LOG = logging.getLogger(__name__)
_PALM = np.array([0, 5, 9, 13, 17])
_MCPS = np.array([5, 9, 13, 17])
# Keypoint selections as (rows, 21) matrices: one small product per use instead of fancy
# indexing followed by a reduction (the frame is on the per-frame hot path).
_PALM_CENTRED = np.zeros((len(_PALM), NUM_KEYPOINTS))
_PALM_CENTRED[np.arange(len(_PALM)), _PALM] = 1.0
_PALM_CENTRED[:, _PALM] -= 1.0 / len(_PALM)
_MCP_FROM_WRIST = np.zeros((len(_MCPS), NUM_KEYPOINTS))
_MCP_FROM_WRIST[np.arange(len(_MCPS)), _MCPS] = 1.0
_MCP_FROM_WRIST[:, WRIST] -= 1.0
_FORWARD = _MCP_FROM_WRIST.mean(axis=0)
_EARLIER = np.tril(np.ones((len(_MCPS), len(_MCPS))), -1)  # row j sums rows i < j
_ONES3 = np.ones(3)


@dataclasses.dataclass
class WristFrameOptions:
    """Options of :class:`WristFrameEstimator`.

    min_planarity: smallest ratio of the palm points' 2nd to 1st singular value for which the plane
        is used at all; below it (points on a line) the previous rotation is kept.
    trusted_planarity: from this ratio up the fitted plane alone sets the normal; between the two
        the normal is blended with the previous frame's (an edge-on palm: the fitted normal spins
        about the knuckle line with the keypoint noise, the previous one does not).
    min_handedness_sine: below this normalised cross-product magnitude the handedness cue is
        considered ambiguous and the normal's sign follows the previous frame instead.
    """

    min_planarity: float = 0.05
    trusted_planarity: float = 0.2
    min_handedness_sine: float = 0.15

    def __post_init__(self) -> None:
        require_range("min_planarity", self.min_planarity, 0.0, 1.0)
        require_range("trusted_planarity", self.trusted_planarity, self.min_planarity, 1.0)
        require_range("min_handedness_sine", self.min_handedness_sine, 0.0, 1.0)


@dataclasses.dataclass
class WristFrameResult:
    """rotation: float64 (3, 3), columns = frame axes in the keypoints' frame (empty if invalid);
    origin: float64 (3,) m; degenerate: the previous rotation was reused; valid: a frame exists."""

    rotation: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))
    origin: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    degenerate: bool = False
    valid: bool = False


def validate_keypoints(keypoints: np.ndarray, name: str = "keypoints") -> np.ndarray:
    """Return ``keypoints`` as float64 (21, 3); ``ValueError`` naming the bad value otherwise."""
    array = np.asarray(keypoints)
    if array.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"{name} must have shape ({NUM_KEYPOINTS}, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        raise ValueError(f"{name} has non-finite values at keypoint(s) {bad.tolist()}: "
                         f"{array[bad[0]].tolist()}")
    return array


def handedness_normal(keypoints: np.ndarray, side: str) -> Tuple[np.ndarray, float]:
    """Palm normal (3,) from summed MCP cross products, signed for ``side``, and its sine."""
    vectors = _MCP_FROM_WRIST @ keypoints  # (4, 3) wrist -> MCP
    # sum_{i<j} v_i × v_j = sum_j s_j × v_j with s_j = sum_{i<j} v_i: the antisymmetric part of
    # M = sum_j s_j v_j^T (one 3x3 product instead of six cross products).
    m = ((_EARLIER @ vectors).T @ vectors).tolist()
    total = np.array([m[1][2] - m[2][1], m[2][0] - m[0][2], m[0][1] - m[1][0]])
    lengths = np.sqrt((vectors * vectors) @ _ONES3)
    scale = float(lengths @ (_EARLIER @ lengths))  # sum_{i<j} |v_i| |v_j|
    sign = 1.0 if side == RIGHT else -1.0
    return sign * total, math.sqrt(float(total @ total)) / max(scale, 1e-12)


class WristFrameEstimator:
    """Stateful (continuity) wrist-frame estimator for one hand track."""

    def __init__(self, options: Optional[WristFrameOptions] = None) -> None:
        self.options = options or WristFrameOptions()
        self._previous: Optional[np.ndarray] = None

    def reset(self) -> None:
        """Forget the previous frame (new track)."""
        self._previous = None

    def process(self, keypoints: np.ndarray, side: str) -> WristFrameResult:
        """Wrist frame of ``keypoints`` (21, 3) m in any frame, for hand ``side`` (left/right)."""
        require_choice("side", side, (LEFT, RIGHT))
        return self.process_valid(validate_keypoints(keypoints), side)

    def process_valid(self, points: np.ndarray, side: str) -> WristFrameResult:
        """``process`` for keypoints already validated as finite float64 (21, 3)."""
        centred = _PALM_CENTRED @ points  # (5, 3) palm keypoints minus their mean
        # Eigen-decomposition of the 3x3 scatter: same plane as an SVD, cheaper on tiny input.
        evals, evecs = np.linalg.eigh(centred.T @ centred)
        _, mid, top = evals.tolist()
        sing0, sing1 = math.sqrt(max(top, 0.0)), math.sqrt(max(mid, 0.0))
        if sing0 <= 1e-9 or sing1 / sing0 < self.options.min_planarity:
            return self._reuse(points[WRIST])
        normal = evecs[:, 0]
        cue, sine = handedness_normal(points, side)
        prev_z = None if self._previous is None else self._previous[:, 2]
        if sine >= self.options.min_handedness_sine or prev_z is None:
            reference = cue
        else:
            reference = prev_z  # handedness cue too weak: keep continuity instead of guessing
        if normal @ reference < 0.0:
            normal = -normal
        if prev_z is not None and sing1 < self.options.trusted_planarity * sing0:
            normal = self._blend_with_previous(normal, prev_z, sing1 / sing0)
        forward = _FORWARD @ points  # wrist -> mean of the four MCPs
        x_axis = forward - (forward @ normal) * normal
        length = math.sqrt(float(x_axis @ x_axis))
        if length < 1e-9:
            return self._reuse(points[WRIST])
        (x0, x1, x2), (z0, z1, z2) = (x_axis / length).tolist(), normal.tolist()
        y0, y1, y2 = z1 * x2 - z2 * x1, z2 * x0 - z0 * x2, z0 * x1 - z1 * x0  # y = z × x
        rotation = np.array([[x0, y0, z0], [x1, y1, z1], [x2, y2, z2]])
        self._previous = rotation
        return WristFrameResult(rotation=rotation, origin=points[WRIST].copy(), valid=True)

    def _blend_with_previous(self, normal: np.ndarray, prev_z: np.ndarray, planarity: float
                             ) -> np.ndarray:
        """Normal (3,) weighted towards the previous one as the palm gets edge-on."""
        low, high = self.options.min_planarity, self.options.trusted_planarity
        weight = (planarity - low) / max(high - low, 1e-12)
        blended = weight * normal + (1.0 - weight) * prev_z
        length = np.linalg.norm(blended)
        return normal if length < 1e-9 else blended / length

    def _reuse(self, origin: np.ndarray) -> WristFrameResult:
        if self._previous is None:
            LOG.debug("degenerate palm and no previous wrist frame")
            return WristFrameResult()
        return WristFrameResult(rotation=self._previous.copy(), origin=origin.copy(),
                                degenerate=True, valid=True)
