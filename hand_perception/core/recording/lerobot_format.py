"""Writing LeRobot's dataset format, version "v3.0" (the format of lerobot 0.6.x).

Layout (paths relative to the dataset root, as lerobot/datasets/utils.py defines them)::

    meta/info.json                               codebase_version, fps, features, totals, paths
    meta/stats.json                              per feature: min max mean std count q01..q99
    meta/tasks.parquet                           index "task" (text) -> column task_index
    meta/episodes/chunk-000/file-000.parquet     one row per episode: length, tasks, where its
                                                 frames and video are, its stats/<feature>/<stat>
    data/chunk-CCC/file-FFF.parquet              one row per frame
    videos/<video key>/chunk-CCC/file-FFF.mp4    one video per episode and camera

Here every episode gets its own data file and video file (file index = episode index modulo
``chunks_size``), which the format allows: lerobot finds both through the episode's row.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
DEFAULT_FEATURES = {name: {"dtype": dtype, "shape": [1], "names": None} for name, dtype in (
    ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
    ("index", "int64"), ("task_index", "int64"))}


def chunk_and_file(episode_index: int) -> Dict[str, int]:
    chunk, file = divmod(int(episode_index), CHUNKS_SIZE)
    return {"chunk_index": chunk, "file_index": file}


def feature_stats(values: np.ndarray) -> Dict[str, np.ndarray]:
    """LeRobot's statistics of ``values`` (N, D) over the frames: arrays of shape (D,)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    stats = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0),
             "std": values.std(0), "count": np.array([len(values)])}
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(values, q, axis=0)
    return stats


def image_stats(frames: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-channel statistics of (N, H, W, 3) uint8 frames scaled to [0, 1], shaped (3, 1, 1)
    as lerobot stores camera statistics; ``count`` is the number of frames."""
    pixels = frames.reshape(-1, frames.shape[-1]).astype(np.float64) / 255.0
    stats = feature_stats(pixels)
    shaped = {k: v.reshape(-1, 1, 1) for k, v in stats.items() if k != "count"}
    shaped["count"] = np.array([len(frames)])
    return shaped


def aggregate_stats(per_episode: Sequence[Dict[str, Dict[str, np.ndarray]]]) -> Dict:
    """Dataset statistics from episode statistics: count-weighted means, pooled variance,
    overall min/max, count-weighted quantiles (what lerobot's aggregate_stats does)."""
    merged: Dict[str, Dict[str, np.ndarray]] = {}
    for key in per_episode[0]:
        parts = [ep[key] for ep in per_episode]
        weights = np.array([float(p["count"][0]) for p in parts])
        w = (weights / weights.sum()).reshape(-1, *[1] * parts[0]["mean"].ndim)
        means = np.stack([p["mean"] for p in parts])
        mean = (w * means).sum(0)
        variance = (w * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
        merged[key] = {"min": np.min([p["min"] for p in parts], 0),
                       "max": np.max([p["max"] for p in parts], 0), "mean": mean,
                       "std": np.sqrt(variance), "count": np.array([int(weights.sum())])}
        for name in QUANTILES:
            merged[key][name] = (w * np.stack([p[name] for p in parts])).sum(0)
    return merged


def _jsonable(stats: Dict) -> Dict:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


def write_json(path: Path, data: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")


def write_frames_parquet(path: Path, columns: Dict[str, np.ndarray]) -> None:
    """One episode's frames: 1-D features as fixed-size lists, scalars as plain columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.ndim == 2:
            flat = pa.array(values.reshape(-1), type=pa.from_numpy_dtype(values.dtype))
            arrays[name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        else:
            arrays[name] = pa.array(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays), path, compression="snappy")


def write_tasks(root: Path, tasks: List[str]) -> None:
    """``meta/tasks.parquet``: a pandas frame indexed by the task text (lerobot reads it with
    pandas and looks tasks up by that index)."""
    import pandas as pd

    path = root / "meta" / "tasks.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)},
                 index=pd.Index(tasks, name="task")).to_parquet(path)


def write_episodes(root: Path, rows: List[Dict]) -> None:
    """``meta/episodes/chunk-000/file-000.parquet`` from one dict per episode."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{k: (np.asarray(v).tolist() if isinstance(v, np.ndarray)
                                       else v) for k, v in row.items()} for row in rows])
    path = root / EPISODES_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_info(root: Path, fps: int, features: Dict, robot_type: str, total_frames: int,
               total_episodes: int, total_tasks: int) -> None:
    write_json(root / "meta" / "info.json", {
        "codebase_version": CODEBASE_VERSION, "fps": int(fps),
        "features": {**features, **DEFAULT_FEATURES},
        "total_episodes": total_episodes, "total_frames": total_frames,
        "total_tasks": total_tasks, "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200, "data_path": DATA_PATH, "video_path": VIDEO_PATH,
        "robot_type": robot_type or None, "splits": {"train": f"0:{total_episodes}"}})


def write_stats(root: Path, stats: Dict) -> None:
    write_json(root / "meta" / "stats.json", _jsonable(stats))


@dataclass
class VideoSettings:
    """Encoder settings; the defaults are lerobot's (AV1 by SVT-AV1, GOP 2, CRF 30)."""

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int = 2
    crf: int = 30
    preset: int = 12  # SVT-AV1's fastest: export time matters more than a few percent of size

    def codec_options(self) -> Dict[str, str]:
        options = {"g": str(self.g), "crf": str(self.crf)}
        if self.vcodec == "libsvtav1":
            options["preset"] = str(self.preset)
        return options


class VideoWriter:
    """Encodes RGB frames (H, W, 3) uint8 at a fixed rate; frame k has pts k / fps exactly, so
    lerobot finds frame k at ``from_timestamp + k / fps``."""

    def __init__(self, path: Path, fps: int, width: int, height: int,
                 settings: VideoSettings) -> None:
        import av

        os.environ.setdefault("SVT_LOG", "2")  # SVT-AV1 prints its whole config at "info"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._av = av
        self._container = av.open(str(path), mode="w")
        self._stream = self._container.add_stream(settings.vcodec, rate=int(fps),
                                                  options=settings.codec_options())
        self._stream.width, self._stream.height = int(width), int(height)
        self._stream.pix_fmt = settings.pix_fmt
        self._stream.time_base = Fraction(1, int(fps))
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


def video_info(settings: VideoSettings, fps: int, width: int, height: int,
               codec_name: str) -> Dict:
    """The ``info`` block lerobot keeps for a video feature (see its get_video_info)."""
    return {"video.height": int(height), "video.width": int(width), "video.codec": codec_name,
            "video.pix_fmt": settings.pix_fmt, "video.fps": int(fps), "video.channels": 3,
            "video.g": settings.g, "video.crf": settings.crf, "has_audio": False,
            "is_depth_map": False}


def probe_codec_name(path: Path) -> str:
    """The canonical codec name of the first video stream (e.g. "av1")."""
    import av

    with av.open(str(path)) as container:
        return container.streams.video[0].codec.canonical_name


def flatten_stats(stats: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, Iterable]:
    """``stats/<feature>/<stat>`` columns of an episode row."""
    return {f"stats/{key}/{name}": np.asarray(value).tolist()
            for key, per in stats.items() for name, value in per.items()}
