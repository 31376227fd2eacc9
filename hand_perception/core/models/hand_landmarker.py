"""MediaPipe hand-landmark model (``hand_landmark_full``) on ONNX Runtime: ROIs -> 21 keypoints.

Every ROI is cut out of the image with one affine warp to a 224x224 RGB crop in [0, 1]; all
crops of a frame go through the model in one batched session call, and the crop-pixel outputs
are mapped back to image pixels with the inverse transform.

Model outputs (checked against the TFLite graph): ``landmarks`` 63 = 21 x (x, y, z) crop px
(z: relative depth, same scale as x, smaller = nearer the camera, origin near the wrist);
``presence`` and ``handedness`` already pass a sigmoid in the graph (probabilities);
``world_landmarks`` 63 = 21 x (x, y, z) metres, origin near the hand's geometric centre.

Handedness: MediaPipe labels the hand "Left" when the score is > 0.5, *assuming a mirrored
(selfie) image*; so for an ordinary, non-mirrored camera image a score > 0.5 means the
person's RIGHT hand (``keypoints.RIGHT``). This was verified on FreiHAND crops, which are all
right hands in non-mirrored images (scores > 0.9, see test_models_landmarker.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from hand_perception.core.keypoints import LEFT, NUM_KEYPOINTS, RIGHT
from hand_perception.core.models import runtime
from hand_perception.core.models.palm_detector import check_image
from hand_perception.core.models.roi import (HandRoi, apply_affine, crop_to_image_matrix,
                                             image_to_crop_matrix, to_pixel_centre_matrix)
from hand_perception.core.options import require_choice, require_int

_LOG = logging.getLogger(__name__)

INPUT_SIZE = 224
_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "zero": cv2.BORDER_CONSTANT}


@dataclass
class HandLandmarkerOptions:
    """Options of ``HandLandmarker``; YAML section ``hand_landmarker`` of ``config/models.yaml``."""

    border_mode: str = "replicate"  # MediaPipe's crop border; "zero" pads with black
    model_dir: str = ""  # empty: runtime.resolve_model_dir's search order
    providers: Tuple[str, ...] = ("tensorrt", "cuda", "cpu")
    num_threads: int = 0  # intra-op threads, 0: one per core (runtime.create_session)
    thread_pool: str = "shared"  # "shared" or "own" (runtime._set_threads)
    max_batch: int = 4  # TensorRT profile bound; larger batches are split

    def __post_init__(self) -> None:
        require_choice("border_mode", self.border_mode, tuple(_BORDERS))
        require_int("num_threads", self.num_threads, 0)
        require_choice("thread_pool", self.thread_pool, runtime.THREAD_POOLS)
        require_int("max_batch", self.max_batch, 1)
        if not isinstance(self.model_dir, str):
            raise TypeError(f"model_dir must be a string, got {self.model_dir!r}")
        self.providers = runtime.validate_providers(self.providers)


@dataclass
class HandLandmarkerResult:
    """Landmarks of N hands (N = number of ROIs given; N = 0 gives empty arrays).

    ``keypoints`` ``(N, 21, 3)`` float32: x, y image px, z relative depth in image px (scale of x).
    ``presence`` ``(N,)`` float32 probability that a hand is in the ROI.
    ``handedness`` ``(N,)`` float32 probability of the person's right hand (non-mirrored image).
    ``world_keypoints`` ``(N, 21, 3)`` float32 metres, hand-centred, axes rotated to the image's.
    """

    keypoints: np.ndarray = field(
        default_factory=lambda: np.zeros((0, NUM_KEYPOINTS, 3), np.float32))
    presence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    handedness: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    world_keypoints: np.ndarray = field(
        default_factory=lambda: np.zeros((0, NUM_KEYPOINTS, 3), np.float32))
    rois: List[HandRoi] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rois)

    def labels(self) -> List[str]:
        """``keypoints.RIGHT`` / ``keypoints.LEFT`` per hand (non-mirrored image)."""
        return [RIGHT if score > 0.5 else LEFT for score in self.handedness]


def crop(image: np.ndarray, roi: HandRoi, border_mode: int = cv2.BORDER_REPLICATE,
         out: Optional[np.ndarray] = None) -> np.ndarray:
    """``(224, 224, 3)`` float32 crop in [0, 1] of the rotated ``roi`` of an RGB uint8 image,
    written into ``out`` if given (a row of the model's batch: no float temporaries)."""
    matrix = to_pixel_centre_matrix(image_to_crop_matrix(roi, INPUT_SIZE))
    warped = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                            borderMode=border_mode)
    if out is None:
        out = np.empty((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    return np.divide(warped, np.float32(255.0), out=out)


def _check_roi(roi: HandRoi, k: int) -> None:
    if not isinstance(roi, HandRoi):
        raise ValueError(f"rois[{k}] must be a HandRoi, got {type(roi).__name__}")
    values = (roi.cx, roi.cy, roi.width, roi.height, roi.rotation)
    if not np.all(np.isfinite(values)) or roi.width <= 0 or roi.height <= 0:
        raise ValueError(f"rois[{k}]={roi!r} must be finite with positive size")


class HandLandmarker:
    """Hand-landmark model; one ONNX Runtime session with a dynamic batch dimension."""

    def __init__(self, options: HandLandmarkerOptions = HandLandmarkerOptions()) -> None:
        self.options = options
        path = runtime.resolve_model_dir(options.model_dir or None) / runtime.LANDMARK_MODEL
        self.session = runtime.create_session(
            path, (INPUT_SIZE, INPUT_SIZE, 3), options.providers, options.num_threads,
            options.max_batch, thread_pool=options.thread_pool)

    def run_raw(self, batch: np.ndarray) -> Tuple[np.ndarray, ...]:
        """Raw outputs for ``(N, 224, 224, 3)`` float32 in [0, 1]: landmarks ``(N, 63)``,
        presence ``(N, 1)``, handedness ``(N, 1)``, world landmarks ``(N, 63)``."""
        parts = []
        for start in range(0, len(batch), self.options.max_batch):
            chunk = np.ascontiguousarray(batch[start:start + self.options.max_batch])
            parts.append(self.session.run(None, {"input": chunk}))
        return tuple(np.concatenate(outs) for outs in zip(*parts))

    def process(self, image: np.ndarray, rois: Sequence[HandRoi]) -> HandLandmarkerResult:
        """Landmarks of every ROI (image px, see ``HandLandmarkerResult``) in one batched call."""
        check_image(image)
        if not rois:
            return HandLandmarkerResult()
        for k, roi in enumerate(rois):
            _check_roi(roi, k)
        border = _BORDERS[self.options.border_mode]
        batch = np.empty((len(rois), INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        for k, roi in enumerate(rois):
            crop(image, roi, border, out=batch[k])
        landmarks, presence, handedness, world = self.run_raw(batch)
        keypoints = landmarks.reshape(-1, NUM_KEYPOINTS, 3).astype(np.float64)
        world = world.reshape(-1, NUM_KEYPOINTS, 3)
        image_kps = np.empty_like(keypoints)
        world_out = np.empty_like(world)
        for k, roi in enumerate(rois):
            image_kps[k] = self._to_image(keypoints[k], roi)
            world_out[k] = _rotate_world(world[k], roi.rotation)
        return HandLandmarkerResult(image_kps.astype(np.float32), presence[:, 0].copy(),
                                    handedness[:, 0].copy(), world_out.astype(np.float32),
                                    list(rois))

    @staticmethod
    def _to_image(crop_kps: np.ndarray, roi: HandRoi) -> np.ndarray:
        """``(21, 3)`` crop px -> image px; z is scaled like x (MediaPipe's convention)."""
        out = np.empty_like(crop_kps)
        out[:, :2] = apply_affine(crop_to_image_matrix(roi, INPUT_SIZE), crop_kps[:, :2])
        out[:, 2] = crop_kps[:, 2] * roi.width / INPUT_SIZE
        return out


def _rotate_world(world: np.ndarray, rotation: float) -> np.ndarray:
    """Rotate ``(21, 3)`` world points about z by the ROI rotation so x, y follow the image axes
    (the model predicts them in the upright crop's frame), as MediaPipe does."""
    cos, sin = np.cos(rotation), np.sin(rotation)
    out = world.copy()
    out[:, 0] = world[:, 0] * cos - world[:, 1] * sin
    out[:, 1] = world[:, 0] * sin + world[:, 1] * cos
    return out
