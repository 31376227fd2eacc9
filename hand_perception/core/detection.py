"""Palm detection over the whole image plus a second, tiled pass for small hands.

MediaPipe's palm detector sees the whole frame letterboxed to 192x192: in a 1920x1080 image a
hand 150 px long shrinks to 15 px and is missed. When the first pass finds fewer hands than
wanted, :class:`PalmSearch` runs the detector again over overlapping square tiles (several grid
sizes, one batched session call) and optionally over an upscaled centre crop, maps every tile
detection back to full-image pixels and merges them with the first pass by weighted NMS.

Tile candidates are less trustworthy than first-pass ones (a tile's context is small), so each
comes out tagged ``from_tiles=True``: the pipeline confirms it with the landmark model's presence
score (``TiledDetectionOptions.confirm_presence``) before it may start a track.

:class:`PalmSearch` runs in steps (the first pass, then a batch of tiles per step), and
:class:`DeferredPalmSearch` holds one between frames, so that a video pipeline can spread the
search for further hands over the idle time between images instead of stalling a frame.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from hand_perception.core.models.palm_detector import PalmDetection, PalmDetector, iou
from hand_perception.core.options import require_int, require_range

_LOG = logging.getLogger(__name__)
#: A tile detection whose box comes closer than this (px, tile scale) to an inner tile edge is
#: cut by that edge; the overlap guarantees a neighbouring tile sees the whole palm instead.
_EDGE_MARGIN_PX = 2.0


@dataclass
class TiledDetectionOptions:
    """Second detector pass over tiles; YAML section ``tiled_detection`` of hand_pipeline.yaml.

    ``grids``: tiles along the image's short side for each tiling (3 on 1920x1080 -> 3 x 6 tiles
    of 432 px; all tilings go through the detector in one batched pass, so each costs tiles x
    one detector run); ``overlap``: fraction of a tile shared with its neighbour (a palm smaller
    than the overlap is always whole in some tile); ``min_tile_px``: tilings with smaller tiles
    are skipped (below the detector's 192 px input, upscaling adds no detail); ``centre_zoom``: > 1 also runs the detector on the centre 1/zoom of the image (0: off);
    ``confirm_presence``: landmark presence a tile candidate needs; ``interval_frames``: in video
    (tracking) mode the tiled pass runs at most once every this many frames, 0 = never (a sweep
    costs one detector run per tile and stalls its frame); photos (static_image_mode) always
    get it; ``video_grids``: the tilings of that video sweep, coarser than ``grids`` to keep the
    stall short (2 on 640x480 -> 6 tiles of 274 px, 3 would be 15 of 192 px)."""

    enabled: bool = True
    grids: Tuple[int, ...] = (3,)
    overlap: float = 0.25
    min_tile_px: int = 192
    centre_zoom: float = 0.0
    confirm_presence: float = 0.8
    interval_frames: int = 30
    video_grids: Tuple[int, ...] = (2,)

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise TypeError(f"enabled must be a bool, got {self.enabled!r}")
        self.grids, self.video_grids = tuple(self.grids), tuple(self.video_grids)
        for name, grids in (("grids", self.grids), ("video_grids", self.video_grids)):
            for grid in grids:
                require_int(f"{name}[]", grid, 1)
        require_range("overlap", self.overlap, 0.0, 0.75)
        require_int("min_tile_px", self.min_tile_px, 1)
        if self.centre_zoom != 0:
            require_range("centre_zoom", self.centre_zoom, 1.0, 8.0)
        require_range("confirm_presence", self.confirm_presence, 0.0, 1.0)
        require_int("interval_frames", self.interval_frames, 0)


@dataclass
class PalmCandidate:
    """A palm detection in full-image px, and whether it came from the tiled pass only."""

    detection: PalmDetection
    from_tiles: bool


def tile_windows(width: int, height: int, grid: int, overlap: float
                 ) -> List[Tuple[int, int, int, int]]:
    """Square tiles (x0, y0, x1, y1) px covering a ``width`` x ``height`` image with ``grid``
    tiles along its short side and neighbours sharing ``overlap`` of a tile."""
    short, long_ = min(width, height), max(width, height)
    side = short / (grid - (grid - 1) * overlap) if grid > 1 else short
    side = int(math.ceil(min(side, short)))
    count_long = 1 if long_ <= side else int(math.ceil((long_ - side) / (side * (1 - overlap)))) + 1
    along_short = np.linspace(0, short - side, grid).round().astype(int)
    along_long = np.linspace(0, long_ - side, count_long).round().astype(int)
    windows = []
    for a in along_short:
        for b in along_long:
            x0, y0 = (int(b), int(a)) if width >= height else (int(a), int(b))
            windows.append((x0, y0, x0 + side, y0 + side))
    return windows


def centre_window(width: int, height: int, zoom: float) -> Tuple[int, int, int, int]:
    """The centre crop (x0, y0, x1, y1) px covering 1/``zoom`` of each image side."""
    w, h = int(round(width / zoom)), int(round(height / zoom))
    x0, y0 = (width - w) // 2, (height - h) // 2
    return x0, y0, x0 + w, y0 + h


def _touches_inner_edge(box: np.ndarray, window: Tuple[int, int, int, int],
                        size: Tuple[int, int]) -> bool:
    """Whether ``box`` (tile px) reaches a tile edge that is not an image edge."""
    x0, y0, x1, y1 = window
    width, height = size
    tile_w, tile_h = x1 - x0, y1 - y0
    m = _EDGE_MARGIN_PX * tile_w / 192.0
    return bool((x0 > 0 and box[0] < m) or (y0 > 0 and box[1] < m)
                or (x1 < width and box[2] > tile_w - m) or (y1 < height and box[3] > tile_h - m))


def detect_in_windows(detector: PalmDetector, rgb: np.ndarray,
                      windows: Sequence[Tuple[int, int, int, int]]) -> List[PalmDetection]:
    """Palm detections in each window of ``rgb``, in full-image px, batched by the detector's
    ``max_batch``; detections cut by an inner window edge are dropped."""
    size = (rgb.shape[1], rgb.shape[0])
    crops = [rgb[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
    results = []
    step = detector.options.max_batch
    for start in range(0, len(crops), step):
        results += detector.process_batch(crops[start:start + step])
    found = []
    for window, result in zip(windows, results):
        offset = np.array(window[:2], np.float32)
        for det in result.detections:
            if _touches_inner_edge(det.box, window, size):
                continue
            found.append(PalmDetection(det.score, det.box + np.tile(offset, 2),
                                       det.keypoints + offset))
    return found


def merge_detections(first: Sequence[PalmDetection], extra: Sequence[PalmDetection],
                     iou_threshold: float) -> List[PalmCandidate]:
    """First-pass detections, then each extra one overlapping none of the kept boxes by more than
    ``iou_threshold`` (greedy NMS, best score first), tagged ``from_tiles``."""
    kept = [PalmCandidate(det, False) for det in first]
    for det in sorted(extra, key=lambda d: -d.score):
        boxes = np.array([c.detection.box for c in kept], np.float64).reshape(-1, 4)
        if boxes.size and np.max(iou(det.box.astype(np.float64), boxes)) > iou_threshold:
            continue
        kept.append(PalmCandidate(det, True))
    return kept


def tiled_windows(width: int, height: int, options: TiledDetectionOptions
                  ) -> List[Tuple[int, int, int, int]]:
    """All windows of the second pass for an image of ``width`` x ``height`` px (may be empty)."""
    windows = []
    for grid in options.grids:
        tiles = tile_windows(width, height, grid, options.overlap) if grid > 1 else []
        if tiles and tiles[0][2] - tiles[0][0] >= options.min_tile_px:
            windows += tiles
    if options.centre_zoom > 1:
        windows.append(centre_window(width, height, options.centre_zoom))
    return windows


@dataclass
class PalmSearchResult:
    """New palms (not ``covered``), first-pass ones first; ``tiled``: the tiled pass ran;
    ``wanted``: how many new hands the search was for."""

    candidates: List[PalmCandidate] = field(default_factory=list)
    tiled: bool = False
    wanted: int = 0


class PalmSearch:
    """Palms in ``rgb`` (H, W, 3) uint8, full-image px, leaving out those ``covered`` (hands
    already tracked), found in steps so that a video pipeline can spread the cost over the idle
    time between frames: the first :meth:`step` runs the single letterboxed pass; when that finds
    fewer than ``wanted`` new palms and ``allow_tiles``, each further step runs the next
    ``windows_per_step`` tiles (one batched detector call). ``done`` once nothing is left;
    ``result`` is then final; :meth:`run` does all remaining steps."""

    def __init__(self, detector: PalmDetector, rgb: np.ndarray, wanted: int,
                 options: TiledDetectionOptions, allow_tiles: bool = True,
                 covered: Callable[[PalmDetection], bool] = lambda _: False,
                 windows_per_step: int = 1) -> None:
        require_int("windows_per_step", windows_per_step, 1)
        self._detector, self._rgb, self._wanted = detector, rgb, wanted
        self._covered, self._per_step = covered, windows_per_step
        windows = tiled_windows(rgb.shape[1], rgb.shape[0], options)
        self._windows = windows if options.enabled and allow_tiles else []
        self._first: List[PalmDetection] = []
        self._extra: List[PalmDetection] = []
        self._steps = 0

    @property
    def done(self) -> bool:
        return self._steps > 0 and not self._windows

    def step(self) -> None:
        """Run the next unit of the search (nothing once ``done``)."""
        if self.done:
            return
        if self._steps == 0:
            found = self._detector.process(self._rgb).detections
            self._first = [det for det in found if not self._covered(det)]
            if len(self._first) >= self._wanted:
                self._windows = []
        else:
            windows, self._windows = (self._windows[:self._per_step],
                                      self._windows[self._per_step:])
            found = detect_in_windows(self._detector, self._rgb, windows)
            self._extra += [det for det in found if not self._covered(det)]
        self._steps += 1

    def run(self) -> PalmSearchResult:
        """All remaining steps, then the result."""
        while not self.done:
            self.step()
        return self.result

    @property
    def result(self) -> PalmSearchResult:
        """The candidates found so far; ``tiled`` once any tile ran."""
        if self._steps <= 1:
            return PalmSearchResult([PalmCandidate(det, False) for det in self._first], False,
                                    self._wanted)
        merged = merge_detections(self._first, self._extra, self._detector.options.nms_iou)
        _LOG.debug("tiled pass: %d new candidates", sum(c.from_tiles for c in merged))
        return PalmSearchResult(merged, True, self._wanted)


class DeferredPalmSearch:
    """One :class:`PalmSearch` at a time, started on a frame and stepped between frames (the
    hand pipeline's ``search_between_frames``); remembers what its recent steps cost."""

    def __init__(self, cost_window: int = 5, cost_max_age_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        require_int("cost_window", cost_window, 1)
        require_range("cost_max_age_s", cost_max_age_s, 0.0)
        self._search: Optional[PalmSearch] = None
        self._started_frame = 0
        self._step_times_s = deque(maxlen=cost_window)  # (when it ended, wall time) in s
        self._cost_max_age_s = cost_max_age_s
        self._clock = clock

    @property
    def step_cost_s(self) -> float:
        """The shortest wall time (s) of the recent steps that ended within ``cost_max_age_s``;
        0 when there are none. The shortest: one step slowed by a pause elsewhere (a GC,
        another process) must not make every later step look too long to fit between frames.
        Within a maximum age: when the only recent step was the slow one, no idle time looks
        long enough for another, so nothing would replace it, and the search would wait to be
        finished inside a frame once overdue (one CI run: 1 of its 7 steps ran between frames)."""
        now = self._clock()
        return min((took for ended, took in self._step_times_s
                    if now - ended <= self._cost_max_age_s), default=0.0)

    @property
    def active(self) -> bool:
        """A search was started and its result not taken yet."""
        return self._search is not None

    @property
    def pending(self) -> bool:
        """A search has steps left to run."""
        return self._search is not None and not self._search.done

    def start(self, search: PalmSearch, frame: int) -> None:
        self._search, self._started_frame = search, frame

    def cancel(self) -> None:
        self._search = None

    def step(self) -> float:
        """Run the next step of the pending search; its wall time (s), 0 when none is pending."""
        if not self.pending:
            return 0.0
        tick = self._clock()
        self._search.step()
        ended = self._clock()
        took = ended - tick
        self._step_times_s.append((ended, took))
        return took

    def take(self, frame: int, max_age_frames: int) -> Optional[PalmSearchResult]:
        """The finished search's result, once (None while none is finished). A search started
        ``max_age_frames`` or more frames ago is finished here at once: a camera that leaves no
        idle time must still get its search."""
        if self._search is None:
            return None
        if not self._search.done and frame - self._started_frame < max_age_frames:
            return None
        while self.pending:  # timed like the idle steps: a stale cost estimate heals here
            self.step()
        result, self._search = self._search.result, None
        return result
