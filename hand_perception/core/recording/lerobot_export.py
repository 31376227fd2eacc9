"""Export recorded episodes (one bag each) to a LeRobot dataset (format v3.0, lerobot 0.6.x).

Per frame k of an episode (``timestamp = k / fps``):

* ``observation.images.camera``: the camera image (video, AV1 like lerobot's default);
* ``observation.state``: the robot-hand joint positions from ``/robot_hand/joint_states``: what
  the robot would report as its proprioception when the policy runs on it;
* ``action``: the command for the next step: the first row of ``/robot_hand/action_chunk`` when
  the bag has that topic, else the joint positions one frame (1 / fps) later;
* ``timestamp``, ``frame_index``, ``episode_index``, ``index``, ``task_index``; the episode's task
  text (from the bag's metadata) in ``meta/tasks.parquet``.

Resampling: every stream is sampled at ``t0 + k / fps`` by the message with the nearest stamp
(``header.stamp``: the retargeter stamps its outputs with the source image's stamp, so camera and
joints line up exactly; bag receive time where the header stamp is zero). ``t0`` is the latest
first stamp of the streams and the episode ends at the earliest last stamp, so no frame is
extrapolated. A camera slower than ``fps`` repeats images; a faster one skips them.

Format v3.0 is what lerobot 0.4.4 and 0.6.1 both read and write. Checked against lerobot
0.6.1's reader code (datasets/dataset_metadata.py, dataset_reader.py, io_utils.py, utils.py),
which needs Python >= 3.12 and so cannot live in this package's venv; the tests read exports
back with the ``LeRobotDataset`` of lerobot 0.4.4, the newest release that runs on Python 3.11
(installed by scripts/setup.sh). Writing needs only pyarrow, pandas, av.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import yaml

from hand_perception.core.options import require_range
from hand_perception.core.recording import lerobot_format as fmt

_log = logging.getLogger(__name__)
VIDEO_KEY = "observation.images.camera"
_CHANNELS = {"rgb8": (3, False), "bgr8": (3, True), "rgba8": (4, False), "bgra8": (4, True),
             "mono8": (1, False)}


@dataclass
class LeRobotExportOptions:
    """What goes where in the exported dataset."""

    fps: int = 30
    repo_id: str = "local/hands"
    image_topic: str = "/camera/image_raw"
    joints_topic: str = "/robot_hand/joint_states"
    action_chunk_topic: str = "/robot_hand/action_chunk"  # used when the bag has it
    default_task: str = "demonstration"                   # for episodes recorded without a task
    video: fmt.VideoSettings = field(default_factory=fmt.VideoSettings)

    def __post_init__(self) -> None:
        require_range("fps", self.fps, 1, 1000)
        if not isinstance(self.fps, int):
            raise TypeError(f"fps={self.fps!r} must be an integer (lerobot stores it as one)")
        if "/" not in self.repo_id:
            raise ValueError(f"repo_id={self.repo_id!r} must look like 'owner/name'")


@dataclass
class ExportedEpisode:
    episode_index: int
    bag_dir: Path
    task: str
    length: int  # frames


@dataclass
class LeRobotExportResult:
    root: Path
    episodes: List[ExportedEpisode] = field(default_factory=list)

    @property
    def total_frames(self) -> int:
        return sum(e.length for e in self.episodes)


@dataclass
class _Streams:
    """One bag's streams, stamps in ns, sorted."""

    image_stamps: np.ndarray
    joint_stamps: np.ndarray
    joint_names: List[str]
    joints: np.ndarray                 # (N, D) float32
    action_stamps: Optional[np.ndarray] = None
    actions: Optional[np.ndarray] = None  # (M, D) float32, first step of each chunk


def image_to_rgb(msg) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a deserialized sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8/mono8);
    ``ValueError`` naming any other encoding."""
    if msg.encoding not in _CHANNELS:
        raise ValueError(f"image encoding {msg.encoding!r} is not one of {sorted(_CHANNELS)}")
    channels, swap = _CHANNELS[msg.encoding]
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    rgb = pixels[:, :, :3]
    return np.ascontiguousarray(rgb[:, :, ::-1] if swap else rgb)


def _stamp(msg, log_time_ns: int) -> int:
    stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    return int(stamp) if stamp > 0 else int(log_time_ns)


def _reorder(names: Sequence[str], reference: List[str], values: np.ndarray, what: str):
    if list(names) == reference:
        return values
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in reference if n not in index]
    if missing:
        raise ValueError(f"{what}: joints {missing} missing (have {list(names)})")
    return values[[index[n] for n in reference]]


def _read_streams(reader, options: LeRobotExportOptions, bag_dir: Path) -> _Streams:
    by_topic = {c.topic: c for c in reader.connections}
    for topic in (options.image_topic, options.joints_topic):
        if topic not in by_topic:
            raise ValueError(f"{bag_dir}: no topic {topic} (have {sorted(by_topic)})")
    images, image_log_times, joint_stamps, joints, names = [], [], [], [], None
    action_stamps, actions = [], []
    wanted = [by_topic[t] for t in (options.image_topic, options.joints_topic,
                                    options.action_chunk_topic) if t in by_topic]
    for connection, log_time, raw in reader.messages(connections=wanted):
        msg = reader.deserialize(raw, connection.msgtype)
        if connection.topic == options.image_topic:
            images.append(_stamp(msg, log_time))
            image_log_times.append(log_time)
        elif connection.topic == options.joints_topic:
            names = names or list(msg.name)
            joint_stamps.append(_stamp(msg, log_time))
            joints.append(_reorder(msg.name, names, np.asarray(msg.position, np.float32),
                                   options.joints_topic))
        elif msg.horizon > 0 and names:
            first = np.asarray(msg.actions, np.float32).reshape(msg.horizon, -1)[0]
            action_stamps.append(_stamp(msg, log_time))
            actions.append(_reorder(msg.joint_names, names, first, options.action_chunk_topic))
    if not images or not joints:
        raise ValueError(f"{bag_dir}: {options.image_topic} or {options.joints_topic} is empty")
    images = np.asarray(images, np.int64)
    if np.any(np.diff(images) < 0):  # the video is encoded in bag order, so stamps must follow it
        _log.warning("%s: %s header stamps go backwards; using receive times", bag_dir,
                     options.image_topic)
        images = np.asarray(image_log_times, np.int64)
    order = np.argsort(joint_stamps, kind="stable")
    streams = _Streams(images,
                       np.asarray(joint_stamps, np.int64)[order], names,
                       np.stack(joints)[order])
    if actions:
        a_order = np.argsort(action_stamps, kind="stable")
        streams.action_stamps = np.asarray(action_stamps, np.int64)[a_order]
        streams.actions = np.stack(actions)[a_order]
    return streams


def nearest_indices(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For each time, the index of the nearest stamp (ties: the earlier); both sorted, ns."""
    right = np.clip(np.searchsorted(stamps, times), 1, len(stamps) - 1) if len(stamps) > 1 \
        else np.zeros(len(times), np.int64)
    if len(stamps) == 1:
        return right
    left = right - 1
    return np.where(times - stamps[left] <= stamps[right] - times, left, right)


def frame_times(streams: _Streams, fps: int) -> np.ndarray:
    """Frame times (ns) at ``fps`` over the span every stream covers."""
    firsts = [streams.image_stamps[0], streams.joint_stamps[0]]
    lasts = [streams.image_stamps[-1], streams.joint_stamps[-1]]
    if streams.action_stamps is not None:
        firsts.append(streams.action_stamps[0])
        lasts.append(streams.action_stamps[-1])
    start, end = max(firsts), min(lasts)
    if end < start:
        return np.zeros(0, np.int64)
    # rounded: the last frame may lie up to half a period past the last stamp, still "nearest"
    count = int(round((end - start) * fps / 1_000_000_000)) + 1
    return start + (np.arange(count, dtype=np.int64) * 1_000_000_000) // fps


def episode_metadata(bag_dir: Path) -> Dict[str, str]:
    """``task``, ``operator``, ``robot_hand`` of a recorded episode: from the bag's custom_data,
    else from the sidecar episode.yaml (what survives ``ros2 bag reindex``)."""
    meta = yaml.safe_load((bag_dir / "metadata.yaml").read_text(encoding="utf-8")) or {}
    custom = (meta.get("rosbag2_bagfile_information") or {}).get("custom_data") or {}
    found = {k: str(custom.get(f"hand_perception.{k}") or "")
             for k in ("task", "operator", "robot_hand")}
    sidecar = bag_dir / "episode.yaml"
    if not found["task"] and sidecar.is_file():
        data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
        found = {k: str(data.get(k) or "") for k in found}
    return found


class _EpisodeExporter:
    """Writes one bag as one episode: video, frame parquet, stats, episode row."""

    def __init__(self, root: Path, options: LeRobotExportOptions) -> None:
        self.root, self.options = root, options
        self.video_shape: Optional[tuple] = None
        self.joint_names: Optional[List[str]] = None
        self.codec_name = ""

    def export(self, bag_dir: Path, episode_index: int, first_index: int, task_index: int):
        from rosbags.highlevel import AnyReader

        with AnyReader([bag_dir]) as reader:
            streams = _read_streams(reader, self.options, bag_dir)
            times = frame_times(streams, self.options.fps)
            if len(times) < 2:
                raise ValueError(f"{bag_dir}: the streams overlap for fewer than 2 frames")
            self._check_joints(streams.joint_names, bag_dir)
            image_stats = self._write_video(reader, streams, times, episode_index)
        state = streams.joints[nearest_indices(streams.joint_stamps, times)]
        if streams.actions is not None:
            action = streams.actions[nearest_indices(streams.action_stamps, times)]
        else:
            next_times = np.minimum(times + 1_000_000_000 // self.options.fps,
                                    streams.joint_stamps[-1])
            action = streams.joints[nearest_indices(streams.joint_stamps, next_times)]
        n = len(times)
        columns = {"observation.state": state, "action": action,
                   "timestamp": (np.arange(n) / self.options.fps).astype(np.float32),
                   "frame_index": np.arange(n, dtype=np.int64),
                   "episode_index": np.full(n, episode_index, np.int64),
                   "index": np.arange(first_index, first_index + n, dtype=np.int64),
                   "task_index": np.full(n, task_index, np.int64)}
        where = fmt.chunk_and_file(episode_index)
        fmt.write_frames_parquet(self.root / fmt.DATA_PATH.format(**where), columns)
        stats = {k: fmt.feature_stats(v) for k, v in columns.items()}
        stats[VIDEO_KEY] = image_stats
        return n, stats

    def _check_joints(self, names: List[str], bag_dir: Path) -> None:
        if self.joint_names is None:
            self.joint_names = names
        elif names != self.joint_names:
            raise ValueError(f"{bag_dir}: joints {names} differ from the first episode's "
                             f"{self.joint_names}; one dataset needs one robot")

    def _write_video(self, reader, streams: _Streams, times: np.ndarray, episode_index: int):
        """Encode the image nearest each frame time, streaming through the bag once."""
        picks = nearest_indices(streams.image_stamps, times)
        connection = [c for c in reader.connections if c.topic == self.options.image_topic]
        path = self.root / fmt.VIDEO_PATH.format(video_key=VIDEO_KEY,
                                                 **fmt.chunk_and_file(episode_index))
        writer, samples, frame = None, [], 0
        sample_every = max(1, len(times) // 50)  # stats from ~50 frames, as lerobot samples
        # image stamps are in bag order (see _read_streams): the n-th message is image n
        for image_no, (c, _, raw) in enumerate(reader.messages(connections=connection)):
            if frame >= len(picks):
                break
            if picks[frame] != image_no:
                continue
            rgb = image_to_rgb(reader.deserialize(raw, c.msgtype))
            if writer is None:
                writer = self._open_video(path, rgb.shape)
            while frame < len(picks) and picks[frame] == image_no:
                writer.write(rgb)
                if frame % sample_every == 0:
                    samples.append(rgb[::4, ::4])
                frame += 1
        writer.close()
        self.codec_name = self.codec_name or fmt.probe_codec_name(path)
        return fmt.image_stats(np.stack(samples))

    def _open_video(self, path: Path, shape: tuple) -> fmt.VideoWriter:
        if self.video_shape is None:
            self.video_shape = shape
        elif shape != self.video_shape:
            raise ValueError(f"image size {shape} differs from the first episode's "
                             f"{self.video_shape}")
        return fmt.VideoWriter(path, self.options.fps, shape[1], shape[0], self.options.video)


def export_lerobot(bag_dirs: Sequence[Path], out_dir: Path,
                   options: LeRobotExportOptions = LeRobotExportOptions()) -> LeRobotExportResult:
    """Write ``bag_dirs`` (one episode each, in this order) as a new LeRobot dataset at
    ``out_dir`` (must not exist or be empty). ``ValueError`` naming the bag for a bag without
    the camera or joints topic; nothing is left behind on failure."""
    root = Path(out_dir)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} exists and is not empty")
    exporter = _EpisodeExporter(root, options)
    result, tasks, rows, all_stats, robot_types = LeRobotExportResult(root), [], [], [], []
    try:
        for episode_index, bag_dir in enumerate(Path(b) for b in bag_dirs):
            meta = episode_metadata(bag_dir)
            task = meta["task"] or options.default_task
            robot_types.append(meta["robot_hand"])
            tasks += [task] if task not in tasks else []
            first = result.total_frames
            length, stats = exporter.export(bag_dir, episode_index, first, tasks.index(task))
            rows.append(_episode_row(episode_index, task, length, first, stats, options.fps))
            all_stats.append(stats)
            result.episodes.append(ExportedEpisode(episode_index, bag_dir, task, length))
            _log.info("episode %d: %s, %d frames, task %r", episode_index, bag_dir, length, task)
        if not rows:
            raise ValueError("no bags to export")
        robot = robot_types[0] if len(set(robot_types)) == 1 else ""
        _write_meta(root, exporter, options, rows, tasks, all_stats, result.total_frames, robot)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return result


def _episode_row(index: int, task: str, length: int, first: int, stats: Dict, fps: int) -> Dict:
    where = fmt.chunk_and_file(index)
    row = {"episode_index": index, "tasks": [task], "length": length,
           "data/chunk_index": where["chunk_index"], "data/file_index": where["file_index"],
           "dataset_from_index": first, "dataset_to_index": first + length,
           f"videos/{VIDEO_KEY}/chunk_index": where["chunk_index"],
           f"videos/{VIDEO_KEY}/file_index": where["file_index"],
           f"videos/{VIDEO_KEY}/from_timestamp": 0.0,
           f"videos/{VIDEO_KEY}/to_timestamp": length / fps,
           "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
    row.update(fmt.flatten_stats(stats))
    return row


def _write_meta(root: Path, exporter: _EpisodeExporter, options: LeRobotExportOptions,
                rows: List[Dict], tasks: List[str], stats: List[Dict], total_frames: int,
                robot_type: str) -> None:
    height, width, _ = exporter.video_shape
    names = exporter.joint_names
    features = {
        VIDEO_KEY: {"dtype": "video", "shape": [height, width, 3],
                    "names": ["height", "width", "channels"],
                    "info": fmt.video_info(options.video, options.fps, width, height,
                                           exporter.codec_name)},
        "observation.state": {"dtype": "float32", "shape": [len(names)], "names": names},
        "action": {"dtype": "float32", "shape": [len(names)], "names": names}}
    fmt.write_tasks(root, tasks)
    fmt.write_episodes(root, rows)
    fmt.write_stats(root, fmt.aggregate_stats(stats))
    fmt.write_info(root, options.fps, features, robot_type, total_frames, len(rows), len(tasks))
