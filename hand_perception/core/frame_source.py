"""Frames from an image file, an image folder, a video file or a webcam, as RGB arrays."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from hand_perception.core.options import require_range

_log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class FrameSourceOptions:
    """``source``: an image, a folder of images (sorted by name), a video file, or a webcam index
    ("0"). ``loop`` restarts at the end; ``width``/``height`` > 0 resize every frame."""

    source: str = ""
    loop: bool = True
    width: int = 0
    height: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"source={self.source!r} must name an image, folder, video or webcam index")
        require_range("width", self.width, 0, 8192)
        require_range("height", self.height, 0, 8192)
        if (self.width == 0) != (self.height == 0):
            raise ValueError(f"width={self.width} and height={self.height}: set both or neither")


@dataclass
class FrameSourceResult:
    """One frame: ``rgb`` (H, W, 3) uint8 RGB, empty (0, 0, 3) at the end of the stream."""

    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))
    index: int = -1
    name: str = ""

    @property
    def empty(self) -> bool:
        return self.rgb.size == 0


class FrameSource:
    """Reads frames one at a time with ``process()``; use as a context manager to release
    video devices."""

    def __init__(self, options: FrameSourceOptions) -> None:
        import cv2

        self._cv2 = cv2
        self.options = options
        self._files: List[Path] = []
        self._capture: Optional["cv2.VideoCapture"] = None
        self._index = 0
        source = options.source
        path = Path(source).expanduser()
        if source.isdigit():
            self._capture = cv2.VideoCapture(int(source))
        elif path.is_dir():
            self._files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise ValueError(f"folder {path} has no images ({', '.join(IMAGE_SUFFIXES)})")
        elif path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            self._files = [path]
        elif path.is_file():
            self._capture = cv2.VideoCapture(str(path))
        else:
            raise ValueError(f"source {source!r} is not a file, folder or webcam index")
        if self._capture is not None and not self._capture.isOpened():
            raise ValueError(f"could not open video source {source!r}")

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def process(self) -> FrameSourceResult:
        """The next frame, or an empty result at the end (never at the end when looping over
        files or a video)."""
        frame, name = self._read()
        if frame is None and self.options.loop and self._index > 0:
            self._rewind()
            frame, name = self._read()
        if frame is None:
            return FrameSourceResult()
        if self.options.width:
            frame = self._cv2.resize(frame, (self.options.width, self.options.height),
                                     interpolation=self._cv2.INTER_AREA)
        result = FrameSourceResult(rgb=np.ascontiguousarray(frame), index=self._index, name=name)
        self._index += 1
        return result

    def _read(self):
        cv2 = self._cv2
        if self._files:
            position = self._index % len(self._files) if self.options.loop else self._index
            if position >= len(self._files):
                return None, ""
            bgr = cv2.imread(str(self._files[position]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"could not read image {self._files[position]}")
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), str(self._files[position])
        if self._capture is None:
            return None, ""
        ok, bgr = self._capture.read()
        return (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.options.source) if ok else (None, "")

    def _rewind(self) -> None:
        if self._capture is not None and not self.options.source.isdigit():
            self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
