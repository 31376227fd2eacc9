"""The hand-tracking pipeline: RGB (+ optional depth) frames -> tracked 21-keypoint hands.

Per frame (MediaPipe Hands' tracking scheme, with a real tracker behind it):

1. ROIs: every live track's rotated ROI from its previous raw landmarks (``roi_from_landmarks``).
   The palm detector runs only when needed: the tracker asked for it (fewer healthy tracks than
   ``max_hands``), every ``redetect_interval_frames`` frames (to catch new hands), after a reset,
   or on every frame in ``static_image_mode``. When the single letterboxed pass finds fewer hands
   than wanted, a tiled pass looks for small hands (core/detection.py); its candidates must be
   confirmed by the landmark presence (``tiled_detection.confirm_presence``). With
   ``search_between_frames`` the periodic search for further hands leaves ``process`` for
   ``search_step`` calls between frames (one detector run each); its palms join the next frame.
2. Landmarks of all ROIs in ONE batched ``HandLandmarker`` call. In video, a tracking ROI whose
   hand faded below ``hand_tracker.keep_presence`` is retried once ``retry_roi_scale`` times
   larger (a fast zoom or shake leaves the last ROI too tight), and a detector ROI must pass a
   second crop around its own landmarks before it counts (``confirm_new_hands``: hand-like
   textures pass the palm detector, not the tight crop).
3. Metric 3D (``HandLifter``): from the aligned depth image when given, else monocular with the
   intrinsics; without intrinsics ``keypoints_3d`` is NaN and ``depth_source`` is ``"none"``.
4. ``HandTracker``: stable IDs by assignment, handedness with hysteresis (the model's score is
   read per ``image_is_mirrored``), per-joint confidence and visibility, One-Euro smoothing.
   Latency of the smoothing (core/filters.py ``one_euro_lag_s``): ``1/(2 pi (min_cutoff + beta
   |v|))``: with config/tracking.yaml's values 159 ms for a hand at rest, 3 ms for 2D keypoints
   moving at 500 px/s and 45 ms for 3D keypoints at 0.5 m/s.
5. ``wrist_pose`` (Hand.msg): origin keypoint 0 (camera frame, NaN without metric 3D), rotation
   from the smoothed world keypoints (camera axes, so known even without intrinsics) by
   ``core/wrist_pose.py``: x towards keypoint 9 in the palm plane, z out of the palm.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from hand_perception.core.camera import CameraIntrinsics
from hand_perception.core.detection import DeferredPalmSearch, PalmSearch, PalmSearchResult
# HandPipelineOptions and load_pipeline_options are part of this module's interface
from hand_perception.core.hand_pipeline_options import (  # noqa: F401
    HandPipelineOptions, load_pipeline_options)
from hand_perception.core.keypoints import NUM_KEYPOINTS
from hand_perception.core.lifting import HandLifter, LiftingResult
from hand_perception.core.models.hand_landmarker import HandLandmarker
from hand_perception.core.models.palm_detector import PalmDetector, check_image
from hand_perception.core.models.roi import (HandRoi, overlap_of_smaller, roi_bounding_box,
                                             roi_from_landmarks, roi_from_palm)
from hand_perception.core.retargeting.wrist_frame import WristFrameEstimator
from hand_perception.core.tracking import HandDetection, HandTracker, keypoint_bounds
from hand_perception.core.wrist_pose import wrist_rotation

_LOG = logging.getLogger(__name__)
TIMING_KEYS = ("detect", "landmark", "track", "lift", "total")
#: A palm ROI overlapping a healthy track's ROI by more than this (IoU of their bounding boxes)
#: is the same hand: it is not sent to the landmark model again.
_SAME_HAND = 0.5  # overlap_of_smaller above which a palm is a hand already tracked


@dataclass
class PipelineHand:
    """One tracked hand in one frame; see the pipeline contract and msg/Hand.msg.

    ``keypoints_2d`` (21, 2) float32 px; ``keypoints_3d`` (21, 3) float32 m, camera optical frame,
    NaN when unknown; ``world_keypoints`` (21, 3) float32 m, hand-centred, camera axes;
    ``joint_confidence`` (21,) float32 [0, 1]; ``joint_visible`` (21,) bool; ``wrist_pose``
    (4, 4) float64 camera-frame pose of the wrist, translation NaN when unknown."""

    track_id: int
    handedness: str
    handedness_score: float
    score: float
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    depth_source: str
    world_keypoints: np.ndarray
    joint_confidence: np.ndarray
    joint_visible: np.ndarray
    wrist_pose: np.ndarray


@dataclass
class HandPipelineResult:
    """All hands of one frame (sorted by track ID), the frame's stamp (s), whether the palm
    detector ran, and per-stage wall times (ms, keys ``TIMING_KEYS``)."""

    hands: List[PipelineHand] = field(default_factory=list)
    stamp_s: float = float("nan")
    detector_ran: bool = False
    timings_ms: Dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_KEYS, 0.0))


@dataclass
class _Roi:
    """A ROI for the landmark model: where it came from and what presence it must reach."""

    roi: HandRoi
    source: str  # "track" | "palm" | "tiles"
    min_presence: float


@dataclass
class _Measured:
    """One landmark-model output kept for the tracker, with its lifting and ROI source."""

    detection: HandDetection
    keypoints_raw: np.ndarray  # (21, 3) px, for the next frame's tracking ROI
    lift: LiftingResult


class HandPipeline:
    """Tracks hands over a stream of frames; not thread-safe (one instance per stream)."""

    def __init__(self, options: Optional[HandPipelineOptions] = None) -> None:
        self.options = options if options is not None else HandPipelineOptions()
        if not isinstance(self.options, HandPipelineOptions):
            raise TypeError(f"options must be HandPipelineOptions, got {self.options!r}")
        self.detector = PalmDetector(self.options.palm_detector)
        self.landmarker = HandLandmarker(self.options.hand_landmarker)
        self.tracker = HandTracker(self.options.hand_tracker)
        self.lifter = HandLifter(self.options.hand_lifter)
        tiled = self.options.tiled_detection
        self._tiling = (tiled if self.options.static_image_mode
                        else dataclasses.replace(tiled, grids=tiled.video_grids))
        self._search = DeferredPalmSearch()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and the last stamp (e.g. between unrelated images)."""
        self.tracker.reset()
        self._stamp: Optional[float] = None
        self._frame = 0
        self._last_detect_frame: Optional[int] = None
        self._last_tiled_frame: Optional[int] = None
        self._detector_needed = True
        self._search.cancel()
        self._track_rois: Dict[int, Tuple[HandRoi, float]] = {}
        self._wrist_frames: Dict[int, WristFrameEstimator] = {}

    def process(self, rgb: np.ndarray, stamp_s: float,
                intrinsics: Optional[CameraIntrinsics] = None,
                depth_m: Optional[np.ndarray] = None) -> HandPipelineResult:
        """Track hands in ``rgb`` (H, W, 3) uint8 taken at ``stamp_s`` (s, increasing).

        ``intrinsics`` of this image enable metric ``keypoints_3d``; ``depth_m`` (H, W) float32 m
        (NaN/0 holes; uint16 in ``hand_lifter.depth_unit_m``) aligned to ``rgb`` makes them
        measured. Raises ``ValueError`` naming the bad value, with the state unchanged."""
        start = time.perf_counter()
        stamp_s = self._check_inputs(rgb, stamp_s, intrinsics, depth_m)
        timings = dict.fromkeys(TIMING_KEYS, 0.0)
        tick = time.perf_counter()
        new_rois, detector_ran = self._new_hand_rois(rgb)
        rois = self._tracking_rois() + new_rois
        timings["detect"] = (time.perf_counter() - tick) * 1e3
        tick = time.perf_counter()
        landmarks = self.landmarker.process(rgb, [r.roi for r in rois])
        landmarks = self._confirm_new(rgb, rois, self._retry_faded(rgb, rois, landmarks))
        timings["landmark"] = (time.perf_counter() - tick) * 1e3
        tick = time.perf_counter()
        K = None if intrinsics is None else intrinsics.matrix
        measured = [self._measure(landmarks, k, K, depth_m)
                    for k, r in enumerate(rois) if landmarks.presence[k] >= r.min_presence]
        timings["lift"] = (time.perf_counter() - tick) * 1e3
        tick = time.perf_counter()
        tracked = self.tracker.process([m.detection for m in measured], stamp_s,
                                       (rgb.shape[1], rgb.shape[0]))
        hands = [self._hand(t, self._matching(t, measured), intrinsics is not None)
                 for t in tracked.hands]
        timings["track"] = (time.perf_counter() - tick) * 1e3
        self._advance(stamp_s, tracked, measured)
        self._start_search(rgb)
        timings["total"] = (time.perf_counter() - start) * 1e3
        return HandPipelineResult(hands, stamp_s, detector_ran, timings)

    def _check_inputs(self, rgb: np.ndarray, stamp_s: float,
                      intrinsics: Optional[CameraIntrinsics],
                      depth_m: Optional[np.ndarray]) -> float:
        check_image(rgb, "rgb")
        if isinstance(stamp_s, bool) or not isinstance(stamp_s, (int, float, np.floating)):
            raise ValueError(f"stamp_s must be a number of seconds, got {stamp_s!r}")
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp_s={stamp_s!r} is not finite")
        if self._stamp is not None and not stamp_s > self._stamp:
            raise ValueError(f"stamp_s={stamp_s!r} is not after the last frame's {self._stamp!r}")
        height, width = rgb.shape[:2]
        if intrinsics is not None:
            if not isinstance(intrinsics, CameraIntrinsics):
                raise ValueError(f"intrinsics must be CameraIntrinsics, got {intrinsics!r}")
            if (intrinsics.width, intrinsics.height) != (width, height):
                raise ValueError(f"intrinsics are for {intrinsics.width}x{intrinsics.height}, "
                                 f"the image is {width}x{height}")
        if depth_m is not None:
            self._check_depth(depth_m, (height, width), intrinsics)
        return stamp_s

    @staticmethod
    def _check_depth(depth_m: np.ndarray, shape: Tuple[int, int],
                     intrinsics: Optional[CameraIntrinsics]) -> None:
        if not isinstance(depth_m, np.ndarray) or depth_m.shape != shape:
            raise ValueError(f"depth_m shape {getattr(depth_m, 'shape', depth_m)!r} differs from "
                             f"the image's {shape}")
        if depth_m.dtype.kind != "f" and depth_m.dtype != np.uint16:
            raise ValueError(f"depth_m dtype must be float (m) or uint16, got {depth_m.dtype}")
        if intrinsics is None:
            raise ValueError("depth_m given without intrinsics: depth needs the camera's K")

    def _tracking_rois(self) -> List[_Roi]:
        if self.options.static_image_mode:
            return []
        floor = self.options.hand_tracker.keep_presence
        return [_Roi(roi, "track", floor) for roi, _ in self._track_rois.values()]

    def _further_search_due(self) -> bool:
        """The periodic search for hands beyond those tracked is due on this frame."""
        interval = self.options.redetect_interval_frames
        return (interval > 0 and len(self._track_rois) < self.options.max_hands
                and self._frame - self._last_detect_frame >= interval)

    def _should_detect(self) -> bool:
        """The detector runs inside this frame (else a deferred search may be pending)."""
        if (self.options.static_image_mode or self._detector_needed
                or self._last_detect_frame is None):
            return True
        return not self.options.search_between_frames and self._further_search_due()

    def _new_palm_search(self, rgb: np.ndarray, windows_per_step: int) -> PalmSearch:
        """A search for palms that no healthy track covers yet, with the tiled pass when hands
        are missing and a sweep is due; counts as this frame's detector run."""
        opts = self.options
        healthy = [roi for roi, presence in self._track_rois.values()
                   if presence >= opts.hand_tracker.redetect_presence]
        if opts.static_image_mode:
            healthy = []
        boxes = np.array([roi_bounding_box(r) for r in healthy]).reshape(-1, 4)

        def covered(det) -> bool:
            box = roi_bounding_box(roi_from_palm(det.box, det.keypoints))
            return bool(boxes.size) and float(np.max(overlap_of_smaller(box, boxes))) > _SAME_HAND

        tiled = self._tiling
        # A tiled sweep costs one detector run per tile: in video it stalls the frame it runs
        # on, so there it runs at most every interval_frames (0: never); photos always get it.
        allow_tiles = opts.static_image_mode or (tiled.interval_frames > 0 and (
            self._last_tiled_frame is None
            or self._frame - self._last_tiled_frame >= tiled.interval_frames))
        self._last_detect_frame = self._frame
        wanted = max(opts.max_hands - len(healthy), 0)
        return PalmSearch(self.detector, rgb, wanted, tiled, allow_tiles, covered,
                          windows_per_step)

    def _detector_rois(self, rgb: np.ndarray) -> List[_Roi]:
        """ROIs of new palms found in this frame (a pending between-frames search is dropped)."""
        self._search.cancel()
        return self._palm_rois(self._new_palm_search(rgb, self.detector.options.max_batch).run())

    def _new_hand_rois(self, rgb: np.ndarray) -> Tuple[List[_Roi], bool]:
        """ROIs of palms not tracked yet and whether the detector ran in this frame: its own
        run when one is due here, else the result of a between-frames search once that has
        finished (finished here when overdue)."""
        if self._should_detect():
            return self._detector_rois(rgb), True
        overdue = self._search.pending
        found = self._search.take(self._frame, max(self.options.redetect_interval_frames, 1))
        return ([], False) if found is None else (self._palm_rois(found), overdue)

    def _palm_rois(self, search: PalmSearchResult) -> List[_Roi]:
        if search.tiled:  # the sweep ran on the frame its search started on
            self._last_tiled_frame = self._last_detect_frame
        # At most `wanted` first-pass palms (best first); tile candidates may be false ones the
        # landmark presence rejects, so a few more of them are worth a landmark crop each.
        wanted, opts = search.wanted, self.options
        palms = [c for c in search.candidates if not c.from_tiles][:wanted]
        palms += [c for c in search.candidates if c.from_tiles][:2 * wanted]
        return [_Roi(roi_from_palm(c.detection.box, c.detection.keypoints),
                     "tiles" if c.from_tiles else "palm",
                     self._tiling.confirm_presence if c.from_tiles
                     else opts.hand_tracker.min_presence)
                for c in palms]

    def _start_search(self, rgb: np.ndarray) -> None:
        """With ``search_between_frames``: start the due search for further hands on this
        (already committed) frame, for :meth:`search_step` to run."""
        if (self.options.search_between_frames and not self.options.static_image_mode
                and not self._detector_needed and not self._search.active
                and self._further_search_due()):
            # a copy: the caller may reuse its image buffer before the search has run
            self._search.start(self._new_palm_search(rgb.copy(), 1), self._frame)

    @property
    def search_pending(self) -> bool:
        """A between-frames search has steps left for :meth:`search_step`."""
        return self._search.pending

    @property
    def search_step_cost_s(self) -> float:
        """Typical wall time (s) of one :meth:`search_step` (0 before the first)."""
        return self._search.step_cost_s

    def search_step(self) -> float:
        """Run one detector pass (the whole frame, or one tile) of the pending search for
        further hands on the last processed frame (``search_between_frames``); its palms are
        tried on the next frame. Returns the step's wall time (s), 0 when none was pending."""
        return self._search.step()

    def _retry_faded(self, rgb: np.ndarray, rois: List[_Roi], landmarks):
        """Give each tracking ROI whose hand faded below its presence floor one more landmark
        run on a ROI ``retry_roi_scale`` times larger: after a fast zoom, turn or shake the last
        frame's landmarks give a ROI that cuts the hand off, and the detector often misses the
        same hand for many frames (bench/eval_hand_tracking.py, shake)."""
        scale = self.options.retry_roi_scale
        faded = [k for k, r in enumerate(rois)
                 if r.source == "track" and landmarks.presence[k] < r.min_presence]
        if scale <= 1.0 or not faded:
            return landmarks
        retry = self.landmarker.process(rgb, [dataclasses.replace(
            rois[k].roi, width=rois[k].roi.width * scale, height=rois[k].roi.height * scale)
            for k in faded])
        for i, k in enumerate(faded):
            if retry.presence[i] > landmarks.presence[k]:
                for name in ("keypoints", "presence", "handedness", "world_keypoints"):
                    getattr(landmarks, name)[k] = getattr(retry, name)[i]
                landmarks.rois[k] = retry.rois[i]
        return landmarks

    def _confirm_new(self, rgb: np.ndarray, rois: List[_Roi], landmarks):
        """In video, re-crop each detector ROI that passed its presence floor around its own
        landmarks (the ROI the next frame's tracking would use) and keep the lower presence of
        the two. Hand-like textures pass the palm detector and its loose ROI but not the tight
        crop (a sign on a wall: 0.5-0.8, then 0.0-0.4; bench/eval_hand_tracking.py negatives);
        real hands pass both. Costs one landmark crop per new hand."""
        if self.options.static_image_mode or not self.options.confirm_new_hands:
            return landmarks
        new = [k for k, r in enumerate(rois)
               if r.source != "track" and landmarks.presence[k] >= r.min_presence]
        if new:
            again = self.landmarker.process(
                rgb, [roi_from_landmarks(landmarks.keypoints[k]) for k in new])
            landmarks.presence[new] = np.minimum(landmarks.presence[new], again.presence)
        return landmarks

    def _measure(self, landmarks, k: int, K: Optional[np.ndarray],
                 depth_m: Optional[np.ndarray]) -> _Measured:
        keypoints = landmarks.keypoints[k]
        world = landmarks.world_keypoints[k]
        lift = (LiftingResult() if K is None
                else self.lifter.process(keypoints[:, :2], world, K, depth_m))
        lifted = lift.mode != "none"
        detection = HandDetection(
            keypoints_2d=keypoints[:, :2], presence=float(landmarks.presence[k]),
            # The tracker wants MediaPipe's "Right" probability (selfie convention); the model's
            # raw score is its "Left" probability (hand_landmarker.py's docstring).
            handedness_right=1.0 - float(landmarks.handedness[k]),
            keypoints_z=keypoints[:, 2], world_keypoints=world,
            keypoints_camera=lift.points_camera if lifted else None,
            camera_valid=lift.valid if lifted else None,
            depth_residual_m=lift.depth_residual_m if lift.mode == "depth" else None)
        return _Measured(detection, keypoints, lift)

    @staticmethod
    def _matching(tracked, measured: List[_Measured]) -> _Measured:
        """The measurement a tracked hand was updated with (the tracker's bbox is of its raw
        keypoints, so it identifies the detection exactly)."""
        errors = [np.abs(keypoint_bounds(m.detection.keypoints_2d) - tracked.bbox_xyxy).max()
                  for m in measured]
        return measured[int(np.argmin(errors))]

    def _hand(self, tracked, measured: _Measured, has_intrinsics: bool) -> PipelineHand:
        estimator = self._wrist_frames.setdefault(
            tracked.track_id, WristFrameEstimator(self.options.wrist_frame))
        pose = np.eye(4)
        pose[:3, :3] = wrist_rotation(tracked.world_keypoints, tracked.handedness, estimator)
        nan3 = np.full((NUM_KEYPOINTS, 3), np.nan, np.float32)
        keypoints_3d = tracked.keypoints_camera if has_intrinsics else nan3
        pose[:3, 3] = keypoints_3d[0] if has_intrinsics else np.nan
        source = measured.lift.mode if has_intrinsics else "none"
        return PipelineHand(
            track_id=tracked.track_id, handedness=tracked.handedness,
            handedness_score=float(tracked.handedness_confidence), score=float(tracked.presence),
            keypoints_2d=tracked.keypoints_2d.astype(np.float32),
            keypoints_3d=np.asarray(keypoints_3d, np.float32), depth_source=source,
            world_keypoints=np.asarray(tracked.world_keypoints, np.float32),
            joint_confidence=tracked.joint_confidence.astype(np.float32),
            joint_visible=tracked.joint_visible.astype(bool), wrist_pose=pose)

    def _advance(self, stamp_s: float, tracked, measured: List[_Measured]) -> None:
        """Commit this frame: stamp, detector need, next frame's ROIs, dropped tracks."""
        self._stamp = stamp_s
        self._frame += 1
        # Run the detector on the next frame only to re-acquire (no track, or one missed or
        # fading); a search for further hands waits for redetect_interval_frames instead of
        # costing a detector run on every frame that shows fewer than max_hands hands.
        self._detector_needed = bool(tracked.redetect_ids) or not tracked.hands
        self._track_rois = {}
        for hand in tracked.hands:
            match = self._matching(hand, measured)
            self._track_rois[hand.track_id] = (roi_from_landmarks(match.keypoints_raw),
                                               match.detection.presence)
        for track_id in tracked.lost_ids:
            self._wrist_frames.pop(track_id, None)
