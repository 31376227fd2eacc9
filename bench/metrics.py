"""Metric functions of the hand-tracking evaluation (bench/eval_hand_tracking.py).

Plain numpy, no package imports, so the tests (test/bench/test_eval_metrics.py) and the peer's
venv can use it. Keypoints are ``(21, 2)`` float px arrays in MediaPipe order; a missing
prediction is ``None`` and an unlabelled GT keypoint has ``visible == False``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

NUM_KEYPOINTS = 21
PCK_ALPHA = 0.2
#: A prediction counts as finding a GT hand when its mean error over the labelled keypoints is
#: below this fraction of the GT box's longer side (a wrong hand or a far-off guess is not).
MATCH_MAX_NORMALISED_ERROR = 0.5


@dataclass
class GtHand:
    """One annotated hand: ``keypoints`` ``(21, 2)`` float64 px, ``visible`` ``(21,)`` bool,
    ``box`` ``(4,)`` xmin, ymin, xmax, ymax px, ``handedness`` "left"/"right" or "" unknown."""

    keypoints: np.ndarray
    visible: np.ndarray
    box: np.ndarray
    handedness: str = ""

    @property
    def box_size(self) -> float:
        """Longer side of the GT box, px: the PCK normaliser."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def load_coco_hands(json_path: Path, handedness: str = "") -> Dict[str, List[GtHand]]:
    """Read a COCO-style keypoint file: file name -> its annotated hands."""
    data = json.loads(Path(json_path).read_text())
    names = {image["id"]: image["file_name"] for image in data["images"]}
    hands: Dict[str, List[GtHand]] = {name: [] for name in names.values()}
    for ann in data["annotations"]:
        raw = np.asarray(ann["keypoints"], np.float64).reshape(NUM_KEYPOINTS, 3)
        x, y, w, h = (float(v) for v in ann["bbox"])
        hands[names[ann["image_id"]]].append(GtHand(
            keypoints=raw[:, :2], visible=raw[:, 2] > 0,
            box=np.array([x, y, x + w, y + h]), handedness=handedness))
    return hands


def keypoint_errors(pred: np.ndarray, gt: GtHand) -> np.ndarray:
    """Pixel distance of each labelled keypoint, ``(n_visible,)``."""
    pred = np.asarray(pred, np.float64).reshape(NUM_KEYPOINTS, 2)
    return np.linalg.norm(pred[gt.visible] - gt.keypoints[gt.visible], axis=1)


def pck_counts(pred: np.ndarray, gt: GtHand, alpha: float = PCK_ALPHA) -> Tuple[int, int]:
    """(correct, labelled) keypoints: correct = error below ``alpha`` x the GT box's longer side."""
    errors = keypoint_errors(pred, gt)
    return int(np.sum(errors < alpha * gt.box_size)), int(errors.size)


def normalised_error(pred: np.ndarray, gt: GtHand) -> float:
    """Mean labelled-keypoint error divided by the GT box's longer side."""
    errors = keypoint_errors(pred, gt)
    return float(errors.mean() / max(gt.box_size, 1e-9)) if errors.size else np.inf


def match_hands(preds: Sequence[np.ndarray], gts: Sequence[GtHand],
                max_error: float = MATCH_MAX_NORMALISED_ERROR) -> List[Tuple[int, int]]:
    """Optimal one-to-one (pred index, gt index) pairs by normalised error, each below
    ``max_error``; unmatched GT hands are misses, unmatched predictions false positives."""
    if not preds or not gts:
        return []
    cost = np.array([[normalised_error(p, g) for g in gts] for p in preds])
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < max_error]


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine (cv2.warpAffine convention) to ``(N, 2)`` points."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]


def transform_hand(matrix: np.ndarray, gt: GtHand, image_size: Tuple[int, int]) -> GtHand:
    """The GT hand as seen after warping its image by ``matrix`` into an image of
    ``image_size`` (width, height): keypoints mapped, keypoints leaving the image unlabelled,
    box = the mapped box's axis-aligned hull (its longer side grows under rotation like the
    hand's extent does)."""
    keypoints = transform_points(matrix, gt.keypoints)
    x0, y0, x1, y1 = gt.box
    corners = transform_points(matrix, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    width, height = image_size
    inside = ((keypoints[:, 0] >= 0) & (keypoints[:, 0] < width)
              & (keypoints[:, 1] >= 0) & (keypoints[:, 1] < height))
    return GtHand(keypoints=keypoints, visible=gt.visible & inside,
                  box=np.concatenate([corners.min(axis=0), corners.max(axis=0)]),
                  handedness=gt.handedness)


def acceleration_norms(track: np.ndarray) -> np.ndarray:
    """Keypoint acceleration magnitudes, px/frame^2, of a ``(T, K, 2)`` track, flattened.

    Missing frames (or keypoints) are NaN; only second differences over three consecutive
    valid frames count."""
    track = np.asarray(track, np.float64)
    if track.shape[0] < 3:
        return np.zeros(0)
    accel = track[2:] - 2.0 * track[1:-1] + track[:-2]
    norms = np.linalg.norm(accel, axis=-1).ravel()
    return norms[np.isfinite(norms)]


def mean_acceleration(track: np.ndarray) -> float:
    """Mean keypoint acceleration magnitude (jitter), px/frame^2, of a ``(T, K, 2)`` track;
    NaN when no three consecutive valid frames exist."""
    norms = acceleration_norms(track)
    return float(norms.mean()) if norms.size else float("nan")


def count_id_switches(assigned_ids: Sequence[Optional[int]]) -> int:
    """ID switches of one GT hand: how often the matched track id differs from the id it had
    when last matched (frames where it is missed, ``None``, do not reset the memory)."""
    switches, last = 0, None
    for track_id in assigned_ids:
        if track_id is None:
            continue
        if last is not None and track_id != last:
            switches += 1
        last = track_id
    return switches


def count_label_flips(labels: Sequence[Optional[str]]) -> int:
    """Handedness flips of one GT hand: label changes between consecutive matched frames."""
    known = [label for label in labels if label]
    return sum(1 for a, b in zip(known[:-1], known[1:]) if a != b)


def handedness_correct(predicted: str, gt: GtHand) -> Optional[bool]:
    """Whether the label matches the GT's; ``None`` when the GT's handedness is unknown."""
    return None if not gt.handedness else predicted == gt.handedness


def summarise_errors(errors: Sequence[float]) -> float:
    """Mean of a list of pixel errors, NaN when empty."""
    return float(np.mean(errors)) if len(errors) else float("nan")
