"""MediaPipe palm detector (``palm_detection_full``) on ONNX Runtime: image -> palm detections.

Pipeline, as in MediaPipe's palm_detection graph: letterbox the RGB image to 192x192 in [0, 1],
run the SSD model, decode the 2016 anchor-relative boxes and 7 keypoints, keep scores above
``min_score``, merge overlapping boxes with weighted NMS and undo the letterbox.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from hand_perception.core.models import runtime
from hand_perception.core.options import require_choice, require_int, require_range

_LOG = logging.getLogger(__name__)

INPUT_SIZE = 192
NUM_PALM_KEYPOINTS = 7
#: SSD anchor layers: (stride, anchors per cell). MediaPipe's 4 layers with strides 8, 16, 16, 16
#: and 2 anchors each; layers of equal stride share one grid, hence 6 anchors per 16-px cell.
ANCHOR_LAYERS: Tuple[Tuple[int, int], ...] = ((8, 2), (16, 6))
SCORE_CLIP = 100.0
#: How a frame shrinks to the detector input (see ``letterbox``).
RESAMPLING: Tuple[str, ...] = ("area", "mediapipe")


@dataclass
class PalmDetectorOptions:
    """Options of ``PalmDetector``; YAML section ``palm_detector`` of ``config/models.yaml``."""

    min_score: float = 0.5  # MediaPipe's default min detection confidence
    nms_iou: float = 0.3  # boxes overlapping more are merged
    max_detections: int = 10  # 0: unlimited
    model_dir: str = ""  # empty: runtime.resolve_model_dir's search order
    providers: Tuple[str, ...] = ("tensorrt", "cuda", "cpu")
    num_threads: int = 0  # intra-op threads, 0: one per core (runtime.create_session)
    thread_pool: str = "shared"  # "shared" or "own" (runtime._set_threads)
    max_batch: int = 4  # TensorRT profile bound
    resampling: str = "area"  # how the frame shrinks to 192x192: "area" or "mediapipe"

    def __post_init__(self) -> None:
        require_choice("resampling", self.resampling, RESAMPLING)
        require_range("min_score", self.min_score, 0.0, 1.0)
        require_range("nms_iou", self.nms_iou, 0.0, 1.0)
        require_int("max_detections", self.max_detections, 0)
        require_int("num_threads", self.num_threads, 0)
        require_choice("thread_pool", self.thread_pool, runtime.THREAD_POOLS)
        require_int("max_batch", self.max_batch, 1)
        if not isinstance(self.model_dir, str):
            raise TypeError(f"model_dir must be a string, got {self.model_dir!r}")
        self.providers = runtime.validate_providers(self.providers)


@dataclass
class PalmDetection:
    """One palm: ``score`` in [0, 1]; ``box`` ``(4,)`` float32 xmin, ymin, xmax, ymax image px;
    ``keypoints`` ``(7, 2)`` float32 image px (0: wrist centre, 2: middle-finger MCP)."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray


@dataclass
class PalmDetectorResult:
    """Palm detections of one image, highest score first (empty list when none)."""

    detections: List[PalmDetection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.detections)


def generate_anchors() -> np.ndarray:
    """``(2016, 2)`` float32 anchor centres (x, y) normalised to [0, 1]; all anchors are 1x1."""
    grids = []
    for stride, per_cell in ANCHOR_LAYERS:
        cells = INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = (np.stack([xs, ys], axis=-1).reshape(-1, 1, 2) + 0.5) / cells
        grids.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(grids).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray,
           anchors: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode model outputs of one image.

    ``raw_boxes`` ``(2016, 18)``: cx, cy, w, h then 7 (x, y), in input px relative to anchors;
    ``raw_scores`` ``(2016,)`` logits. Returns scores ``(2016,)``, boxes ``(2016, 4)`` xmin,
    ymin, xmax, ymax and keypoints ``(2016, 7, 2)``, normalised to the 192x192 input.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -SCORE_CLIP, SCORE_CLIP)))
    centre = raw_boxes[:, :2] / INPUT_SIZE + anchors
    half = raw_boxes[:, 2:4] / INPUT_SIZE / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw_boxes[:, 4:].reshape(-1, NUM_PALM_KEYPOINTS, 2) / INPUT_SIZE + anchors[:, None]
    return scores, boxes, keypoints


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of ``box`` ``(4,)`` with each of ``boxes`` ``(N, 4)`` (xmin, ymin, xmax, ymax)."""
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float, max_detections: int = 0
                 ) -> List[Tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's weighted NMS: each top-scoring box absorbs boxes overlapping it by more than
    ``iou_threshold``; box and keypoints become the score-weighted mean, the score stays the top
    one. Returns (score, box (4,), keypoints (K, 2)) tuples, best first."""
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size and (max_detections <= 0 or len(kept) < max_detections):
        absorbed = iou(boxes[order[0]], boxes[order]) > iou_threshold
        absorbed[0] = True  # the top box always leaves the queue, even when degenerate
        group = order[absorbed]
        weights = scores[group] / scores[group].sum()
        kept.append((float(scores[order[0]]), weights @ boxes[group],
                     np.tensordot(weights, keypoints[group], axes=1)))
        order = order[~absorbed]
    return kept


def letterbox(image: np.ndarray, resampling: str = "area"
              ) -> Tuple[np.ndarray, Tuple[float, float, float, float]]:
    """Letterbox an RGB uint8 image to ``(192, 192, 3)`` float32 in [0, 1] (centred, zero pad).

    ``resampling``: ``"area"`` averages the pixels each input cell covers (no aliasing when a
    large frame shrinks ~3x); ``"mediapipe"`` samples bilinearly at MediaPipe's grid (its
    ImageToTensor maps the square ROI's corners onto the tensor's corners), which reproduces
    MediaPipe's detections frame for frame (bench/eval_hand_tracking.py; see README).
    Returns the tensor and (scale_x, scale_y, pad_x, pad_y): input px = image px * scale + pad.
    """
    height, width = image.shape[:2]
    if resampling == "mediapipe":
        side = max(height, width)
        scale = INPUT_SIZE / side
        pad_x, pad_y = (side - width) / 2 * scale, (side - height) / 2 * scale
        matrix = np.array([[scale, 0.0, pad_x], [0.0, scale, pad_y]])
        tensor = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT).astype(np.float32) / 255.0
        return tensor, (scale, scale, pad_x, pad_y)
    scale = INPUT_SIZE / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    # INTER_AREA avoids aliasing when shrinking large frames; linear when enlarging.
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    pad_x, pad_y = (INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2
    tensor = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    tensor[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized.astype(np.float32) / 255.0
    return tensor, (new_w / width, new_h / height, float(pad_x), float(pad_y))


def check_image(image: np.ndarray, name: str = "image") -> None:
    """Raise ``ValueError`` unless ``image`` is an ``(H, W, 3)`` uint8 array with H, W > 0."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} dtype must be uint8 (RGB), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} shape must be (H, W, 3), got {image.shape}")


class PalmDetector:
    """Palm detector; one ONNX Runtime session, reusable across images and threads."""

    def __init__(self, options: PalmDetectorOptions = PalmDetectorOptions()) -> None:
        self.options = options
        path = runtime.resolve_model_dir(options.model_dir or None) / runtime.PALM_MODEL
        self.session = runtime.create_session(
            path, (INPUT_SIZE, INPUT_SIZE, 3), options.providers, options.num_threads,
            options.max_batch, thread_pool=options.thread_pool)
        self.anchors = generate_anchors()

    def run_raw(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Raw model outputs for ``(N, 192, 192, 3)`` float32 in [0, 1]: regressors
        ``(N, 2016, 18)`` and logits ``(N, 2016, 1)``."""
        regressors, logits = self.session.run(None, {"input": np.ascontiguousarray(batch)})
        return regressors, logits

    def process(self, image: np.ndarray) -> PalmDetectorResult:
        """Detect palms in one ``(H, W, 3)`` uint8 RGB image."""
        return self.process_batch([image])[0]

    def process_batch(self, images: Sequence[np.ndarray]) -> List[PalmDetectorResult]:
        """Detect palms in several images with one session call; one result per image."""
        if not images:
            return []
        for k, image in enumerate(images):
            check_image(image, f"images[{k}]")
        tensors, transforms = zip(*(letterbox(image, self.options.resampling)
                                    for image in images))
        regressors, logits = self.run_raw(np.stack(tensors))
        return [self._postprocess(regressors[k], logits[k, :, 0], transforms[k])
                for k in range(len(images))]

    def _postprocess(self, raw_boxes: np.ndarray, raw_scores: np.ndarray,
                     transform: Tuple[float, float, float, float]) -> PalmDetectorResult:
        scores, boxes, keypoints = decode(raw_boxes, raw_scores, self.anchors)
        keep = scores >= self.options.min_score
        merged = weighted_nms(scores[keep], boxes[keep], keypoints[keep], self.options.nms_iou,
                              self.options.max_detections)
        scale, offset = np.array(transform[:2]), np.array(transform[2:])
        detections = []
        for score, box, kps in merged:
            box_px = (box.reshape(2, 2) * INPUT_SIZE - offset) / scale
            kps_px = (kps * INPUT_SIZE - offset) / scale
            detections.append(PalmDetection(score, box_px.reshape(4).astype(np.float32),
                                            kps_px.astype(np.float32)))
        _LOG.debug("%d palms above %.2f, %d after NMS", int(keep.sum()),
                   self.options.min_score, len(detections))
        return PalmDetectorResult(detections)
