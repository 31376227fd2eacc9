"""Hand track management: stable IDs, handedness with hysteresis, per-joint visibility, smoothing.

Per frame the landmark model gives zero or more :class:`HandDetection` (from the previous tracks'
regions and, when asked for, from the palm detector). :class:`HandTracker` assigns them to tracks by
the Hungarian method on the mean keypoint distance normalised by hand size (never by list order),
creates tracks for unmatched detections (IDs increase monotonically and are never reused), drops
tracks after ``max_missed_frames`` frames without a match, and tells the pipeline whether the palm
detector must run on the next frame (``detector_needed``: fewer healthy tracks than ``max_hands``,
where a track is unhealthy if it was missed this frame or its presence is below
``redetect_presence``). A new track needs a detection of at least ``min_presence``; a live track
is kept up by detections down to ``keep_presence`` (hysteresis: a hand whose presence dips for a
frame, e.g. small or blurred, is not dropped and re-detected). Detections below are ignored.

Handedness: the model's score assumes a mirrored (selfie) image. The output label is the person's
anatomical hand, so for a non-mirrored camera (``image_is_mirrored=False``, the usual robot case)
the model's score is flipped. Each track keeps an exponential average of the evidence
``2 p_right - 1`` in [-1, 1] (weighted by presence); its label flips only after the evidence has
been beyond ``-margin`` on the other side for ``handedness_flip_frames`` consecutive frames.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from hand_perception.core.filters import OneEuroFilter, OneEuroOptions
from hand_perception.core.keypoints import LEFT, NUM_KEYPOINTS, RIGHT
from hand_perception.core.options import options_from_mapping, require_range

_LOG = logging.getLogger(__name__)
_NO_MATCH = 1e6


def _array(name: str, value: Any, shape: Tuple[int, ...], dtype=np.float32) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


@dataclass
class HandDetection:
    """One hand from the landmark model in one frame (inputs to :class:`HandTracker`).

    ``keypoints_2d`` (21, 2) float32 image px; ``presence`` and ``handedness_right`` in [0, 1], the
    latter as the model gives it (mirrored-image convention). Optional: ``keypoints_z`` (21,)
    relative depth in px scale; ``world_keypoints`` (21, 3) float32 m, hand-centred, camera axes;
    ``keypoints_camera`` (21, 3) float32 m in the camera optical frame (from lifting) with
    ``camera_valid`` (21,) bool; ``depth_residual_m`` (21,) measured minus expected depth (m,
    negative = something in front of the joint, NaN = no measurement).
    """

    keypoints_2d: np.ndarray
    presence: float
    handedness_right: float
    keypoints_z: Optional[np.ndarray] = None
    world_keypoints: Optional[np.ndarray] = None
    keypoints_camera: Optional[np.ndarray] = None
    camera_valid: Optional[np.ndarray] = None
    depth_residual_m: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        n = NUM_KEYPOINTS
        self.keypoints_2d = _array("keypoints_2d", self.keypoints_2d, (n, 2))
        require_range("presence", float(self.presence), 0.0, 1.0)
        require_range("handedness_right", float(self.handedness_right), 0.0, 1.0)
        for name, shape in (("keypoints_z", (n,)), ("world_keypoints", (n, 3)),
                            ("keypoints_camera", (n, 3)), ("depth_residual_m", (n,))):
            if getattr(self, name) is not None:
                setattr(self, name, _array(name, getattr(self, name), shape))
        if self.camera_valid is not None:
            self.camera_valid = _array("camera_valid", self.camera_valid, (n,), bool)


@dataclass
class HandTrackerOptions:
    """Parameters of :class:`HandTracker` (costs are in hand sizes; see module docstring)."""

    max_hands: int = 2
    max_missed_frames: int = 5
    min_presence: float = 0.5
    keep_presence: float = 0.3
    redetect_presence: float = 0.7
    max_match_cost: float = 0.5
    duplicate_cost: float = 0.15
    use_velocity_prediction: bool = True
    image_is_mirrored: bool = False
    handedness_ema_alpha: float = 0.3
    handedness_margin: float = 0.3
    handedness_flip_frames: int = 3
    edge_margin_px: float = 8.0
    occlusion_tolerance_m: float = 0.02
    occluded_confidence_factor: float = 0.3
    visibility_threshold: float = 0.5
    filter_2d: OneEuroOptions = field(
        default_factory=lambda: OneEuroOptions(min_cutoff=1.0, beta=0.1, d_cutoff=1.0))
    filter_3d: OneEuroOptions = field(
        default_factory=lambda: OneEuroOptions(min_cutoff=1.0, beta=5.0, d_cutoff=1.0))

    def __post_init__(self) -> None:
        for name in ("max_hands", "max_missed_frames", "handedness_flip_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        for name in ("min_presence", "keep_presence", "redetect_presence", "handedness_ema_alpha",
                     "handedness_margin",
                     "occluded_confidence_factor", "visibility_threshold"):
            require_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("max_match_cost", "duplicate_cost", "edge_margin_px", "occlusion_tolerance_m"):
            require_range(name, getattr(self, name), 1e-9)
        if self.keep_presence > self.min_presence:
            raise ValueError(f"keep_presence={self.keep_presence!r} must not exceed "
                             f"min_presence={self.min_presence!r}")
        for name in ("use_velocity_prediction", "image_is_mirrored"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("filter_2d", "filter_3d"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                setattr(self, name, options_from_mapping(OneEuroOptions, value))
            elif not isinstance(value, OneEuroOptions):
                raise TypeError(f"{name} must be OneEuroOptions or a mapping, got {value!r}")


@dataclass
class TrackedHand:
    """One tracked hand in one frame. Arrays are float32 unless noted; ``keypoints_2d`` (21, 2)
    px and ``world_keypoints`` (21, 3) m (hand-centred) are One-Euro smoothed; ``keypoints_camera``
    (21, 3) m, camera optical frame, smoothed, NaN where never measured, with ``camera_valid``
    (21,) bool. ``handedness`` is the anatomical hand (``"left"``/``"right"``) and
    ``handedness_confidence`` the evidence for it in [0, 1]. ``joint_confidence`` (21,) in [0, 1]
    and ``joint_visible`` (21,) bool; ``bbox_xyxy`` (4,) px of the raw keypoints."""

    track_id: int
    handedness: str
    handedness_confidence: float
    presence: float
    keypoints_2d: np.ndarray
    world_keypoints: np.ndarray
    keypoints_camera: np.ndarray
    camera_valid: np.ndarray
    joint_confidence: np.ndarray
    joint_visible: np.ndarray
    bbox_xyxy: np.ndarray
    age_frames: int
    is_new: bool


@dataclass
class HandTrackerResult:
    """Output of :meth:`HandTracker.process`: ``hands`` matched this frame (sorted by ID);
    ``coasting_ids`` alive but unmatched; ``lost_ids`` deleted this frame; ``detector_needed``
    tells the pipeline to run the palm detector on the next frame; ``redetect_ids`` the tracks
    that caused it (missed or low presence)."""

    stamp_s: float = float("nan")
    hands: List[TrackedHand] = field(default_factory=list)
    coasting_ids: List[int] = field(default_factory=list)
    lost_ids: List[int] = field(default_factory=list)
    detector_needed: bool = True
    redetect_ids: List[int] = field(default_factory=list)


def keypoint_bounds(keypoints_2d: np.ndarray) -> np.ndarray:
    """(4,) bounding box (x_min, y_min, x_max, y_max) px of (21, 2) keypoints, NaNs ignored.
    (fmin/fmax reductions: several times faster than nanmin/nanmax, which run many times per
    frame here.)"""
    return np.concatenate([np.fmin.reduce(keypoints_2d, axis=0),
                           np.fmax.reduce(keypoints_2d, axis=0)])


def hand_size_px(keypoints_2d: np.ndarray) -> float:
    """Hand size (px): the larger side of the keypoints' bounding box, at least 1 px."""
    bounds = keypoint_bounds(keypoints_2d)
    return float(max(np.max(bounds[2:] - bounds[:2]), 1.0))


def match_cost(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance between two (21, 2) keypoint sets (joints known in both) divided by their
    mean hand size; NaN if no joint is known in both."""
    dist = np.sqrt(np.square(a - b).sum(axis=1))
    dist = dist[np.isfinite(dist)]
    if not dist.size:
        return math.nan
    return float(dist.mean()) / (0.5 * (hand_size_px(a) + hand_size_px(b)))


class _Track:
    """State of one track: filters, handedness evidence, last raw keypoints for prediction."""

    def __init__(self, track_id: int, det: HandDetection, stamp_s: float, evidence: float,
                 opts: HandTrackerOptions) -> None:
        self.track_id = track_id
        self.filters = {name: OneEuroFilter(opts.filter_2d if name == "kp2d" else opts.filter_3d)
                        for name in ("kp2d", "world", "camera")}
        self.evidence = evidence
        self.is_right = evidence >= 0.0
        self.flip_count = 0
        self.age = 1
        self.missed = 0
        self.presence = det.presence
        self.raw_2d = det.keypoints_2d.astype(np.float64)
        self.velocity = np.zeros_like(self.raw_2d)
        self.stamp = stamp_s

    def predict(self, stamp_s: float, use_velocity: bool) -> np.ndarray:
        """Raw 2D keypoints extrapolated to ``stamp_s`` (px)."""
        if not use_velocity:
            return self.raw_2d
        return self.raw_2d + self.velocity * (stamp_s - self.stamp)

    def update_motion(self, det: HandDetection, stamp_s: float) -> None:
        kp = det.keypoints_2d.astype(np.float64)
        # Velocity only from consecutive frames: after a miss the old one is stale.
        self.velocity = ((kp - self.raw_2d) / (stamp_s - self.stamp) if self.missed == 0
                         else np.zeros_like(kp))
        self.raw_2d, self.stamp, self.presence = kp, stamp_s, det.presence
        self.missed = 0
        self.age += 1

    def update_handedness(self, evidence: float, weight: float, opts: HandTrackerOptions) -> None:
        self.evidence += opts.handedness_ema_alpha * weight * (evidence - self.evidence)
        against = -self.evidence if self.is_right else self.evidence
        self.flip_count = self.flip_count + 1 if against > opts.handedness_margin else 0
        if self.flip_count >= opts.handedness_flip_frames:
            _LOG.info("track %d handedness flipped to %s", self.track_id,
                      LEFT if self.is_right else RIGHT)
            self.is_right, self.flip_count = not self.is_right, 0


class HandTracker:
    """Track management over frames; see the module docstring. Not thread-safe."""

    def __init__(self, options: Optional[HandTrackerOptions] = None) -> None:
        self.options = options if options is not None else HandTrackerOptions()
        if not isinstance(self.options, HandTrackerOptions):
            raise TypeError(f"options must be HandTrackerOptions, got {self.options!r}")
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Drop all tracks (IDs keep increasing: a reset never reuses an ID)."""
        self._tracks: List[_Track] = []
        self._stamp: Optional[float] = None

    @property
    def track_ids(self) -> List[int]:
        """IDs of the live tracks."""
        return [t.track_id for t in self._tracks]

    def process(self, detections: Sequence[HandDetection], stamp_s: float,
                image_size: Tuple[int, int]) -> HandTrackerResult:
        """Update the tracks with this frame's detections, taken at ``stamp_s`` (s) in an image of
        ``image_size`` = (width, height) px. Raises ``ValueError`` (state unchanged) if
        ``stamp_s`` is not after the previous frame's; call :meth:`reset` to restart."""
        stamp_s = float(stamp_s)
        if self._stamp is not None and not stamp_s > self._stamp:
            raise ValueError(f"stamp {stamp_s!r} is not after the last frame's {self._stamp!r}")
        if len(image_size) != 2 or min(image_size) <= 0:
            raise ValueError(f"image_size must be (width, height) > 0, got {image_size!r}")
        self._stamp = stamp_s
        dets = self._suppress_duplicates(
            [d for d in detections if d.presence >= self.options.keep_presence])
        pairs, unmatched = self._assign(dets, stamp_s)
        hands = [self._update(track, dets[j], stamp_s, image_size, False) for track, j in pairs]
        matched_ids = {t.track_id for t, _ in pairs}
        lost = self._age_unmatched(matched_ids)
        hands += self._births([dets[j] for j in unmatched], pairs, dets, stamp_s, image_size)
        return self._result(stamp_s, hands, lost)

    def _suppress_duplicates(self, dets: List[HandDetection]) -> List[HandDetection]:
        # Detector and track regions can yield the same hand twice: keep the most present one.
        kept: List[HandDetection] = []
        for det in sorted(dets, key=lambda d: -d.presence):
            if all(match_cost(det.keypoints_2d, k.keypoints_2d) > self.options.duplicate_cost
                   for k in kept):
                kept.append(det)
        return kept

    def _assign(self, dets: List[HandDetection], stamp_s: float):
        """Hungarian assignment; returns ([(track, det index)], [unmatched det indices])."""
        if not self._tracks or not dets:
            return [], list(range(len(dets)))
        cost = np.full((len(self._tracks), len(dets)), _NO_MATCH)
        for i, track in enumerate(self._tracks):
            pred = track.predict(stamp_s, self.options.use_velocity_prediction)
            for j, det in enumerate(dets):
                c = match_cost(pred, det.keypoints_2d)
                if c <= self.options.max_match_cost:
                    cost[i, j] = c
        rows, cols = linear_sum_assignment(cost)
        pairs = [(self._tracks[r], c) for r, c in zip(rows, cols) if cost[r, c] < _NO_MATCH]
        used = {c for _, c in pairs}
        return pairs, [j for j in range(len(dets)) if j not in used]

    def _age_unmatched(self, matched_ids: set) -> List[int]:
        lost = []
        for track in self._tracks:
            if track.track_id not in matched_ids:
                track.missed += 1
        for track in [t for t in self._tracks if t.missed > self.options.max_missed_frames]:
            lost.append(track.track_id)
            self._tracks.remove(track)
        return lost

    def _births(self, dets: List[HandDetection], pairs, all_dets: List[HandDetection],
                stamp_s: float, image_size: Tuple[int, int]) -> List[TrackedHand]:
        """New tracks for unmatched detections, evicting coasting tracks when at ``max_hands``."""
        matched = [all_dets[j].keypoints_2d for _, j in pairs]
        born = []
        for det in sorted(dets, key=lambda d: -d.presence):
            if det.presence < self.options.min_presence:
                break  # sorted: the rest may only keep a live track up, not start one
            if any(match_cost(det.keypoints_2d, kp) <= self.options.max_match_cost
                   for kp in matched):
                continue  # overlaps a hand already tracked this frame: not a new hand
            if len(self._tracks) >= self.options.max_hands and not self._evict_coasting():
                break
            track = _Track(self._next_id, det, stamp_s, self._evidence(det), self.options)
            self._next_id += 1
            self._tracks.append(track)
            matched.append(det.keypoints_2d)
            born.append(self._update(track, det, stamp_s, image_size, True))
        return born

    def _evict_coasting(self) -> bool:
        coasting = [t for t in self._tracks if t.missed > 0]
        if not coasting:
            return False
        self._tracks.remove(max(coasting, key=lambda t: t.missed))
        return True

    def _evidence(self, det: HandDetection) -> float:
        """Anatomical right-hand evidence in [-1, 1] from the model's (mirrored) score."""
        p_right = float(det.handedness_right)
        if not self.options.image_is_mirrored:
            p_right = 1.0 - p_right  # the model assumes a selfie view: swap for a plain camera
        return 2.0 * p_right - 1.0

    def _update(self, track: _Track, det: HandDetection, stamp_s: float,
                image_size: Tuple[int, int], is_new: bool) -> TrackedHand:
        if not is_new:
            track.update_motion(det, stamp_s)
            track.update_handedness(self._evidence(det), det.presence, self.options)
        kp2d = track.filters["kp2d"].process(det.keypoints_2d, stamp_s).value
        world = self._filter_optional(track, "world", det.world_keypoints, stamp_s)
        camera = self._filter_optional(track, "camera", self._masked_camera(det), stamp_s)
        conf = self.joint_confidence(det, image_size)
        sign = 1.0 if track.is_right else -1.0
        return TrackedHand(
            track_id=track.track_id, handedness=RIGHT if track.is_right else LEFT,
            handedness_confidence=float(np.clip(0.5 * (1.0 + sign * track.evidence), 0.0, 1.0)),
            presence=float(det.presence), keypoints_2d=kp2d.astype(np.float32),
            world_keypoints=world, keypoints_camera=camera,
            camera_valid=np.isfinite(camera).all(axis=1), joint_confidence=conf,
            joint_visible=conf >= self.options.visibility_threshold,
            bbox_xyxy=keypoint_bounds(det.keypoints_2d),
            age_frames=track.age, is_new=is_new)

    @staticmethod
    def _masked_camera(det: HandDetection) -> Optional[np.ndarray]:
        if det.keypoints_camera is None:
            return None
        if det.camera_valid is None:
            return det.keypoints_camera
        return np.where(det.camera_valid[:, None], det.keypoints_camera, np.nan)

    @staticmethod
    def _filter_optional(track: _Track, name: str, value: Optional[np.ndarray],
                         stamp_s: float) -> np.ndarray:
        nan = np.full((NUM_KEYPOINTS, 3), np.nan, dtype=np.float32)
        filt = track.filters[name]
        if value is None:
            # Nothing this frame: report the held estimate, without advancing the filter.
            return filt.current.astype(np.float32) if filt.initialised else nan
        return filt.process(value, stamp_s).value.astype(np.float32)

    def joint_confidence(self, det: HandDetection, image_size: Tuple[int, int]) -> np.ndarray:
        """Per-joint confidence (21,) float32 in [0, 1]: presence, times a factor falling linearly
        from 1 at the image border to 0 at ``edge_margin_px`` outside it, times
        ``occluded_confidence_factor`` where the measured depth is more than
        ``occlusion_tolerance_m`` in front of the joint (something occludes it)."""
        opts = self.options
        kp = det.keypoints_2d.astype(np.float64)
        size = np.asarray(image_size, dtype=np.float64)
        outside = np.maximum(np.maximum(-kp, kp - size), 0.0).max(axis=1)
        inside = np.clip(1.0 - outside / opts.edge_margin_px, 0.0, 1.0)
        inside[~np.isfinite(kp).all(axis=1)] = 0.0
        occluded = np.zeros(NUM_KEYPOINTS, dtype=bool)
        if det.depth_residual_m is not None:
            with np.errstate(invalid="ignore"):
                occluded = det.depth_residual_m < -opts.occlusion_tolerance_m
        factor = np.where(occluded, opts.occluded_confidence_factor, 1.0)
        return (det.presence * inside * factor).astype(np.float32)

    def _result(self, stamp_s: float, hands: List[TrackedHand],
                lost: List[int]) -> HandTrackerResult:
        seen = {h.track_id for h in hands}
        redetect = [t.track_id for t in self._tracks
                    if t.track_id not in seen or t.presence < self.options.redetect_presence]
        healthy = len(self._tracks) - len(redetect)
        return HandTrackerResult(
            stamp_s=stamp_s, hands=sorted(hands, key=lambda h: h.track_id),
            coasting_ids=sorted(t.track_id for t in self._tracks if t.track_id not in seen),
            lost_ids=lost, detector_needed=healthy < self.options.max_hands, redetect_ids=redetect)
