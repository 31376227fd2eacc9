"""``hand-perception demo``: camera -> hand tracker -> retargeting -> recorder, in one process.

    hand-perception demo                         # the sample clip (made from set-up's photos)
    hand-perception demo --input video.mp4       # or an image, a folder of images, a webcam ("0")
    hand-perception demo --input ros:/camera/image_raw --duration 20   # a live ROS image topic

Runs the record graph (config/graphs/record.yaml) in this process on loopback DDS, every frame
through the tracker (the camera waits for it), driving two robot hands (allegro_left and
allegro_right: each person's hand drives the robot hand of its side). Writes into ``--out``:

* ``annotated.mp4``: every frame with the hands' skeletons, handedness, track ID and score;
* ``bag/episode_*/``: the recorded episode (rosbag2/MCAP: camera, /hands, robot commands);
* ``lerobot/``: that episode as a LeRobot dataset (the robot hand driven most);
* ``latency.png``: per-stage latency per frame and its mean/p95; ``summary.txt``: the summary.

Nothing is fetched: the sample clip is made from the photos set-up extracted.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Tuple

HELP = "run camera -> hand tracker -> retargeter -> recorder on a sample clip and report"
DEFAULT_OUT = Path("hand_perception_demo")
CLIP_FRAMES = 120
STILL_FRAMES = 30
OUTPUTS = ("annotated.mp4", "bag", "lerobot", "latency.png", "summary.txt")


def _size(text: str) -> Tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x480")
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"size {text!r} is outside 16..8192 px")
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default="", help="image, image folder, video file, webcam "
                        "index, or ros:/image/topic (default: the sample clip)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder; its demo outputs are replaced (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=None, help="process at most N frames "
                        f"(default: clip {CLIP_FRAMES}, all of a folder or video, "
                        f"{STILL_FRAMES} of an image or webcam, no limit for a topic)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many "
                        "seconds (default for a ROS topic: 10; else no limit)")
    parser.add_argument("--fps", type=float, default=30.0,
                        help="camera rate = rate of the stamps, video and dataset (default: 30)")
    parser.add_argument("--size", type=_size, default=None, help="resize frames to WxH "
                        "(default: 640x480 for the clip, else the input's size)")
    parser.add_argument("--robot-hands", nargs="+", default=None, metavar="HAND",
                        help="<hand>_<side> robot hands (default: allegro_left allegro_right)")
    parser.add_argument("--task", default=None, help="task text of the recorded episode")


def _count_frames(path: Path) -> Optional[int]:
    """Frames of a video file by its header (None when it does not say)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"--input {str(path)!r} is neither an image nor a video OpenCV "
                             f"can open")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 else None
    finally:
        capture.release()


def _limit(requested: Optional[int], available: Optional[int], default: Optional[int]) -> int:
    wanted = requested if requested is not None else (default or available or 0)
    return min(wanted, available) if available else wanted


def resolve_input(options: argparse.Namespace, workdir: Path) -> dict:
    """DemoSettings fields for ``--input``; ``ValueError`` with a clear message when it is not
    usable. The sample clip is written as JPEG frames into ``workdir``."""
    from hand_perception.core.frame_source import IMAGE_SUFFIXES

    text, frames = options.input.strip(), options.frames
    if frames is not None and frames < 1:
        raise ValueError(f"--frames {frames} must be at least 1")
    if not text:
        return _sample_clip(options, workdir)
    if text.startswith("ros:"):
        if not text[4:].startswith("/"):
            raise ValueError(f"--input {text!r}: name the topic in full, e.g. "
                             f"ros:/camera/image_raw")
        return {"ros_topic": text[4:], "max_frames": frames or 0,
                "input_name": f"ROS topic {text[4:]}", "duration_s": options.duration or 10.0}
    if text.isdigit():
        return {"source": text, "max_frames": _limit(frames, None, STILL_FRAMES),
                "input_name": f"webcam {text}"}
    path = Path(text).expanduser()
    if path.is_dir():
        count = sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not count:
            raise ValueError(f"--input {text!r}: the folder has no images "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        return {"source": str(path), "max_frames": _limit(frames, count, None),
                "input_name": f"folder {path} ({count} images, each on its own)",
                "pipeline_config": str(_static_pipeline_config(workdir))}
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return {"source": str(path), "loop": True, "input_name": f"image {path}",
                "max_frames": _limit(frames, None, STILL_FRAMES)}
    if path.is_file():
        return {"source": str(path), "max_frames": _limit(frames, _count_frames(path), None),
                "input_name": f"video {path}"}
    raise ValueError(f"--input {text!r} is not a file, a folder, a webcam index or "
                     f"ros:/image/topic")


def _static_pipeline_config(workdir: Path) -> Path:
    """The tracker's pipeline options with ``static_image_mode``: the images of a folder are
    taken as unrelated photos (the palm detector runs on each; no hand is followed from the
    previous photo's position)."""
    import yaml

    from hand_perception.paths import config_path

    source = config_path("hand_pipeline.yaml")
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["hand_pipeline"]["static_image_mode"] = True
    # component sections are named relative to the file's folder: point them at the original's
    data["sections"] = {name: str(source.parent / ref) for name, ref in data["sections"].items()}
    path = workdir / "hand_pipeline_static.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _sample_clip(options: argparse.Namespace, workdir: Path) -> dict:
    from hand_perception.core.sample_clip import (DEFAULT_SHOTS, SampleClip, SampleClipOptions,
                                                  load_photos)
    from hand_perception.paths import sample_path

    width, height = options.size or (640, 480)
    photos = load_photos({shot.photo: sample_path(shot.photo) for shot in DEFAULT_SHOTS})
    clip = SampleClip(SampleClipOptions(frames=options.frames or CLIP_FRAMES, width=width,
                                        height=height, fps=options.fps), photos)
    clip.write_folder(workdir)
    names = " + ".join(dict.fromkeys(shot.photo for shot in DEFAULT_SHOTS))
    return {"source": str(workdir), "max_frames": len(clip),
            "input_name": f"sample clip: {len(clip)} frames {width}x{height} of {names}"}


class AnnotatedVideo:
    """Draws each processed frame's hands and writes it to an MP4 (frames of another size than
    the first are letterboxed into it)."""

    def __init__(self, path: Path, fps: float, total: int = 0) -> None:
        self.path, self.fps, self.total = path, fps, total
        self.writer = None
        self.size: Optional[Tuple[int, int]] = None

    def __call__(self, frame) -> None:
        from hand_perception.core.demo_report import VideoWriter, draw_caption, frame_label
        from hand_perception.core.drawing import draw_hands

        if frame.rgb is None:
            return  # the image was not seen (a live topic): nothing to draw on
        image = draw_caption(draw_hands(frame.rgb, frame.hands), frame_label(frame.record,
                                                                             self.total))
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            self.writer = VideoWriter(self.path, self.fps, *self.size)
        self.writer.write(self._fit(image))

    def _fit(self, image):
        import cv2
        import numpy as np

        width, height = self.size
        if (image.shape[1], image.shape[0]) == (width, height):
            return image
        scale = min(width / image.shape[1], height / image.shape[0])
        resized = cv2.resize(image, (max(1, int(image.shape[1] * scale)),
                                     max(1, int(image.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        canvas = np.zeros((height, width, 3), np.uint8)
        top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
        canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
        return canvas

    def close(self) -> int:
        if self.writer is not None:
            self.writer.close()
        return self.writer.frames if self.writer is not None else 0


def _clear_outputs(out: Path) -> None:
    """Remove what an earlier demo run wrote to ``out`` (only the demo's own names)."""
    for name in OUTPUTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def export_episode(run, settings, out: Path) -> str:
    """The recorded episode as a LeRobot dataset of the robot hand driven in the most frames;
    a line for the summary (what was written, or why not)."""
    from hand_perception.core.recording.lerobot_export import (LeRobotExportOptions,
                                                               export_lerobot)
    from hand_perception.ros.demo_graph import robot_sides, robot_topic_prefix

    sides = robot_sides(settings.robot_hands)
    seen = {side: sum(any(h.handedness == side for h in f.hands) for f in run.report.frames)
            for side in sides}
    side = max(seen, key=seen.get)
    prefix = robot_topic_prefix(side, settings.robot_hands)
    options = LeRobotExportOptions(fps=max(1, int(round(settings.fps))),
                                   repo_id="local/hand_perception_demo",
                                   image_topic=settings.image_topic,
                                   joints_topic=prefix + "joint_states",
                                   action_chunk_topic=prefix + "action_chunk")
    try:
        result = export_lerobot([run.bag_dir], out, options)
    except (ValueError, OSError) as error:
        hint = " (the images differ in size: --size WxH makes them one)" \
            if settings.size == (0, 0) and "shape" in str(error) else ""
        return f"not written: {error}{hint}"
    return (f"{out}/ (1 episode, {result.total_frames} frames at {options.fps} fps, "
            f"{sides[side]})")


def _plot(report, path: Path) -> str:
    from hand_perception.core.demo_report import plot_latency

    try:
        return str(plot_latency(report, path))
    except ImportError as error:  # matplotlib is optional on a robot
        return f"not written: {error}"


class _NoBar:
    def update(self, _n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    # disable=None: a bar on a terminal, nothing in a log file or a pipe
    return tqdm(total=total or None, unit="frame", desc="hands", disable=None, leave=False,
                dynamic_ncols=True)


def _run(options: argparse.Namespace, out: Path, workdir: Path) -> int:
    from hand_perception.ros.demo_graph import DEFAULT_ROBOT_HANDS, DEFAULT_TASK, DemoSettings
    from hand_perception.ros.demo_runner import run_demo

    try:
        fields = resolve_input(options, workdir)
        fields.setdefault("duration_s", options.duration)
        settings = DemoSettings(
            out_dir=out, fps=options.fps, size=options.size or (0, 0),
            robot_hands=tuple(options.robot_hands or DEFAULT_ROBOT_HANDS),
            task=options.task or DEFAULT_TASK, verbose=options.verbose, **fields)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _clear_outputs(out)
    print(f"hand-perception demo: {settings.input_name}\n"
          f"  camera -> hand tracker -> retargeting ({', '.join(settings.robot_hands)}) -> "
          f"recorder, in this process; loading models...", flush=True)
    video = AnnotatedVideo(out / "annotated.mp4", settings.fps, settings.max_frames)
    bar = _progress_bar(settings.max_frames)
    try:
        run = run_demo(settings, video, progress=bar.update)
    finally:
        bar.close()
        frames_written = video.close()
    report = run.report
    report.files["video"] = f"{video.path} ({frames_written} frames)"
    report.files["bag"] = f"{run.bag_dir}/"
    print("exporting the LeRobot episode...", flush=True)
    report.files["lerobot"] = export_episode(run, settings, out / "lerobot")
    report.files["plot"] = _plot(report, out / "latency.png")
    report.files["summary"] = str(out / "summary.txt")
    text = "\n".join(report.summary_lines())
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if report.frames else 1


def run(options: argparse.Namespace) -> int:
    from hand_perception.ros.dds_env import apply_local_dds_environment

    apply_local_dds_environment()  # the demo talks only to itself: DDS stays on this machine
    if not options.verbose:  # a progress bar and a summary; the libraries' chatter with -v
        logging.getLogger().setLevel(logging.WARNING)
        os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder of the LeRobot export: errors
    out = options.out.expanduser().resolve()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hand_perception_clip_") as workdir:
        try:
            out.mkdir(parents=True, exist_ok=True)
            code = _run(options, out, Path(workdir))
        except (RuntimeError, ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted: the recorded episode was closed; other outputs are incomplete",
                  file=sys.stderr)
            return 130
    if code == 0:
        print(f"done in {time.monotonic() - start:.1f} s")
    return code
