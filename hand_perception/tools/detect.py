"""``hand-perception detect``: run the hand pipeline offline on an image, a folder or a video.

Writes one JSON line per image or video frame::

    {"image": PATH, "frame": I, "hands": [{"track_id", "handedness": "left"|"right", "score",
      "keypoints_2d": 21 x [x, y] px, "keypoints_3d": 21 x [x, y, z] m (camera optical frame,
      only with --fov or --intrinsics; null for an unknown joint),
      "world_keypoints": 21 x [x, y, z] m (hand-centred, camera axes)}]}

``frame`` is the frame number in a video, the image's position in a folder (0 for one image).
The photos of a folder are unrelated: the tracker is reset before each. In a video, tracks (and
their IDs and smoothing) carry across frames. A file that cannot be read gets an error line on
stderr naming it, and the run goes on with the next one (exit status 1 at the end).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Dict, Iterator, List, TextIO, Tuple

import numpy as np

HELP = "detect and track hands in an image, image folder or video; JSON lines out"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="an image, a folder of images, or a video file")
    parser.add_argument("--json", metavar="OUT.jsonl", default="",
                        help="write JSON lines here (default: stdout)")
    parser.add_argument("--annotate", metavar="OUTDIR", default="",
                        help="write annotated images (video: one JPEG per frame) here")
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument("--fov", type=float, metavar="DEG",
                        help="horizontal field of view: metric keypoints_3d (monocular)")
    camera.add_argument("--intrinsics", metavar="FX,FY,CX,CY",
                        help="pinhole intrinsics in px: metric keypoints_3d (monocular)")
    parser.add_argument("--mirrored", action="store_true",
                        help="the images are mirrored (selfie view): swaps the handedness cue")
    parser.add_argument("--max-hands", type=int, default=0, help="override max_hands")
    parser.add_argument("--config", default="", help="pipeline options (hand_pipeline.yaml)")


def _parse_intrinsics(text: str) -> Tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"--intrinsics {text!r} must be four numbers fx,fy,cx,cy")
    return values  # type: ignore[return-value]


def _intrinsics_for(options: argparse.Namespace, width: int, height: int):
    from hand_perception.core.camera import CameraIntrinsics

    if options.fov is not None:
        return CameraIntrinsics.from_fov(width, height, options.fov)
    if options.intrinsics:
        fx, fy, cx, cy = _parse_intrinsics(options.intrinsics)
        return CameraIntrinsics(fx, fy, cx, cy, width, height)
    return None


def _rounded(array: np.ndarray, digits: int) -> List:
    """Nested lists with ``digits`` decimals; NaN becomes null."""
    return [[None if not math.isfinite(v) else round(float(v), digits) for v in row]
            for row in np.asarray(array, np.float64)]


def hand_record(hand, with_3d: bool) -> Dict:
    """The JSON object of one ``PipelineHand``."""
    record = {"track_id": int(hand.track_id), "handedness": hand.handedness,
              "score": round(float(hand.score), 4),
              "keypoints_2d": _rounded(hand.keypoints_2d, 2)}
    if with_3d:
        record["keypoints_3d"] = _rounded(hand.keypoints_3d, 4)
    record["world_keypoints"] = _rounded(hand.world_keypoints, 4)
    return record


def _read_image(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("could not read image (missing, corrupt or unsupported)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _video_frames(path: Path) -> Iterator[Tuple[int, float, np.ndarray]]:
    """(frame number, stamp s, RGB) of every frame of a video; ValueError if it cannot open."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError("could not open as an image or a video")
    fps = capture.get(cv2.CAP_PROP_FPS)
    period = 1.0 / fps if fps and math.isfinite(fps) and fps > 0 else 1.0 / 30.0
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield index, index * period, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if index == 0:
            raise ValueError("could not read any video frame")
    finally:
        capture.release()


class _Runner:
    """Runs the pipeline on inputs and writes JSON lines and annotated images."""

    def __init__(self, options: argparse.Namespace, out: TextIO) -> None:
        import dataclasses

        from hand_perception.core.hand_pipeline import HandPipeline, load_pipeline_options

        pipeline_options = load_pipeline_options(options.config or None)
        pipeline_options = dataclasses.replace(
            pipeline_options, image_is_mirrored=bool(options.mirrored),
            max_hands=options.max_hands or pipeline_options.max_hands)
        self.pipeline = HandPipeline(pipeline_options)
        self.options = options
        self.out = out
        self.annotate = Path(options.annotate) if options.annotate else None
        if self.annotate:
            self.annotate.mkdir(parents=True, exist_ok=True)
        self.failures = 0

    def frame(self, name: str, index: int, stamp_s: float, rgb: np.ndarray,
              annotated_name: str) -> None:
        intrinsics = _intrinsics_for(self.options, rgb.shape[1], rgb.shape[0])
        result = self.pipeline.process(rgb, stamp_s, intrinsics)
        hands = [hand_record(h, intrinsics is not None) for h in result.hands]
        self.out.write(json.dumps({"image": name, "frame": index, "hands": hands}) + "\n")
        self.out.flush()
        if self.annotate:
            import cv2

            from hand_perception.core.drawing import draw_hands

            drawn = draw_hands(rgb, result.hands)
            cv2.imwrite(str(self.annotate / annotated_name), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))

    def image(self, path: Path, index: int) -> None:
        self.pipeline.reset()  # unrelated photos: no tracking across them
        self.frame(str(path), index, 0.0, _read_image(path), f"{path.stem}.png")

    def video(self, path: Path) -> None:
        self.pipeline.reset()
        for index, stamp, rgb in _video_frames(path):
            self.frame(str(path), index, stamp, rgb, f"{path.stem}_{index:06d}.jpg")

    def guarded(self, path: Path, action) -> None:
        try:
            action()
        except (ValueError, OSError) as error:
            self.failures += 1
            print(f"error: {path}: {error}", file=sys.stderr, flush=True)


def run(options: argparse.Namespace) -> int:
    source = Path(options.input).expanduser()
    if not source.exists():
        print(f"error: {source}: no such file or folder", file=sys.stderr)
        return 2
    try:
        if options.intrinsics:
            _parse_intrinsics(options.intrinsics)
        if options.fov is not None and not 1.0 <= options.fov <= 179.0:
            raise ValueError(f"--fov {options.fov} must be in [1, 179] degrees")
        out = open(options.json, "w", encoding="utf-8") if options.json else sys.stdout
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        try:
            runner = _Runner(options, out)
        except (ValueError, OSError) as error:  # bad config, models not prepared
            print(f"error: {error}", file=sys.stderr)
            return 2
        if source.is_dir():
            files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                print(f"error: {source}: no images ({', '.join(IMAGE_SUFFIXES)})", file=sys.stderr)
                return 2
            for index, path in enumerate(files):
                runner.guarded(path, lambda p=path, i=index: runner.image(p, i))
        elif source.suffix.lower() in IMAGE_SUFFIXES:
            runner.guarded(source, lambda: runner.image(source, 0))
        else:
            runner.guarded(source, lambda: runner.video(source))
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if runner.failures else 0
