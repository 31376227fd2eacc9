"""Metric 3D hand keypoints in the camera optical frame (REP-103: x right, y down, z forward, m).

The landmark model gives 2D keypoints (px) and a metric, hand-centred shape ``world_keypoints``
whose axes are the camera's; the camera-frame keypoints are ``world_keypoints + t`` for an unknown
translation ``t``. :class:`HandLifter` finds them:

* with an aligned depth image (same pixel grid and K as the keypoints): per joint, the depth
  samples in a small window are read (holes - NaN, 0, out of range - are dropped); the root depth
  ``t_z`` is a 1-D consensus (RANSAC over all joint hypotheses ``z_j + offset - world_z_j``) so an
  object in front of some fingers, or background behind the fingertips, is outvoted by the rest of
  the hand; then each joint takes the median of its window samples that agree with the rigid shape
  placed at ``t_z`` (within ``joint_inlier_tolerance_m``), or else falls back to the shape's depth.
  Points are placed on each keypoint's viewing ray at the chosen depth. Depth cameras see the skin,
  not the joint centre, so ``joint_surface_offset_m`` is added to measured depths.
* monocular: ``t`` minimises the reprojection error of ``world_keypoints + t``: a linear
  least-squares initialisation (the projection equations multiplied by depth are linear in ``t``)
  refined by a few Gauss-Newton steps on the normalised-image residuals.

With too few valid depth joints the depth mode falls back to monocular (``mode`` says which ran).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from hand_perception.core.keypoints import NUM_KEYPOINTS
from hand_perception.core.options import require_range

_LOG = logging.getLogger(__name__)


@dataclass
class LiftingOptions:
    """Parameters of :class:`HandLifter` (lengths in metres, windows in pixels)."""

    depth_window_radius_px: int = 3
    depth_unit_m: float = 0.001
    min_depth_m: float = 0.1
    max_depth_m: float = 5.0
    joint_surface_offset_m: float = 0.008
    root_inlier_tolerance_m: float = 0.02
    joint_inlier_tolerance_m: float = 0.02
    min_window_support: float = 0.2
    min_depth_joints: int = 5
    gauss_newton_iterations: int = 5

    def __post_init__(self) -> None:
        for name in ("depth_window_radius_px", "min_depth_joints", "gauss_newton_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} must be an integer >= 0")
        if not 1 <= self.min_depth_joints <= NUM_KEYPOINTS:
            raise ValueError(f"min_depth_joints={self.min_depth_joints!r} is outside [1, 21]")
        for name in ("depth_unit_m", "min_depth_m", "root_inlier_tolerance_m",
                     "joint_inlier_tolerance_m"):
            require_range(name, getattr(self, name), 1e-9)
        require_range("max_depth_m", self.max_depth_m, self.min_depth_m)
        require_range("joint_surface_offset_m", self.joint_surface_offset_m, 0.0, 0.1)
        require_range("min_window_support", self.min_window_support, 0.0, 1.0)


@dataclass
class LiftingResult:
    """``points_camera`` (21, 3) float32 m, camera optical frame; ``valid`` (21,) bool: the joint
    has a 3D estimate; ``measured`` (21,) bool: its depth came from the depth image;
    ``depth_residual_m`` (21,) float32 window-median depth minus the fitted hand's (m; negative =
    something in front; NaN = no depth); ``translation_m`` (3,) hand-centre position; ``mode``
    ``"depth"``, ``"monocular"`` or ``"none"``; ``reprojection_rms_px`` of the rigid fit."""

    points_camera: np.ndarray = field(
        default_factory=lambda: np.full((NUM_KEYPOINTS, 3), np.nan, dtype=np.float32))
    valid: np.ndarray = field(default_factory=lambda: np.zeros(NUM_KEYPOINTS, dtype=bool))
    measured: np.ndarray = field(default_factory=lambda: np.zeros(NUM_KEYPOINTS, dtype=bool))
    depth_residual_m: np.ndarray = field(
        default_factory=lambda: np.full(NUM_KEYPOINTS, np.nan, dtype=np.float32))
    translation_m: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    mode: str = "none"
    reprojection_rms_px: float = float("nan")


def check_intrinsics(K: np.ndarray) -> np.ndarray:
    """Return K as a (3, 3) float64 array; ``ValueError`` unless it is a valid pinhole matrix."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise ValueError(f"K must be a finite (3, 3) matrix, got shape {K.shape}")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or np.abs(K[2] - (0.0, 0.0, 1.0)).max() > 1e-8:
        raise ValueError(f"K={K.tolist()} is not a pinhole matrix (fx, fy > 0, last row 0 0 1)")
    return K


def normalised_rays(keypoints_2d: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Viewing rays (N, 3) with z = 1 through the (N, 2) px keypoints."""
    uv1 = np.column_stack([keypoints_2d, np.ones(len(keypoints_2d))])
    return uv1 @ np.linalg.inv(K).T


def _least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin_x |a x - b| for a tall (M, 3) ``a``: the 3x3 normal equations, a fraction of
    lstsq's cost on the whole system (several solves per hand and frame); lstsq if singular."""
    try:
        return np.linalg.solve(a.T @ a, a.T @ b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def fit_translation(world: np.ndarray, rays: np.ndarray, weights: np.ndarray,
                    iterations: int) -> Tuple[np.ndarray, np.ndarray]:
    """Translation t (3,) m minimising the weighted reprojection error of ``world + t`` onto the
    normalised image points ``rays[:, :2]``; returns (t, residuals (N, 2) normalised units).

    Linear start: x_i (W_zi + t_z) = W_xi + t_x is linear in t (same for y). Then Gauss-Newton.
    """
    sw = np.sqrt(weights)[:, None]
    a = np.zeros((2 * len(world), 3))
    a[0::2, 0] = a[1::2, 1] = -1.0
    a[0::2, 2], a[1::2, 2] = rays[:, 0], rays[:, 1]
    rhs = np.column_stack([world[:, 0] - rays[:, 0] * world[:, 2],
                           world[:, 1] - rays[:, 1] * world[:, 2]]).ravel()
    t = _least_squares(a * np.repeat(sw, 2, axis=0), rhs * np.repeat(sw[:, 0], 2))
    for _ in range(iterations):
        p = world + t
        if np.any(p[:, 2] <= 1e-6):
            break  # behind the camera: keep the last good estimate
        res = p[:, :2] / p[:, 2:3] - rays[:, :2]
        jac = np.zeros((len(p), 2, 3))
        jac[:, 0, 0] = jac[:, 1, 1] = 1.0 / p[:, 2]
        jac[:, :, 2] = -p[:, :2] / p[:, 2:3] ** 2
        step = _least_squares((jac * sw[:, :, None]).reshape(-1, 3), -(res * sw).ravel())
        t = t + step
        if np.linalg.norm(step) < 1e-7:
            break
    p = world + t
    return t, p[:, :2] / p[:, 2:3] - rays[:, :2]


def _row_median(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring median of each row of (N, M), and the count of finite values per row."""
    count = np.isfinite(values).sum(axis=1)
    srt = np.sort(values, axis=1)  # NaNs sort last
    rows = np.arange(len(values))
    lo, hi = np.maximum(count - 1, 0) // 2, np.maximum(count, 1) // 2
    med = 0.5 * (srt[rows, lo] + srt[rows, np.minimum(hi, values.shape[1] - 1)])
    med[count % 2 == 1] = srt[rows, lo][count % 2 == 1]
    return np.where(count > 0, med, np.nan), count


def consensus_depth(hypotheses: np.ndarray, tolerance: float) -> Tuple[float, np.ndarray]:
    """1-D RANSAC over all finite ``hypotheses`` (m): the one with most others within
    ``tolerance`` wins (ties: the farthest, as occluders are in front); returns the median of its
    inliers and the inlier mask. NaN and an empty mask if there is no hypothesis."""
    ok = np.isfinite(hypotheses)
    if not ok.any():
        return float("nan"), np.zeros(hypotheses.shape, dtype=bool)
    h = hypotheses[ok]
    support = (np.abs(h[:, None] - h[None, :]) <= tolerance).sum(axis=1)
    best = h[support == support.max()].max()
    inliers = ok & (np.abs(np.where(ok, hypotheses, np.inf) - best) <= tolerance)
    return float(np.median(hypotheses[inliers])), inliers


class HandLifter:
    """Lifts one hand's keypoints to metric camera-frame 3D; see the module docstring."""

    def __init__(self, options: Optional[LiftingOptions] = None) -> None:
        self.options = options if options is not None else LiftingOptions()
        if not isinstance(self.options, LiftingOptions):
            raise TypeError(f"options must be LiftingOptions, got {self.options!r}")

    def process(self, keypoints_2d: np.ndarray, world_keypoints: np.ndarray, K: np.ndarray,
                depth: Optional[np.ndarray] = None,
                joint_weights: Optional[np.ndarray] = None) -> LiftingResult:
        """Lift (21, 2) px ``keypoints_2d`` with the (21, 3) m hand-centred ``world_keypoints`` and
        the (3, 3) intrinsics ``K``; ``depth`` is an optional aligned depth image (H, W): float m
        or uint16 in ``depth_unit_m`` units, NaN/0 = hole. ``joint_weights`` (21,) >= 0 weight the
        monocular fit (default 1). Non-finite joints are ignored; returns an empty result (mode
        ``"none"``) if fewer than 3 joints remain."""
        K = check_intrinsics(K)
        kp = np.asarray(keypoints_2d, dtype=np.float64)
        world = np.asarray(world_keypoints, dtype=np.float64)
        if kp.shape != (NUM_KEYPOINTS, 2) or world.shape != (NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints_2d / world_keypoints must have shape (21, 2) / (21, 3), "
                             f"got {kp.shape} / {world.shape}")
        weights = np.ones(NUM_KEYPOINTS) if joint_weights is None else np.asarray(
            joint_weights, dtype=np.float64).reshape(NUM_KEYPOINTS)
        ok = (np.isfinite(kp).all(1) & np.isfinite(world).all(1) & np.isfinite(weights)
              & (weights > 0))
        if ok.sum() < 3:
            return LiftingResult()
        if depth is not None:
            result = self.lift_with_depth(kp, world, K, depth, ok)
            if result.mode == "depth":
                return result
            _LOG.debug("too few valid depth joints; falling back to monocular lifting")
        return self.lift_monocular(kp, world, K, np.where(ok, weights, 0.0), ok)

    def lift_monocular(self, kp: np.ndarray, world: np.ndarray, K: np.ndarray,
                       weights: np.ndarray, ok: np.ndarray) -> LiftingResult:
        """Rigid translation fit of ``world`` to ``kp`` (see :func:`fit_translation`)."""
        rays = normalised_rays(np.where(ok[:, None], kp, 0.0), K)
        t, res = fit_translation(world[ok], rays[ok], weights[ok],
                                 self.options.gauss_newton_iterations)
        points = world + t
        if not np.isfinite(t).all() or np.any(points[ok, 2] < self.options.min_depth_m):
            _LOG.debug("monocular fit failed (t=%s)", t)
            return LiftingResult()
        rms = float(np.sqrt(np.mean(np.sum(res ** 2, axis=1))) * 0.5 * (K[0, 0] + K[1, 1]))
        valid = np.isfinite(world).all(1)
        points = np.where(valid[:, None], points, np.nan).astype(np.float32)
        return LiftingResult(points_camera=points, valid=valid, translation_m=t, mode="monocular",
                             reprojection_rms_px=rms)

    def depth_windows(self, kp: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Depth samples (21, (2r+1)^2) float64 m around each keypoint; NaN for holes, pixels
        outside the image or the valid range, and joints with non-finite keypoints."""
        r = self.options.depth_window_radius_px
        offs = np.arange(-r, r + 1)
        finite = np.isfinite(kp).all(1)
        centre = np.round(np.where(finite[:, None], kp, -1e6)).astype(np.int64)
        us = (centre[:, 0:1, None] + offs[None, None, :]).repeat(len(offs), 1).reshape(len(kp), -1)
        vs = (centre[:, 1:2, None] + offs[None, :, None]).repeat(len(offs), 2).reshape(len(kp), -1)
        inside = (us >= 0) & (us < depth.shape[1]) & (vs >= 0) & (vs < depth.shape[0])
        raw = depth[np.clip(vs, 0, depth.shape[0] - 1), np.clip(us, 0, depth.shape[1] - 1)]
        opts = self.options
        z = raw.astype(np.float64) * (opts.depth_unit_m if depth.dtype.kind in "iu" else 1.0)
        bad = ~inside | ~np.isfinite(z) | (z < opts.min_depth_m) | (z > opts.max_depth_m)
        return np.where(bad, np.nan, z)

    def lift_with_depth(self, kp: np.ndarray, world: np.ndarray, K: np.ndarray,
                        depth: np.ndarray, ok: np.ndarray) -> LiftingResult:
        """Depth-image lifting (see the module docstring); mode ``"none"`` if too few joints."""
        depth = np.asarray(depth)
        if depth.ndim != 2:
            raise ValueError(f"depth must be an (H, W) image, got shape {depth.shape}")
        opts = self.options
        samples = self.depth_windows(np.where(ok[:, None], kp, np.nan), depth)
        median, _ = _row_median(samples)
        surface_z = median + opts.joint_surface_offset_m  # skin -> joint centre
        t_z, inliers = consensus_depth(surface_z - world[:, 2], opts.root_inlier_tolerance_m)
        if inliers.sum() < opts.min_depth_joints:
            return LiftingResult()
        expected = world[:, 2] + t_z
        close = (np.abs(samples + opts.joint_surface_offset_m - expected[:, None])
                 <= opts.joint_inlier_tolerance_m)
        agreeing, n_agree = _row_median(np.where(close, samples, np.nan))
        n_valid = np.isfinite(samples).sum(axis=1)
        support = n_agree >= opts.min_window_support * np.maximum(n_valid, 1)
        measured = ok & (n_agree >= 3) & support
        z = np.where(measured, agreeing + opts.joint_surface_offset_m, expected)
        points = normalised_rays(np.where(ok[:, None], kp, 0.0), K) * z[:, None]
        valid = ok & np.isfinite(points).all(1)
        return LiftingResult(
            points_camera=np.where(valid[:, None], points, np.nan).astype(np.float32), valid=valid,
            measured=measured, depth_residual_m=(surface_z - expected).astype(np.float32),
            translation_m=np.mean(points[valid] - world[valid], axis=0), mode="depth",
            reprojection_rms_px=float("nan"))
