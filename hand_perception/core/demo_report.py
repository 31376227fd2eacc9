"""What ``hand-perception demo`` measured and writes: per-frame records, the latency plot, the
one-screen summary and the annotated H.264 video. Plain Python (no ROS): the demo runner fills a
:class:`DemoReport` while the node graph runs.

Latency stages of one frame (milliseconds): the tracker's own timings (``detect``, ``landmark``,
``track``, ``lift``, ``total`` = the hand pipeline, see core/hand_pipeline.py), ``camera_to_hands``
(camera publishes the frame -> its HandArray arrives: pipeline + image conversion + DDS) and
``hands_to_command`` (HandArray -> the robot-hand JointState for that frame: retargeting + DDS).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

_log = logging.getLogger(__name__)

#: stage key -> label, in pipeline order
PIPELINE_STAGES = {"detect": "palm detector", "landmark": "hand landmarks",
                   "track": "tracking", "lift": "3D lifting"}
STAGE_LABELS = dict(PIPELINE_STAGES, total="hand pipeline (sum)",
                    camera_to_hands="camera -> /hands", hands_to_command="/hands -> robot command")


@dataclass
class HandSeen:
    """One hand in one frame: tracker ID, the person's hand ("left"/"right"), presence score."""

    track_id: int
    handedness: str
    score: float


@dataclass
class FrameRecord:
    """One processed frame: ``index`` from 0, ``stamp_s`` (s, the image stamp), its hands and
    ``timings_ms`` (stage -> ms; a stage that was not measured for this frame is absent)."""

    index: int
    stamp_s: float
    hands: List[HandSeen] = field(default_factory=list)
    timings_ms: Dict[str, float] = field(default_factory=dict)
    received_s: float = 0.0  # monotonic clock (s) when the result arrived


@dataclass
class DemoReport:
    """Everything the summary and the plot show. ``frames_in``: frames the camera delivered;
    ``frames``: those with a tracker result; ``wall_s``: seconds from the first frame to the last
    result; ``commands``: robot hand -> JointState messages; ``files``: what -> path/description;
    ``mode``: how frames were paced, for the summary."""

    input_name: str
    frames: List[FrameRecord] = field(default_factory=list)
    frames_in: int = 0
    wall_s: float = 0.0
    commands: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    mode: str = "the camera waits for each frame's hands: none dropped"

    @property
    def fps(self) -> float:
        """Processed frames per wall-clock second (0 before any)."""
        return len(self.frames) / self.wall_s if self.wall_s > 0 else 0.0

    def stage_values(self, stage: str) -> np.ndarray:
        """(N,) float64 ms of ``stage`` over the frames that measured it."""
        return np.asarray([f.timings_ms[stage] for f in self.frames if stage in f.timings_ms],
                          np.float64)

    def stage_stats(self) -> Dict[str, Tuple[float, float, int]]:
        """stage -> (mean ms, 95th percentile ms, samples), for the stages with samples."""
        stats = {}
        for stage in STAGE_LABELS:
            values = self.stage_values(stage)
            if len(values):
                stats[stage] = (float(values.mean()), float(np.percentile(values, 95)), len(values))
        return stats

    def tracks(self) -> Dict[int, Tuple[str, int]]:
        """track ID -> (most frequent handedness, frames it was seen in)."""
        seen: Dict[int, List[str]] = {}
        for frame in self.frames:
            for hand in frame.hands:
                seen.setdefault(hand.track_id, []).append(hand.handedness)
        return {tid: (max(set(sides), key=sides.count), len(sides))
                for tid, sides in sorted(seen.items())}

    def summary_lines(self) -> List[str]:
        """The one-screen summary printed at the end of the demo."""
        with_hands = sum(1 for f in self.frames if f.hands)
        lines = [f"input      {self.input_name}",
                 f"processed  {len(self.frames)} of {self.frames_in} frames in {self.wall_s:.1f} s"
                 f" = {self.fps:.1f} FPS ({self.mode})",
                 f"hands      found in {with_hands} of {len(self.frames)} frames"]
        lines.append("tracks     " + self._tracks_text())
        if self.commands:
            lines.append("robot      " + ", ".join(f"{name}: {n} commands"
                                                  for name, n in self.commands.items()))
        lines.append(f"latency    {'stage':<24}{'mean ms':>9}{'p95 ms':>9}")
        for stage, (mean, p95, _) in self.stage_stats().items():
            lines.append(f"           {STAGE_LABELS[stage]:<24}{mean:9.1f}{p95:9.1f}")
        lines.append("files")
        lines += [f"  {what:<10} {where}" for what, where in self.files.items()]
        lines += [f"note       {note}" for note in self.notes]
        return lines


    def _tracks_text(self, most: int = 5) -> str:
        """The longest ``most`` tracks, e.g. ``#1 left (90 frames), ... and 3 more``."""
        tracks = sorted(self.tracks().items(), key=lambda item: -item[1][1])
        text = ", ".join(f"#{tid} {side} ({n} frame{'s' if n != 1 else ''})"
                         for tid, (side, n) in tracks[:most])
        more = f" and {len(tracks) - most} shorter" if len(tracks) > most else ""
        return (text + more) or "none"


def plot_latency(report: DemoReport, path: Path, title: str = "") -> Path:
    """Write a PNG: per-frame latency stacked by stage (left) and each stage's mean with its
    95th percentile (right). Needs matplotlib (Agg back-end, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_bars) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100,
                                           gridspec_kw={"width_ratios": [2.2, 1]})
    _plot_per_frame(ax_time, report)
    _plot_stage_bars(ax_bars, report)
    fig.suptitle(title or f"Per-stage latency: {len(report.frames)} frames at "
                          f"{report.fps:.1f} FPS on {os.cpu_count()} CPU cores", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _stacked_stages(report: DemoReport) -> Dict[str, np.ndarray]:
    """Per frame (N,) ms of each stacked layer: pipeline stages, then what camera -> /hands adds
    beyond the pipeline (conversion, DDS), then /hands -> robot command. Missing -> 0."""
    def column(stage: str) -> np.ndarray:
        return np.asarray([f.timings_ms.get(stage, 0.0) for f in report.frames], np.float64)

    layers = {label: column(stage) for stage, label in PIPELINE_STAGES.items()}
    end_to_end, total = column("camera_to_hands"), column("total")
    layers["conversion + DDS"] = np.where(end_to_end > 0, np.maximum(end_to_end - total, 0.0), 0.0)
    layers["retargeting + DDS"] = column("hands_to_command")
    return layers


def _plot_per_frame(ax, report: DemoReport) -> None:
    index = np.asarray([f.index for f in report.frames])
    layers = _stacked_stages(report)
    if len(index):
        ax.stackplot(index, *layers.values(), labels=list(layers), linewidth=0)
        ceiling = np.percentile(sum(layers.values()), 99) * 1.3  # warm-up spike: clipped, noted
        ax.set_ylim(0, max(ceiling, 1.0))
        first = float(sum(v[0] for v in layers.values()))
        if first > ceiling:
            ax.annotate(f"first frame {first:.0f} ms (warm-up)", (index[0], ceiling * 0.97),
                        fontsize=8, va="top")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame")
    ax.set_ylabel("latency (ms)")
    ax.set_title("per frame: camera -> robot command, stacked by stage", fontsize=10)
    ax.legend(loc="upper right", fontsize=7, ncol=2, framealpha=0.8)
    ax.grid(alpha=0.3)


def _plot_stage_bars(ax, report: DemoReport) -> None:
    stats = report.stage_stats()
    stages = [s for s in STAGE_LABELS if s in stats]
    means = [stats[s][0] for s in stages]
    p95s = [stats[s][1] for s in stages]
    y = np.arange(len(stages))
    ax.barh(y, means, color="tab:blue", alpha=0.8, label="mean")
    ax.scatter(p95s, y, color="tab:red", marker="|", s=200, label="p95", zorder=3)
    ax.set_yticks(y, [STAGE_LABELS[s] for s in stages], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms")
    ax.set_title("mean and p95 per stage", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(axis="x", alpha=0.3)


class VideoWriter:
    """Writes RGB frames (H, W, 3) uint8 as an H.264 MP4 (plays in browsers and players) at a
    fixed ``fps``; MPEG-4 Part 2 where this PyAV build has no H.264 encoder."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        import av

        self._av = av
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(str(self.path), mode="w")
        options = {"crf": "23", "preset": "veryfast"} if codec == "libx264" else {}
        self._stream = self._container.add_stream(codec, rate=rate, options=options)
        self._stream.width, self._stream.height = int(width) // 2 * 2, int(height) // 2 * 2
        self._stream.pix_fmt = "yuv420p"
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame; cropped to even width/height (yuv420p needs both)."""
        height, width = self._stream.height, self._stream.width
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]),
                                                 format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


def frame_label(record: FrameRecord, total: Optional[int] = None) -> str:
    """Top-left caption of an annotated frame, e.g. ``"frame 12/120  pipeline 31 ms"``."""
    count = f"/{total}" if total else ""
    pipeline = record.timings_ms.get("total")
    return f"frame {record.index + 1}{count}" + (f"  pipeline {pipeline:.0f} ms"
                                                  if pipeline is not None else "")


def draw_caption(rgb: np.ndarray, text: str) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with ``text`` on a dark strip at the bottom left (in place; the
    hands' labels sit above the hands, so the top is theirs)."""
    import cv2

    scale = max(rgb.shape[:2]) / 640.0
    font_scale, thickness = 0.5 * scale, max(1, int(round(scale)))
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    pad = int(4 * scale)
    top = rgb.shape[0] - (height + base + 2 * pad)
    cv2.rectangle(rgb, (0, top), (width + 2 * pad, rgb.shape[0]), (0, 0, 0), -1)
    cv2.putText(rgb, text, (pad, top + pad + height), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return rgb
