"""Synthetic hand scenes with known geometry, for testing and evaluating tracking and lifting.

A plausible adult hand skeleton (metres) is curled, rotated and placed in front of a pinhole camera;
its depth image is rendered by ray-casting spheres laid densely along the bones (capsules) and over
the palm, in front of a background wall. Holes, an occluding box in front of some fingers, depth
noise, 2D keypoint noise and world-shape noise can be added. Frames are REP-103 optical: x right,
y down, z forward.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from hand_perception.core.keypoints import BONES, FINGERS

#: Open hand, palm towards the camera, fingers up (-y), wrist at the origin; metres.
_OPEN_HAND = np.array([
    [0.000, 0.000, 0.000],
    [0.022, -0.030, -0.005], [0.040, -0.055, -0.012], [0.052, -0.078, -0.018],
    [0.060, -0.098, -0.020],
    [0.025, -0.085, 0.000], [0.028, -0.125, -0.005], [0.030, -0.148, -0.010],
    [0.031, -0.168, -0.015],
    [0.005, -0.090, 0.000], [0.005, -0.135, -0.005], [0.005, -0.160, -0.010],
    [0.005, -0.182, -0.015],
    [-0.014, -0.085, 0.000], [-0.016, -0.125, -0.005], [-0.017, -0.148, -0.010],
    [-0.018, -0.168, -0.014],
    [-0.030, -0.075, 0.000], [-0.034, -0.105, -0.004], [-0.036, -0.122, -0.008],
    [-0.038, -0.138, -0.011],
])
_PALM = (0, 1, 5, 9, 13, 17)


def default_intrinsics(width: int = 640, height: int = 480, focal_px: float = 600.0) -> np.ndarray:
    """A pinhole K (3, 3) float64 with the principal point at the image centre."""
    return np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0], [0.0, 0.0, 1.0]])


def rotation_xyz(angles_rad: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) = Rz @ Ry @ Rx for angles (rx, ry, rz) in radians."""
    rx, ry, rz = angles_rad
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    r_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    r_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return r_z @ r_y @ r_x


def hand_skeleton(curl_rad: Sequence[float] = (0.0,) * 5) -> np.ndarray:
    """Hand keypoints (21, 3) float64 m, wrist at the origin; each finger's joints after its
    base are rotated towards the camera (-z) by ``curl_rad[finger]`` at every joint."""
    pts = _OPEN_HAND.copy()
    for angle, chain in zip(curl_rad, FINGERS.values()):
        rot = rotation_xyz((angle, 0.0, 0.0))
        for k in range(1, len(chain)):
            pivot = pts[chain[k - 1]]
            tail = list(chain[k:])
            pts[tail] = (pts[tail] - pivot) @ rot.T + pivot
    return pts


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of (N, 3) camera-frame points (m) to (N, 2) px."""
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def _sphere_centres(points: np.ndarray, finger_r: float,
                    palm_r: float) -> Tuple[np.ndarray, np.ndarray]:
    """Sphere centres and radii approximating finger capsules and a palm slab."""
    centres, radii = [], []
    for a, b in BONES:
        n = int(np.ceil(np.linalg.norm(points[b] - points[a]) / (0.3 * finger_r))) + 1
        s = np.linspace(0.0, 1.0, n)[:, None]
        centres.append(points[a] + s * (points[b] - points[a]))
        radii.append(np.full(n, finger_r))
    corners = points[list(_PALM)]
    w = np.random.default_rng(0).dirichlet(np.ones(len(corners)), 400)  # fixed: deterministic
    centres.append(w @ corners)
    radii.append(np.full(len(w), palm_r))
    return np.concatenate(centres), np.concatenate(radii)


def render_depth(points: np.ndarray, K: np.ndarray, image_size: Tuple[int, int],
                 background_m: float, finger_radius_m: float = 0.008,
                 palm_radius_m: float = 0.012) -> np.ndarray:
    """Depth image (H, W) float32 m of the hand ``points`` (21, 3) m, camera frame, in front of a
    fronto-parallel wall at ``background_m``: nearest ray-sphere intersection per pixel."""
    width, height = image_size
    depth = np.full((height, width), background_m, dtype=np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    for c, r in zip(*_sphere_centres(points, finger_radius_m, palm_radius_m)):
        u0, v0 = fx * c[0] / c[2] + cx, fy * c[1] / c[2] + cy
        rad = 1.5 * fx * r / max(c[2] - r, 1e-3) + 1
        us = np.arange(max(int(u0 - rad), 0), min(int(u0 + rad) + 2, width))
        vs = np.arange(max(int(v0 - rad), 0), min(int(v0 + rad) + 2, height))
        if us.size == 0 or vs.size == 0:
            continue
        dx, dy = np.meshgrid((us - cx) / fx, (vs - cy) / fy)  # rays (dx, dy, 1)
        a = dx * dx + dy * dy + 1.0
        b = dx * c[0] + dy * c[1] + c[2]
        disc = b * b - a * (c @ c - r * r)
        z = np.where(disc >= 0, (b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        block = depth[vs[0]:vs[-1] + 1, us[0]:us[-1] + 1]
        np.minimum(block, z, out=block)
    return depth.astype(np.float32)


@dataclass
class HandScene:
    """A rendered scene: ``points_camera`` (21, 3) true keypoints m; ``keypoints_2d`` (21, 2) noisy
    px; ``world_keypoints`` (21, 3) noisy, hand-centred m; ``depth`` (H, W) float32 m, NaN holes;
    ``K`` (3, 3); ``occluded`` (21,) bool joints behind the occluding box."""

    points_camera: np.ndarray
    keypoints_2d: np.ndarray
    world_keypoints: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    occluded: np.ndarray


def random_hand_scene(distance_m: float, rng: np.random.Generator,
                      K: Optional[np.ndarray] = None, image_size: Tuple[int, int] = (640, 480),
                      kp_noise_px: float = 2.0, world_noise_m: float = 0.003,
                      hole_fraction: float = 0.0, occluder: bool = False,
                      depth_noise: bool = True) -> HandScene:
    """A random hand (curl, orientation within +-35 deg, position near the optical axis) whose
    centroid lies at depth ``distance_m``; see :class:`HandScene`."""
    K = default_intrinsics(*image_size) if K is None else K
    hand = hand_skeleton(rng.uniform(0.0, 0.5, 5))
    hand = (hand - hand.mean(0)) @ rotation_xyz(rng.uniform(-0.6, 0.6, 3)).T
    offset = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.03, 0.03), 0.0]) * distance_m
    points = hand + offset + np.array([0.0, 0.0, distance_m])
    depth = render_depth(points, K, image_size, background_m=distance_m + 0.4)
    occluded = np.zeros(21, dtype=bool)
    if occluder:
        depth, occluded = _add_occluder(depth, points, K, rng)
    if depth_noise:  # structured-light-like noise growing with z^2
        depth += rng.normal(0.0, 1.0, depth.shape).astype(np.float32) * (0.001 + 0.002 * depth ** 2)
    if hole_fraction > 0:
        depth = _add_holes(depth, project(points, K), hole_fraction, rng)
    kp2d = project(points, K) + rng.normal(0.0, kp_noise_px, (21, 2))
    world = points - points.mean(0) + rng.normal(0.0, world_noise_m, (21, 3))
    return HandScene(points, kp2d.astype(np.float32), world.astype(np.float32), depth, K, occluded)


def _add_occluder(depth: np.ndarray, points: np.ndarray, K: np.ndarray,
                  rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """A box 5-10 cm in front of the hand covering two random adjacent fingers' outer joints."""
    first = int(rng.integers(1, 4))
    joints = [j for f in list(FINGERS.values())[first:first + 2] for j in f[2:]]
    uv = project(points[joints], K)
    lo = np.floor(uv.min(0) - 8).astype(int).clip(0)
    hi = np.ceil(uv.max(0) + 8).astype(int)
    z = float(points[:, 2].min() - rng.uniform(0.05, 0.10))
    depth = depth.copy()
    depth[lo[1]:hi[1], lo[0]:hi[0]] = z
    occluded = np.zeros(21, dtype=bool)
    occluded[joints] = True
    return depth, occluded


def _add_holes(depth: np.ndarray, uv: np.ndarray, fraction: float,
               rng: np.random.Generator) -> np.ndarray:
    """Drop ``fraction`` of the pixels at random and punch blobs around three random joints."""
    depth = depth.copy()
    depth[rng.random(depth.shape) < fraction] = np.nan
    rows, cols = np.mgrid[0:depth.shape[0], 0:depth.shape[1]]
    size = float(np.ptp(uv, axis=0).max())
    for j in rng.choice(21, 3, replace=False):
        depth[(cols - uv[j, 0]) ** 2 + (rows - uv[j, 1]) ** 2 < (0.06 * size) ** 2] = np.nan
    return depth
