"""Rotated hand regions of interest (ROIs) and the affine maps between image and crop pixels.

Geometry follows MediaPipe Hands. Pixel coordinates are continuous, origin at the top-left corner
of the top-left pixel, x right, y down. A ROI's rotation ``r`` (radians) maps the crop's x axis to
the image direction ``(cos r, sin r)`` and its y axis to ``(-sin r, cos r)``; ``r = 0`` is an
upright hand (fingers towards -y).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

#: Palm-detection keypoints used for the rotation: wrist centre and middle-finger MCP.
PALM_ROTATION_KEYPOINTS: Tuple[int, int] = (0, 2)
#: MediaPipe's palm-to-hand ROI expansion: scale, vertical shift (in ROI heights).
PALM_ROI_SCALE = 2.6
PALM_ROI_SHIFT_Y = -0.5
#: MediaPipe's landmarks-to-ROI expansion for tracking from the previous frame.
LANDMARK_ROI_SCALE = 2.0
LANDMARK_ROI_SHIFT_Y = -0.1
#: Landmarks MediaPipe uses for the tracking ROI: wrist, thumb CMC..IP, the finger MCPs and PIPs
#: (fingertips are left out because they move the most between frames).
_ROI_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


@dataclass(frozen=True)
class HandRoi:
    """Rotated hand region: centre ``(cx, cy)`` px, ``width``/``height`` px, ``rotation`` rad."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float

    def corners(self) -> np.ndarray:
        """``(4, 2)`` float64 image px of the crop's corners, clockwise from its top-left."""
        u, v = _axes(self.rotation)
        half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 0.5
        return (np.array([self.cx, self.cy]) + half[:, :1] * self.width * u
                + half[:, 1:] * self.height * v)


def _axes(rotation: float) -> Tuple[np.ndarray, np.ndarray]:
    cos, sin = math.cos(rotation), math.sin(rotation)
    return np.array([cos, sin]), np.array([-sin, cos])


def normalize_radians(angle: float) -> float:
    """Wrap ``angle`` into ``[-pi, pi)``."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_to_vertical(start: np.ndarray, end: np.ndarray) -> float:
    """Rotation (rad) that turns the image vector ``start -> end`` (px) to point up (-y)."""
    return normalize_radians(math.pi / 2 - math.atan2(-(end[1] - start[1]), end[0] - start[0]))


def transform_rect(cx: float, cy: float, width: float, height: float, rotation: float,
                   scale: float, shift_y: float) -> HandRoi:
    """Shift a rotated rect along its own y axis by ``shift_y`` heights, square it on its long
    side and scale it, as MediaPipe's RectTransformationCalculator (all in px)."""
    _, v = _axes(rotation)
    centre = np.array([cx, cy]) + v * height * shift_y
    side = max(width, height) * scale
    return HandRoi(float(centre[0]), float(centre[1]), side, side, rotation)


def roi_from_palm(box: np.ndarray, keypoints: np.ndarray) -> HandRoi:
    """Hand ROI from one palm detection.

    ``box``: ``(4,)`` xmin, ymin, xmax, ymax, image px. ``keypoints``: ``(7, 2)`` image px.
    """
    start, end = keypoints[PALM_ROTATION_KEYPOINTS[0]], keypoints[PALM_ROTATION_KEYPOINTS[1]]
    rotation = rotation_to_vertical(start, end)
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    return transform_rect(float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2, width, height,
                          rotation, PALM_ROI_SCALE, PALM_ROI_SHIFT_Y)


def roi_from_landmarks(landmarks: np.ndarray) -> HandRoi:
    """Tracking ROI for the next frame from ``(21, 2+)`` landmarks in image px (x, y first)."""
    points = np.asarray(landmarks, np.float64)[list(_ROI_LANDMARKS), :2]
    wrist, index_mcp, middle_mcp, ring_mcp = points[0], points[4], points[6], points[8]
    # Aim between the middle MCP and the midpoint of the index and ring MCPs: steadier than one.
    target = ((index_mcp + ring_mcp) / 2 + middle_mcp) / 2
    rotation = rotation_to_vertical(wrist, target)
    u, v = _axes(rotation)
    local = np.stack([points @ u, points @ v], axis=1)  # coordinates along the ROI axes
    low, high = local.min(axis=0), local.max(axis=0)
    mid = (low + high) / 2
    centre = mid[0] * u + mid[1] * v
    width, height = high - low
    return transform_rect(float(centre[0]), float(centre[1]), float(width), float(height),
                          rotation, LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT_Y)


def crop_to_image_matrix(roi: HandRoi, crop_size: int) -> np.ndarray:
    """``(2, 3)`` float64 affine: crop px (``crop_size`` square) -> image px, continuous coords."""
    u, v = _axes(roi.rotation)
    sx, sy = roi.width / crop_size, roi.height / crop_size
    linear = np.stack([u * sx, v * sy], axis=1)
    offset = np.array([roi.cx, roi.cy]) - linear @ np.array([crop_size / 2, crop_size / 2])
    return np.concatenate([linear, offset[:, None]], axis=1)


def image_to_crop_matrix(roi: HandRoi, crop_size: int) -> np.ndarray:
    """``(2, 3)`` float64 affine: image px -> crop px; the inverse of ``crop_to_image_matrix``."""
    forward = crop_to_image_matrix(roi, crop_size)
    inverse = np.linalg.inv(forward[:, :2])
    return np.concatenate([inverse, -inverse @ forward[:, 2:]], axis=1)


def to_pixel_centre_matrix(matrix: np.ndarray) -> np.ndarray:
    """Convert a continuous-coordinate affine to OpenCV's convention (pixel centres at integers),
    as ``cv2.warpAffine`` expects."""
    linear, offset = matrix[:, :2], matrix[:, 2]
    return np.concatenate([linear, (offset + linear @ [0.5, 0.5] - 0.5)[:, None]], axis=1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine to ``(..., 2)`` points; returns float64 ``(..., 2)``."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def overlap_of_smaller(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection of ``box`` (4,) with each of ``boxes`` (N, 4) (x0, y0, x1, y1 px) over the
    smaller one's area. A palm's ROI (2.6x the palm) and a tracked hand's ROI (2x the
    landmarks) of the same hand differ in scale, so their IoU stays near 0.3; one lies mostly
    inside the other, which this measures."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(np.minimum(area, areas), 1e-9)


def roi_bounding_box(roi: HandRoi) -> np.ndarray:
    """``(4,)`` float64 axis-aligned bounds x0, y0, x1, y1 (px) of a rotated ROI."""
    corners = roi.corners()
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])
