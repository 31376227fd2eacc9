"""A short, deterministic "camera" clip made from real photos: the demo's default input.

A virtual camera moves smoothly over a still photo (pan, zoom and a little roll), so the hand
tracker sees a real hand that moves between frames, with no video file to download. The clip is a
sequence of shots; each shot eases through a few views of one photo (smoothstep between
keyframes, so the motion starts and stops without jerks). Every frame is a pure function of its
index: the same options give the same pixels on every machine.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from hand_perception.core.options import require_range

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class View:
    """Where the virtual camera looks at time ``t`` (0..1 through its shot): the view centre
    ``cx``, ``cy`` as fractions of the photo's width and height, ``zoom`` (1: the largest crop of
    the clip's aspect ratio that fits the photo; 2: half as tall) and ``roll_deg`` (degrees,
    positive turns the picture counter-clockwise)."""

    t: float
    cx: float
    cy: float
    zoom: float
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        for name in ("t", "cx", "cy"):
            require_range(name, getattr(self, name), 0.0, 1.0)
        require_range("zoom", self.zoom, 1.0, 8.0)
        require_range("roll_deg", self.roll_deg, -30.0, 30.0)


@dataclass(frozen=True)
class Shot:
    """``photo``: a key of the photos given to :class:`SampleClip`; ``share``: its fraction of
    the clip's frames; ``views``: keyframes sorted by ``t``, the first at 0 and the last at 1."""

    photo: str
    share: float
    views: Tuple[View, ...]

    def __post_init__(self) -> None:
        require_range("share", self.share, 0.0, 1.0)
        times = [v.t for v in self.views]
        if len(times) < 2 or times[0] != 0.0 or times[-1] != 1.0 or times != sorted(set(times)):
            raise ValueError(f"shot {self.photo!r}: view times {times} must rise from 0 to 1")


#: The demo's clip: zidane.jpg, from the two men towards the pointing hand (the person's LEFT
#: hand, at about 82 % across, 60 % down) and back, then bus.jpg (people at a bus stop).
DEFAULT_SHOTS: Tuple[Shot, ...] = (
    Shot("zidane.jpg", 0.75, (
        View(0.0, 0.55, 0.50, 1.00, 0.0),
        View(0.35, 0.70, 0.56, 1.35, 4.0),
        View(0.70, 0.78, 0.58, 1.75, -3.0),
        View(1.0, 0.66, 0.54, 1.20, 0.0))),
    Shot("bus.jpg", 0.25, (
        View(0.0, 0.30, 0.55, 1.60, 0.0),
        View(1.0, 0.40, 0.60, 2.00, 2.0))),
)


@dataclass
class SampleClipOptions:
    """``frames`` in the clip, each ``width`` x ``height`` px; ``fps`` is its nominal rate (Hz,
    for the video and the timestamps, not how fast frames are made); ``jpeg_quality`` for
    :meth:`SampleClip.write_folder`."""

    frames: int = 120
    width: int = 640
    height: int = 480
    fps: float = 30.0
    jpeg_quality: int = 95
    shots: Tuple[Shot, ...] = DEFAULT_SHOTS

    def __post_init__(self) -> None:
        require_range("frames", self.frames, 1, 100000)
        require_range("width", self.width, 16, 8192)
        require_range("height", self.height, 16, 8192)
        require_range("fps", self.fps, 0.1, 1000.0)
        require_range("jpeg_quality", self.jpeg_quality, 1, 100)
        for name in ("frames", "width", "height", "jpeg_quality"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}={getattr(self, name)!r} must be an int")
        if not self.shots or abs(sum(s.share for s in self.shots) - 1.0) > 1e-6:
            raise ValueError(f"shot shares {[s.share for s in self.shots]} must sum to 1")


@dataclass
class SampleClipResult:
    """Frame ``index``: ``rgb`` (height, width, 3) uint8 RGB; ``photo`` and ``view`` it shows."""

    index: int
    rgb: np.ndarray
    photo: str
    view: View
    stamp_s: float = 0.0  # index / fps, seconds from the clip's start

    @property
    def empty(self) -> bool:
        return self.rgb.size == 0


def smoothstep(x: float) -> float:
    """0 -> 0, 1 -> 1 with zero slope at both ends (x clipped to [0, 1])."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def view_at(views: Sequence[View], t: float) -> View:
    """The camera view at ``t`` (0..1) of a shot, eased between the surrounding keyframes."""
    t = min(max(t, 0.0), 1.0)
    after = next(i for i, v in enumerate(views) if v.t >= t)
    if after == 0:
        return views[0]
    a, b = views[after - 1], views[after]
    w = smoothstep((t - a.t) / (b.t - a.t))
    mix = [(1.0 - w) * x + w * y for x, y in zip((a.cx, a.cy, a.zoom, a.roll_deg),
                                                 (b.cx, b.cy, b.zoom, b.roll_deg))]
    return View(t, *mix)


def _fit_crop(view: View, photo_size: Tuple[int, int], aspect: float) -> Tuple[float, float, float]:
    """Crop height (px) and centre (px) for ``view`` so the rolled crop stays inside the photo:
    the zoom is raised and the centre clamped as far as that needs."""
    width, height = photo_size
    crop_h = min(height, width / aspect) / view.zoom
    cos, sin = abs(np.cos(np.radians(view.roll_deg))), abs(np.sin(np.radians(view.roll_deg)))
    # half extents of the rolled crop's bounding box per unit of crop height
    half_x, half_y = (aspect * cos + sin) / 2.0, (aspect * sin + cos) / 2.0
    crop_h = min(crop_h, width / (2.0 * half_x), height / (2.0 * half_y))
    cx = float(np.clip(view.cx * width, crop_h * half_x, width - crop_h * half_x))
    cy = float(np.clip(view.cy * height, crop_h * half_y, height - crop_h * half_y))
    return crop_h, cx, cy


def render_view(photo: np.ndarray, view: View, width: int, height: int) -> np.ndarray:
    """What a ``width`` x ``height`` camera sees of ``photo`` (H, W, 3) uint8 at ``view``:
    (height, width, 3) uint8, same channel order as ``photo``."""
    import cv2

    crop_h, cx, cy = _fit_crop(view, (photo.shape[1], photo.shape[0]), width / height)
    scale = crop_h / height  # photo px per output px
    angle = np.radians(view.roll_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # output pixel centre -> photo point (inverse map): p = C + R s (q - q_centre)
    offset = np.array([cx, cy]) - rotation @ np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    matrix = np.hstack([rotation, offset[:, None]])
    if scale > 1.5:  # shrinking a lot: pre-blur like INTER_AREA would, so edges do not alias
        sigma = 0.4 * scale
        photo = cv2.GaussianBlur(photo, (0, 0), sigma)
    return cv2.warpAffine(photo, matrix, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


def load_photos(paths: Mapping[str, Path]) -> Dict[str, np.ndarray]:
    """Read photos (name -> file) as RGB uint8 arrays; ``ValueError`` naming an unreadable one."""
    import cv2

    photos = {}
    for name, path in paths.items():
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"photo {name!r}: cannot read {path}")
        photos[name] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return photos


class SampleClip:
    """The clip's frames, made on demand: ``process(index)``; ``write_folder`` saves them all.

    ``photos``: name -> (H, W, 3) uint8 RGB image for every photo the shots name."""

    def __init__(self, options: SampleClipOptions, photos: Mapping[str, np.ndarray]) -> None:
        missing = sorted({s.photo for s in options.shots} - set(photos))
        if missing:
            raise ValueError(f"no photo for shots {missing} (have {sorted(photos)})")
        for name, image in photos.items():
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                    or image.shape[2] != 3:
                raise ValueError(f"photo {name!r} must be (H, W, 3) uint8, got "
                                 f"{getattr(image, 'shape', type(image).__name__)}")
        self.options = options
        self._photos = dict(photos)
        self._shot_of_frame = self._assign_frames()

    def __len__(self) -> int:
        return self.options.frames

    def _assign_frames(self) -> List[Tuple[int, float]]:
        """Per frame: (shot index, t within the shot). Shots get frames in proportion to their
        share (at least one each while the clip has frames for them)."""
        n, shots = self.options.frames, self.options.shots
        bounds = np.round(np.cumsum([0.0] + [s.share for s in shots]) * n).astype(int)
        frames: List[Tuple[int, float]] = []
        for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
            count = int(end - start)
            frames += [(index, k / max(count - 1, 1)) for k in range(count)]
        return frames

    def process(self, index: int) -> SampleClipResult:
        """Frame ``index`` (0-based); an empty result past the end (never ``None``)."""
        if not 0 <= index < len(self):
            return SampleClipResult(index, np.zeros((0, 0, 3), np.uint8), "", View(0, 0, 0, 1))
        shot_index, t = self._shot_of_frame[index]
        shot = self.options.shots[shot_index]
        view = view_at(shot.views, t)
        rgb = render_view(self._photos[shot.photo], view, self.options.width, self.options.height)
        return SampleClipResult(index, rgb, shot.photo, view, index / self.options.fps)

    def write_folder(self, folder: Path) -> List[Path]:
        """Write every frame as ``frame_NNNNNN.jpg`` into ``folder`` (created; files sorted by
        name are in frame order, as core.frame_source reads a folder)."""
        import cv2

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(len(self)):
            path = folder / f"frame_{index:06d}.jpg"
            bgr = cv2.cvtColor(self.process(index).rgb, cv2.COLOR_RGB2BGR)
            quality = [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality]
            if not cv2.imwrite(str(path), bgr, quality):
                raise OSError(f"could not write {path}")
            paths.append(path)
        _log.debug("wrote %d clip frames to %s", len(paths), folder)
        return paths
