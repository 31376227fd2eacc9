"""Episode recorder: serialized messages in, one rosbag2/MCAP bag per episode out.

Why one bag per episode: an episode is the unit a demonstration data set is made of (LeRobot's
``episode_index``), so a bag per episode exports one-to-one, a failed demonstration is deleted
with its directory, and a crash damages one episode only. The per-episode metadata (task,
operator, robot hand, start/end, message counts, drops) goes into the bag's ``custom_data``
(metadata.yaml) and into a sidecar ``episode.yaml`` written at start and updated at stop, which
survives a crash and ``ros2 bag reindex`` (that rebuilds metadata.yaml from the MCAP).

Threads: ``write()`` is called from subscription callbacks and only appends to a bounded queue
(count and bytes); a single writer thread drains it into the bag. When the disk cannot keep up the
OLDEST queued message is dropped and counted per topic, so memory stays bounded and the newest
data wins. Nothing ROS here: messages arrive already serialized (CDR) with topic, type and stamp.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Deque, Dict, Mapping, Optional, Tuple

import yaml

from hand_perception.core.options import require_range
from hand_perception.core.recording.bag_writer import EpisodeBagWriter
from hand_perception.core.recording.message_definitions import MessageDefinitionSource

_log = logging.getLogger(__name__)
EPISODE_FILE = "episode.yaml"


@dataclass
class RecorderOptions:
    """Where episodes go and how much may wait in memory."""

    output_dir: str = "episodes"     # one bag directory per episode is created under it
    max_queue_messages: int = 256    # queued messages before the oldest is dropped
    max_queue_mb: float = 512.0      # queued payload (MiB) before the oldest is dropped
    max_chunk_age_s: float = 0.5     # an MCAP chunk is closed (and survives kill -9) by this age
    stop_timeout_s: float = 30.0     # how long stop_episode() waits for the queue to drain

    def __post_init__(self) -> None:
        if not isinstance(self.output_dir, str) or not self.output_dir.strip():
            raise ValueError(f"output_dir={self.output_dir!r} must be a non-empty path")
        require_range("max_queue_messages", self.max_queue_messages, 1, 1_000_000)
        require_range("max_queue_mb", self.max_queue_mb, 1.0, 1_000_000.0)
        require_range("max_chunk_age_s", self.max_chunk_age_s, 0.01, 3600.0)
        require_range("stop_timeout_s", self.stop_timeout_s, 0.1, 3600.0)


@dataclass
class EpisodeMetadata:
    """Free text describing one demonstration; stored with the bag."""

    task: str = ""        # what the demonstrator does, e.g. "pick up the red cube"
    operator: str = ""
    robot_hand: str = ""  # robot hand model the retargeter drives, e.g. "allegro_right"

    def __post_init__(self) -> None:
        for name in ("task", "operator", "robot_hand"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name}={getattr(self, name)!r} must be a string")


@dataclass
class EpisodeSummary:
    """What one finished (or still running) episode holds."""

    bag_dir: Path
    episode_index: int
    metadata: EpisodeMetadata
    start_time_ns: int
    end_time_ns: int = 0
    message_counts: Dict[str, int] = field(default_factory=dict)   # written to the bag
    dropped_counts: Dict[str, int] = field(default_factory=dict)   # dropped: queue full
    error: str = ""  # set when the writer failed; what was written before is still in the bag

    @property
    def total_written(self) -> int:
        return sum(self.message_counts.values())

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped_counts.values())


_QueueItem = Tuple[str, int, bytes]  # topic, stamp_ns, data


class EpisodeRecorder:
    """Records serialized messages of registered topics into one bag per episode.

    ``start_episode()`` / ``stop_episode()`` raise ``RuntimeError`` (stop without start, start
    while recording) or ``OSError`` / ``ValueError`` (unwritable directory, unknown type) with a
    clear message and leave the recorder usable. ``write()`` never blocks and never raises.
    """

    def __init__(self, options: RecorderOptions = RecorderOptions(),
                 definitions: Optional[MessageDefinitionSource] = None) -> None:
        self.options = options
        self._definitions = definitions or MessageDefinitionSource()
        self._topics: Dict[str, str] = {}
        self._cond = threading.Condition()
        self._queue: Deque[_QueueItem] = collections.deque()
        self._queued_bytes = 0
        self.peak_queued_bytes = 0
        self._bag: Optional[EpisodeBagWriter] = None
        self._episode: Optional[EpisodeSummary] = None
        self._stopping = False
        self._closing = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._writer_loop, name="episode-writer",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ topics and state
    def add_topic(self, topic: str, type_name: str) -> None:
        """Record ``topic`` (type ``pkg/msg/Type``) from now on; ``ValueError`` if the type's
        definition is not installed. A running episode's bag gets it with its first message
        (only the writer thread touches the bag)."""
        self._definitions.definition(type_name)
        with self._cond:
            self._topics[topic] = type_name

    @property
    def topics(self) -> Dict[str, str]:
        with self._cond:
            return dict(self._topics)

    @property
    def recording(self) -> bool:
        with self._cond:
            return self._episode is not None and not self._stopping

    @property
    def current_episode(self) -> Optional[EpisodeSummary]:
        with self._cond:
            return self._episode

    def written_total(self) -> int:
        """Messages of the running episode already in its bag (0 when idle)."""
        bag = self._bag
        return sum(bag.counts.values()) if bag is not None else 0

    @property
    def queued_bytes(self) -> int:
        with self._cond:
            return self._queued_bytes

    # ------------------------------------------------------------------ episodes
    def next_episode_index(self, output_dir: Optional[str] = None) -> int:
        """One more than the highest ``episode_NNNNNN_*`` under the output directory."""
        root = Path(output_dir or self.options.output_dir).expanduser()
        indices = [int(p.name.split("_")[1]) for p in root.glob("episode_*_*")
                   if p.is_dir() and p.name.split("_")[1].isdigit()]
        return max(indices, default=-1) + 1

    def start_episode(self, metadata: EpisodeMetadata = EpisodeMetadata(),
                      output_dir: Optional[str] = None) -> Path:
        """Open a new bag ``episode_NNNNNN_<date-time>`` under ``output_dir`` (default: the
        options') and record every registered topic into it."""
        with self._cond:
            if self._episode is not None:
                raise RuntimeError(f"an episode is already recording into {self._episode.bag_dir}")
            if not self._topics:
                raise RuntimeError("no topics to record: add_topic() first")
            topics = dict(self._topics)
        root = Path(output_dir or self.options.output_dir).expanduser()
        index = self.next_episode_index(str(root))
        bag_dir = root / f"episode_{index:06d}_{time.strftime('%Y%m%d-%H%M%S')}"
        summary = EpisodeSummary(bag_dir, index, metadata, time.time_ns())
        bag = EpisodeBagWriter(bag_dir, self._definitions, _custom_data(summary),
                               self.options.max_chunk_age_s)
        bag.open(topics)  # raises OSError / ValueError before anything is recorded
        _write_episode_file(summary, "recording")
        with self._cond:
            self._bag, self._episode, self._stopping = bag, summary, False
            self._idle.clear()
        _log.info("episode %d recording into %s", index, bag_dir)
        return bag_dir

    def stop_episode(self) -> EpisodeSummary:
        """Drain the queue into the bag, close it and return the episode's summary."""
        with self._cond:
            if self._episode is None or self._stopping:
                raise RuntimeError("stop_episode: no episode is recording")
            self._stopping = True
            summary = self._episode
            self._cond.notify_all()
        if not self._idle.wait(self.options.stop_timeout_s):
            raise RuntimeError(f"episode {summary.episode_index}: the writer did not finish in "
                               f"{self.options.stop_timeout_s} s; it goes on in the background")
        _log.info("episode %d: %d messages written, %d dropped, into %s", summary.episode_index,
                  summary.total_written, summary.total_dropped, summary.bag_dir)
        return summary

    def write(self, topic: str, stamp_ns: int, data: bytes) -> bool:
        """Queue one serialized message; False when not recording or the topic is unknown.
        Drops (and counts) the oldest queued messages when the queue is over its bounds."""
        size = len(data)
        with self._cond:
            episode = self._episode
            if episode is None or self._stopping or topic not in self._topics:
                return False
            self._queue.append((topic, int(stamp_ns), data))
            self._queued_bytes += size
            limit_bytes = self.options.max_queue_mb * 2 ** 20
            while len(self._queue) > 1 and (len(self._queue) > self.options.max_queue_messages
                                            or self._queued_bytes > limit_bytes):
                dropped_topic, _, dropped = self._queue.popleft()
                self._queued_bytes -= len(dropped)
                episode.dropped_counts[dropped_topic] = episode.dropped_counts.get(
                    dropped_topic, 0) + 1
            self.peak_queued_bytes = max(self.peak_queued_bytes, self._queued_bytes)
            self._cond.notify()
        return True

    def close(self) -> None:
        """Stop a running episode (finalising its bag) and end the writer thread."""
        if self.recording:
            try:
                self.stop_episode()
            except RuntimeError as error:
                _log.error("closing recorder: %s", error)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=self.options.stop_timeout_s)

    # ------------------------------------------------------------------ writer thread
    def _next_batch(self) -> Tuple[list, bool, bool]:
        with self._cond:
            while not self._queue and not self._stopping and not self._closing:
                self._cond.wait(timeout=self.options.max_chunk_age_s / 2)
                if not self._queue and self._bag is not None:
                    return [], False, False  # idle: let the caller flush an old chunk
            batch = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            finish = self._stopping and self._bag is not None
            return batch, finish, self._closing and not self._stopping

    def _writer_loop(self) -> None:
        while True:
            batch, finish, closing = self._next_batch()
            bag, episode = self._bag, self._episode
            if bag is not None and episode is not None and not episode.error:
                self._write_batch(bag, episode, batch)
            if finish:
                self._finish_episode()
            if closing:
                return

    def _write_batch(self, bag: EpisodeBagWriter, episode: EpisodeSummary, batch: list) -> None:
        try:
            for topic, stamp_ns, data in batch:
                self._write_one(bag, topic, stamp_ns, data)
            bag.flush_if_due()
        except Exception as error:  # disk full, I/O error: keep what is on disk, say so
            episode.error = f"writing {bag.bag_dir} failed: {error}"
            _log.error("%s; the episode keeps what was written before", episode.error)

    def _write_one(self, bag: EpisodeBagWriter, topic: str, stamp_ns: int, data: bytes) -> None:
        if topic not in bag.counts:
            bag.add_topic(topic, self._topics[topic])
        bag.write(topic, stamp_ns, data)

    def _finish_episode(self) -> None:
        bag, episode = self._bag, self._episode
        if bag is None or episode is None:
            raise RuntimeError("no episode is open to finish")
        episode.end_time_ns = time.time_ns()
        episode.message_counts = dict(bag.counts)
        try:
            for key, value in _custom_data(episode).items():
                bag.set_custom_data(key, value)
            bag.close()
            _write_episode_file(episode, "failed" if episode.error else "complete")
        except Exception as error:
            episode.error = episode.error or f"closing {bag.bag_dir} failed: {error}"
            _log.error(episode.error)
        with self._cond:
            self._bag, self._episode, self._stopping = None, None, False
            self._idle.set()


def _custom_data(summary: EpisodeSummary) -> Dict[str, str]:
    """rosbag2 ``custom_data`` (string -> string) of an episode."""
    meta = summary.metadata
    return {"hand_perception.episode_index": str(summary.episode_index),
            "hand_perception.task": meta.task, "hand_perception.operator": meta.operator,
            "hand_perception.robot_hand": meta.robot_hand,
            "hand_perception.start_time_ns": str(summary.start_time_ns),
            "hand_perception.end_time_ns": str(summary.end_time_ns),
            "hand_perception.message_counts": yaml.safe_dump(summary.message_counts,
                                                             default_flow_style=True).strip(),
            "hand_perception.dropped_counts": yaml.safe_dump(summary.dropped_counts,
                                                             default_flow_style=True).strip()}


def _write_episode_file(summary: EpisodeSummary, status: str) -> None:
    data = {"episode_index": summary.episode_index, "status": status,
            **asdict(summary.metadata), "start_time_ns": summary.start_time_ns,
            "end_time_ns": summary.end_time_ns, "message_counts": summary.message_counts,
            "dropped_counts": summary.dropped_counts, "error": summary.error}
    path = summary.bag_dir / EPISODE_FILE
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def read_episode_file(bag_dir: Path) -> Mapping:
    """The sidecar ``episode.yaml`` of a bag directory ({} when absent)."""
    path = Path(bag_dir) / EPISODE_FILE
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
