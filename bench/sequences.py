"""Moving test sequences made from real hand photos, with their annotations moved alike.

A sequence is one or more photo layers warped onto a canvas by a smooth per-frame affine
(``cv2.warpAffine``): a pan, a zoom, an in-plane rotation, a fast "shake" of all three, or two
photos approaching each other. The GT keypoints go through the same matrices
(``metrics.transform_hand``), so every frame has exact ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Sequence, Tuple

import cv2
import numpy as np

from bench.metrics import GtHand, transform_hand

CANVAS: Tuple[int, int] = (640, 480)  # width, height
BACKGROUND = (114, 114, 114)
KINDS: Tuple[str, ...] = ("pan", "zoom", "rotate", "shake")
#: Longer side of a photo on the canvas before motion, as a fraction of the canvas height.
BASE_FILL = 0.6


@dataclass
class Layer:
    """A photo (``(H, W, 3)`` uint8 RGB) with its GT hands, placed on the canvas by one
    ``(2, 3)`` matrix per frame."""

    image: np.ndarray
    hands: List[GtHand]
    matrices: List[np.ndarray] = field(default_factory=list)


def ease(t: np.ndarray) -> np.ndarray:
    """0 -> 1 -> 0 over t in [0, 1], smooth at both ends (zero velocity at the turns)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * t)


def similarity(centre: Tuple[float, float], scale: float, angle_deg: float,
               src_size: Tuple[int, int]) -> np.ndarray:
    """``(2, 3)`` matrix putting the middle of a ``src_size`` (w, h) photo at ``centre``,
    scaled by ``scale`` and turned by ``angle_deg`` (counter-clockwise in the image)."""
    w, h = src_size
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, scale)
    matrix[:, 2] += np.asarray(centre) - np.array([w / 2.0, h / 2.0])
    return matrix


def motion(kind: str, n_frames: int, src_size: Tuple[int, int],
           canvas: Tuple[int, int] = CANVAS) -> List[np.ndarray]:
    """Per-frame matrices of one photo for ``kind`` in ``KINDS``."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    t = np.linspace(0.0, 1.0, n_frames)
    base = BASE_FILL * canvas[1] / max(src_size)
    cx, cy = canvas[0] / 2.0, canvas[1] / 2.0
    s = ease(t)
    if kind == "pan":  # 0.25 canvas widths to either side and back, a little vertical drift
        xs, ys = cx + 0.25 * canvas[0] * np.sin(2 * np.pi * t), cy + 0.08 * canvas[1] * s
        return [similarity((x, y), base, 0.0, src_size) for x, y in zip(xs, ys)]
    if kind == "zoom":  # 0.6x -> 1.4x of the base size and back
        scales = base * (0.6 + 0.8 * s)
        return [similarity((cx, cy), sc, 0.0, src_size) for sc in scales]
    if kind == "rotate":  # up to 90 degrees and back
        return [similarity((cx, cy), base, 90.0 * a, src_size) for a in s]
    # shake: two fast cycles of pan, zoom and rotation together (a hand-held camera)
    w = 2 * np.pi * 2 * t
    return [similarity((cx + 0.15 * canvas[0] * np.sin(wi), cy + 0.1 * canvas[1] * np.sin(2 * wi)),
                       base * (1.0 + 0.25 * np.sin(wi)), 30.0 * np.sin(wi), src_size)
            for wi in w]


def approach(n_frames: int, sizes: Sequence[Tuple[int, int]],
             canvas: Tuple[int, int] = CANVAS) -> List[List[np.ndarray]]:
    """Matrices of two photos starting at the canvas' sides, meeting near the middle and
    going back (hands come close but their photos do not overlap)."""
    t = np.linspace(0.0, 1.0, n_frames)
    s = ease(t)
    out = []
    for side, size in zip((-1.0, 1.0), sizes):
        scale = 0.75 * BASE_FILL * canvas[1] / max(size)
        half = 0.5 * scale * size[0]
        far, near = canvas[0] / 2.0 + side * (canvas[0] / 2.0 - half - 4), canvas[0] / 2.0 + side * (half + 2)
        xs = far + (near - far) * s
        ys = canvas[1] / 2.0 + side * 0.1 * canvas[1] * np.sin(2 * np.pi * t)
        out.append([similarity((x, y), scale, 0.0, size) for x, y in zip(xs, ys)])
    return out


def side_by_side(n_frames: int, sizes: Sequence[Tuple[int, int]],
                 canvas: Tuple[int, int] = CANVAS, drift_px: float = 20.0) -> List[List[np.ndarray]]:
    """Matrices of two photos, each filling 90 % of its half of the canvas, drifting slowly
    (``drift_px`` up and down, in opposite phase): two large, always visible hands."""
    t = np.linspace(0.0, 2 * np.pi, n_frames)
    out = []
    for side, size in zip((0.25, 0.75), sizes):
        scale = 0.9 * min(canvas[0] / 2 / size[0], canvas[1] / size[1])
        sign = 1.0 if side < 0.5 else -1.0
        out.append([similarity((side * canvas[0], canvas[1] / 2 + sign * drift_px * np.sin(a)),
                               scale, 0.0, size) for a in t])
    return out


def render(layers: Sequence[Layer], index: int,
           canvas: Tuple[int, int] = CANVAS) -> Tuple[np.ndarray, List[GtHand]]:
    """Frame ``index``: ``(H, W, 3)`` uint8 RGB and the GT hands on it."""
    frame = np.empty((canvas[1], canvas[0], 3), np.uint8)
    frame[:] = BACKGROUND
    hands: List[GtHand] = []
    for layer in layers:
        matrix = layer.matrices[index]
        warped = cv2.warpAffine(layer.image, matrix, canvas, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        mask = cv2.warpAffine(np.full(layer.image.shape[:2], 255, np.uint8), matrix, canvas,
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        frame = (alpha * warped + (1.0 - alpha) * frame).astype(np.uint8)
        hands += [transform_hand(matrix, gt, canvas) for gt in layer.hands]
    return frame, hands


def frames(layers: Sequence[Layer], canvas: Tuple[int, int] = CANVAS
           ) -> Iterator[Tuple[np.ndarray, List[GtHand]]]:
    """Every frame of a sequence, in order."""
    for index in range(len(layers[0].matrices)):
        yield render(layers, index, canvas)


def paste(image: np.ndarray, hands: List[GtHand], canvas: Tuple[int, int], scale: float,
          centre: Tuple[float, float]) -> Tuple[np.ndarray, List[GtHand]]:
    """One still frame: ``image`` scaled by ``scale`` with its middle at ``centre`` on a grey
    canvas (small hands in a large frame)."""
    size = (image.shape[1], image.shape[0])
    layer = Layer(image, hands, [similarity(centre, scale, 0.0, size)])
    return render([layer], 0, canvas)
