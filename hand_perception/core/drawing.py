"""Draw tracked hands on an RGB image: skeleton, keypoints, handedness, track ID and score.

Used by ``hand-perception detect --annotate`` and the tracker node's annotated image. Colours
are RGB (the package's images are RGB, not OpenCV's BGR): one colour per finger for bones and
joints; the label's colour tells the handedness (right: orange, left: cyan). Joints that are not
visible (``joint_visible`` False) are drawn hollow.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from hand_perception.core.keypoints import BONES, FINGERS, NUM_KEYPOINTS, RIGHT

Colour = Tuple[int, int, int]
FINGER_COLOURS: Tuple[Colour, ...] = (
    (255, 64, 64), (255, 192, 0), (64, 224, 64), (0, 160, 255), (200, 80, 255))
PALM_COLOUR: Colour = (230, 230, 230)
HANDEDNESS_COLOURS = {RIGHT: (255, 140, 0), "left": (0, 220, 220)}


def _keypoint_colours() -> Tuple[Colour, ...]:
    colours = [PALM_COLOUR] * NUM_KEYPOINTS
    for colour, chain in zip(FINGER_COLOURS, FINGERS.values()):
        for index in chain:
            colours[index] = colour
    return tuple(colours)


KEYPOINT_COLOURS = _keypoint_colours()


def _scale(image: np.ndarray) -> float:
    """Text scale: 1 for a 640 px wide image."""
    return max(image.shape[:2]) / 640.0


def _marker_scale(image: np.ndarray, keypoints: np.ndarray) -> float:
    """Line/marker scale: the image's, but smaller for a small hand so its joints stay apart
    (1 for a hand 150 px long)."""
    finite = keypoints[np.isfinite(keypoints).all(axis=1)]
    hand_px = float(np.ptp(finite, axis=0).max()) if len(finite) else 0.0
    return min(_scale(image), max(hand_px / 150.0, 0.3))


def _point(xy: np.ndarray) -> Tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def draw_skeleton(image: np.ndarray, keypoints_2d: np.ndarray,
                  visible: Optional[np.ndarray] = None) -> None:
    """Draw one hand's bones and joints in place on ``image`` (H, W, 3) uint8 RGB.

    ``keypoints_2d`` (21, 2) px; non-finite joints and their bones are skipped; ``visible`` (21,)
    bool draws hidden joints hollow."""
    kp = np.asarray(keypoints_2d, np.float64).reshape(NUM_KEYPOINTS, 2)
    finite = np.isfinite(kp).all(axis=1)
    shown = np.ones(NUM_KEYPOINTS, bool) if visible is None else np.asarray(visible, bool)
    scale = _marker_scale(image, kp)
    thickness = max(1, int(round(2 * scale)))
    radius = max(2, int(round(3 * scale)))
    for parent, child in BONES:
        if finite[parent] and finite[child]:
            cv2.line(image, _point(kp[parent]), _point(kp[child]), KEYPOINT_COLOURS[child],
                     thickness, cv2.LINE_AA)
    for index in np.flatnonzero(finite):
        fill = -1 if shown[index] else max(1, thickness // 2)
        cv2.circle(image, _point(kp[index]), radius, KEYPOINT_COLOURS[index], fill, cv2.LINE_AA)


def hand_label(track_id: int, handedness: str, score: float) -> str:
    """Label text, e.g. ``"#3 right 0.97"``."""
    return f"#{track_id} {handedness} {score:.2f}"


def draw_label(image: np.ndarray, keypoints_2d: np.ndarray, text: str, colour: Colour) -> None:
    """Write ``text`` on a filled box above the hand's bounding box (clamped into the image)."""
    kp = np.asarray(keypoints_2d, np.float64).reshape(-1, 2)
    kp = kp[np.isfinite(kp).all(axis=1)]
    if not len(kp):
        return
    scale = _scale(image)
    font_scale, thickness = 0.5 * scale, max(1, int(round(scale)))
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    x = int(np.clip(kp[:, 0].min(), 0, max(image.shape[1] - width, 0)))
    y = int(np.clip(kp[:, 1].min() - 4 * scale, height + base, image.shape[0] - 1))
    cv2.rectangle(image, (x, y - height - base), (x + width, y + base // 2), colour, -1)
    cv2.putText(image, text, (x, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (0, 0, 0), thickness, cv2.LINE_AA)


def draw_hands(rgb: np.ndarray, hands: Sequence) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3) uint8 with every hand drawn.

    ``hands``: objects with ``keypoints_2d`` (21, 2) px, ``track_id``, ``handedness``
    (``"left"``/``"right"``), ``score`` and optionally ``joint_visible`` (21,) bool, such as
    ``hand_pipeline.PipelineHand``."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
            or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got "
                         f"{getattr(rgb, 'shape', type(rgb).__name__)} "
                         f"{getattr(rgb, 'dtype', '')}")
    out = np.ascontiguousarray(rgb.copy())
    for hand in hands:
        draw_skeleton(out, hand.keypoints_2d, getattr(hand, "joint_visible", None))
        colour = HANDEDNESS_COLOURS.get(hand.handedness, PALM_COLOUR)
        draw_label(out, hand.keypoints_2d,
                   hand_label(int(hand.track_id), str(hand.handedness), float(hand.score)),
                   colour)
    return out
