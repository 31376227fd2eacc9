"""Pieces of the hand tracker node that need no node: the drop-oldest frame queue, the clock of
image arrivals, input preparation (image -> RGB, depth pairing), statistics for /diagnostics and
the annotated image.
"""
from __future__ import annotations

import gc
import math
import threading
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from sensor_msgs.msg import CompressedImage, Image

from hand_perception.core.drawing import draw_hands
from hand_perception.core.options import require_int
from hand_perception.ros.image import compressed_to_rgb, depth_to_metres, image_to_rgb, numpy_to_image

#: Relative difference in aspect ratio under which a depth image of another size is taken to
#: cover the same view (so resampling it to the colour grid is the same as scaling K).
ASPECT_TOLERANCE = 0.01


def stamp_seconds(stamp) -> float:
    """builtin_interfaces/Time -> seconds (float)."""
    return stamp.sec + stamp.nanosec * 1e-9


class DropOldestQueue:
    """A bounded hand-over between the executor thread (``put``) and one worker (``get``).

    When full, ``put`` discards the oldest item, so a slow consumer always gets the newest frames
    and never a backlog. ``close`` wakes the worker with ``None``; ``open`` re-arms it."""

    def __init__(self, size: int = 1) -> None:
        if size < 1:
            raise ValueError(f"queue size {size} must be >= 1")
        self._items: Deque[Any] = deque()
        self._size = size
        self._closed = False
        self._condition = threading.Condition()

    def put(self, item: Any) -> bool:
        """Queue ``item``; False when an older item had to be dropped to make room."""
        with self._condition:
            displaced = len(self._items) >= self._size
            if displaced:
                self._items.popleft()
            self._items.append(item)
            self._condition.notify()
            return not displaced

    def get(self, timeout_s: Optional[float] = None) -> Any:
        """The oldest queued item; waits for one. ``None`` once closed (or after ``timeout_s``)."""
        with self._condition:
            self._condition.wait_for(lambda: self._items or self._closed, timeout_s)
            if self._closed or not self._items:
                return None
            return self._items.popleft()

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)

    def open(self) -> None:
        with self._condition:
            self._closed = False

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._items.clear()
            self._condition.notify_all()


def prepare_rgb(msg) -> np.ndarray:
    """Image (rgb8/bgr8/rgba8/bgra8/mono8) or CompressedImage (jpeg/png) -> (H, W, 3) uint8 RGB;
    ``ValueError`` naming the encoding or size otherwise."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg)
    return image_to_rgb(msg)


def _resample_depth(depth: np.ndarray, size: Tuple[int, int]) -> Tuple[Optional[np.ndarray], str]:
    import cv2

    height, width = depth.shape
    aspect_depth, aspect_image = width / height, size[0] / size[1]
    if abs(aspect_depth / aspect_image - 1.0) > ASPECT_TOLERANCE:
        return None, (f"depth image {width}x{height} does not cover the {size[0]}x{size[1]} image "
                      f"(aspect ratio {aspect_depth:.3f} vs {aspect_image:.3f})")
    # Nearest neighbour: never blends a hole or an edge into a depth that is not there.
    return cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST), ""


def pair_depth(depth_msgs: Sequence[Image], stamp_s: float, size: Tuple[int, int],
               tolerance_s: float) -> Tuple[Optional[np.ndarray], str]:
    """The depth image nearest to ``stamp_s`` within ``tolerance_s`` as (H, W) float32 metres on
    the colour image's pixel grid (``size`` = (width, height); NaN holes), or ``(None, why)``."""
    if not depth_msgs:
        return None, "no depth image received yet"
    gaps = [abs(stamp_seconds(m.header.stamp) - stamp_s) for m in depth_msgs]
    best = int(np.argmin(gaps))
    if gaps[best] > tolerance_s:
        return None, (f"nearest depth image is {gaps[best] * 1e3:.1f} ms from the colour image "
                      f"(depth_tolerance_s={tolerance_s})")
    try:
        depth = depth_to_metres(depth_msgs[best])
    except ValueError as error:
        return None, f"depth image: {error}"
    if depth.shape != (size[1], size[0]):
        depth, problem = _resample_depth(depth, size)
        if depth is None:
            return None, problem
    if not np.isfinite(depth).any():
        return None, "depth image has no valid pixel (all zero or NaN)"
    return depth, ""


class ArrivalClock:
    """When the next image is expected: the last arrival plus a running mean of the intervals
    between arrivals (s, monotonic clock). Written by the executor thread, read by the worker."""

    def __init__(self, smoothing: float = 0.1) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing={smoothing!r} is not in (0, 1]")
        self._smoothing = smoothing
        self._last_s = -math.inf
        self._interval_s = math.nan

    def arrived(self, now_s: float) -> None:
        interval = now_s - self._last_s
        if math.isfinite(interval) and interval > 0.0:
            self._interval_s = (interval if math.isnan(self._interval_s) else
                                self._interval_s + self._smoothing * (interval - self._interval_s))
        self._last_s = now_s

    def next_expected_s(self) -> float:
        """Expected arrival (s) of the next image; -inf until two images have arrived."""
        return -math.inf if math.isnan(self._interval_s) else self._last_s + self._interval_s


class BetweenFramesGarbageCollector:
    """Python's cyclic garbage collector, run by the inference thread right after a frame is
    published, so that its pauses fall between frames instead of inside one.

    Left to itself the collector starts whenever enough objects have been allocated, mid-frame:
    in the tracker node with two hands about every other frame (0.1 ms), every ~17th frame a
    1-2 ms middle-generation pass, and now and then a full pass over everything the models and
    message modules created (20-30 ms). Creating this object collects once and freezes what
    exists (``gc.freeze``: modules, models), so later passes skip it; ``after_frame`` then
    collects the youngest generation after every frame, which keeps the allocation trigger from
    firing inside frames, and everything every ``full_every`` frames (a full pass over what is
    not frozen took 0.1 ms). The automatic collector stays on for the rest of the process;
    ``release`` unfreezes."""

    def __init__(self, full_every: int = 10) -> None:
        require_int("full_every", full_every, 1)
        self._full_every = full_every
        self._frames = 0
        gc.collect()
        gc.freeze()

    def after_frame(self) -> int:
        """Collect after one frame; returns the generation collected (0 or 2: all of them)."""
        self._frames += 1
        generation = 2 if self._frames % self._full_every == 0 else 0
        gc.collect(generation)
        return generation

    @staticmethod
    def release() -> None:
        """Hand what was frozen back to the collector (the node calls this when its worker
        stops). Frozen objects are never collected, not even at exit: rclpy's own reference
        cycles then keep the DDS participant alive to the end, and Fast DDS leaves its 64 MiB
        shared-memory segment behind in /dev/shm on every clean exit."""
        gc.unfreeze()


class TrackerStats:
    """Counters and recent samples for /diagnostics; thread-safe (worker writes, timer reads).

    Rates and latency percentiles cover the time since the previous report; counts are totals."""

    def __init__(self, clock=None) -> None:
        import time

        self._now = clock or time.monotonic
        self._lock = threading.Lock()
        self.received = self.published = self.dropped_queue = self.dropped_bad_input = 0
        self.last_drop_reason = ""
        self.hands_tracked = 0
        self.search_steps = 0
        self._window_start = self._now()
        self._window: Dict[str, List[float]] = {}
        self._window_received = self._window_published = self._window_bad = 0

    def count_received(self) -> None:
        with self._lock:
            self.received += 1
            self._window_received += 1

    def count_queue_drop(self) -> None:
        with self._lock:
            self.dropped_queue += 1

    def count_bad_input(self, reason: str) -> None:
        with self._lock:
            self.dropped_bad_input += 1
            self._window_bad += 1
            self.last_drop_reason = reason

    def count_published(self, result, camera_latency_s: float, node_latency_s: float) -> None:
        """One HandArray out: ``result`` (HandPipelineResult) gives hands and stage timings."""
        with self._lock:
            self.published += 1
            self._window_published += 1
            self.hands_tracked = len(result.hands)
            samples = {f"stage_{k}": v for k, v in result.timings_ms.items()}
            samples["latency_camera_to_hands"] = camera_latency_s * 1e3
            samples["latency_in_node"] = node_latency_s * 1e3
            for key, value in samples.items():
                self._window.setdefault(key, []).append(float(value))

    def count_search_step(self, elapsed_s: float) -> None:
        """One detector pass of a between-frames search for further hands."""
        with self._lock:
            self.search_steps += 1
            self._window.setdefault("search_step", []).append(elapsed_s * 1e3)

    def _window_values(self) -> List[KeyValue]:
        now = self._now()
        elapsed = max(now - self._window_start, 1e-9)
        values = [("fps_in", self._window_received / elapsed),
                  ("fps_out", self._window_published / elapsed)]
        for key, samples in sorted(self._window.items()):
            values += [(f"{key}_ms_mean", float(np.mean(samples))),
                       (f"{key}_ms_p95", float(np.percentile(samples, 95)))]
        self._window_start = now
        self._window = {}
        return [KeyValue(key=k, value=f"{v:.2f}") for k, v in values]

    def diagnostic_status(self, name: str, hardware_id: str) -> DiagnosticStatus:
        """The report since the previous call, then starts a new window."""
        with self._lock:
            level, message = DiagnosticStatus.OK, f"tracking {self.hands_tracked} hand(s)"
            if self._window_bad:
                level, message = DiagnosticStatus.WARN, f"dropping bad input: {self.last_drop_reason}"
            elif not self._window_received:
                level, message = DiagnosticStatus.WARN, "no images received"
            values = self._window_values() + [KeyValue(key=k, value=str(v)) for k, v in (
                ("frames_received", self.received), ("frames_published", self.published),
                ("frames_dropped_queue", self.dropped_queue),
                ("frames_dropped_bad_input", self.dropped_bad_input),
                ("hands_tracked", self.hands_tracked), ("search_steps", self.search_steps),
                ("last_drop_reason", self.last_drop_reason))]
            self._window_received = self._window_published = self._window_bad = 0
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                                values=values)


def annotate(rgb: np.ndarray, result, header) -> Image:
    """rgb8 Image of ``rgb`` with the hands of ``result`` drawn on it, stamped with ``header``."""
    return numpy_to_image(draw_hands(rgb, result.hands), "rgb8", header)
