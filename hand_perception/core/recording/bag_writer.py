"""One episode as one rosbag2 bag: ``<dir>/metadata.yaml`` + ``<dir>/<dir name>_0.mcap``.

The MCAP is written by rosbags' rosbag2 writer (storage ``mcap``) with two changes for crash
safety: a chunk is also closed when it is older than ``max_chunk_age_s`` (rosbags alone closes
it only past 1 MiB, which a 30 Hz JointState stream fills in minutes), and every closed chunk is
flushed to the OS at once. A ``kill -9`` therefore loses at most the open chunk: at most
``max(1 MiB + one message, max_chunk_age_s of data)``. ``metadata.yaml`` is written when the bag
opens (topics, types, zero counts, the episode metadata in ``custom_data``) and rewritten with the
real counts when it closes, so an interrupted bag is still a rosbag2 directory; its MCAP has no
summary/footer, which streaming readers accept and ``ros2 bag reindex`` or
:func:`hand_perception.core.recording.repair.repair_bag` rebuild.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional

import yaml
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter

from hand_perception.core.recording.message_definitions import (
    MessageDefinitionSource, canonical_type_name)

_log = logging.getLogger(__name__)

BAG_VERSION = 9  # rosbag2 metadata version written by Jazzy/Kilted


class _FlushingMcapStorage(McapWriter):
    """rosbags' MCAP storage, named ``<bag>_0.mcap`` as rosbag2 names its first file, that also
    closes chunks by age and pushes each closed chunk to the OS."""

    def __init__(self, path: Path, compression) -> None:
        super().__init__(path, compression)
        rosbag2_name = path / f"{path.name}_0.mcap"
        self.path.rename(rosbag2_name)  # POSIX: the open handle keeps writing to the renamed file
        self.path = rosbag2_name
        self.max_chunk_age_s = 0.5
        self._oldest_pending: Optional[float] = None  # monotonic time of the chunk's 1st message

    def write(self, connection: Connection, timestamp: int, data) -> None:
        if self._oldest_pending is None:
            self._oldest_pending = time.monotonic()
        super().write(connection, timestamp, data)  # closes the chunk itself past 1 MiB

    def close_chunk(self) -> None:
        super().close_chunk()
        self.bio.flush()  # the chunk and its message indexes reach the OS: they survive kill -9
        self._oldest_pending = None

    def flush_if_due(self) -> bool:
        """Close the open chunk if its oldest message waited ``max_chunk_age_s`` or longer."""
        if (self._oldest_pending is not None and self.chunk.msgs
                and time.monotonic() - self._oldest_pending >= self.max_chunk_age_s):
            self.close_chunk()
            return True
        return False


class _EpisodeRosbag2Writer(Writer):
    STORAGE_PLUGINS = {StoragePlugin.MCAP: _FlushingMcapStorage}


@dataclass
class TopicInfo:
    """One recorded topic."""

    topic: str
    type_name: str  # pkg/msg/Type


class EpisodeBagWriter:
    """Writes serialized CDR messages of known topics into one rosbag2/MCAP bag directory.

    Not thread-safe: one writer thread owns it (see EpisodeRecorder).
    """

    def __init__(self, bag_dir: Path, definitions: MessageDefinitionSource,
                 custom_data: Mapping[str, str], max_chunk_age_s: float = 0.5) -> None:
        self.bag_dir = Path(bag_dir)
        self._definitions = definitions
        self._custom = {str(k): str(v) for k, v in custom_data.items()}
        if self.bag_dir.exists():
            raise FileExistsError(f"bag directory {self.bag_dir} exists already")
        self._writer = _EpisodeRosbag2Writer(self.bag_dir, version=BAG_VERSION,
                                             storage_plugin=StoragePlugin.MCAP)
        self._max_chunk_age_s = float(max_chunk_age_s)
        self._connections: Dict[str, Connection] = {}
        self._topics: Dict[str, TopicInfo] = {}
        self.counts: Dict[str, int] = {}
        self.first_stamp_ns: Optional[int] = None
        self.last_stamp_ns: Optional[int] = None

    @property
    def mcap_path(self) -> Path:
        return self.bag_dir / f"{self.bag_dir.name}_0.mcap"

    def open(self, topics: Mapping[str, str]) -> None:
        """Create the bag directory (must not exist) with one connection per ``topic -> type``
        and write the initial metadata.yaml. ``ValueError`` for an unknown type; ``OSError``
        (e.g. PermissionError) when the directory cannot be created."""
        definitions = {topic: self._definitions.definition(type_name)
                       for topic, type_name in topics.items()}  # fail before touching the disk
        if self.bag_dir.exists():
            raise FileExistsError(f"bag directory {self.bag_dir} exists already")
        self.bag_dir.parent.mkdir(parents=True, exist_ok=True)
        self._writer.open()
        self._writer.storage.max_chunk_age_s = self._max_chunk_age_s
        for key, value in self._custom.items():
            self._writer.set_custom_data(key, value)
        for topic, definition in definitions.items():
            self._add(topic, definition.type_name)
        self._write_initial_metadata()

    def add_topic(self, topic: str, type_name: str) -> None:
        """Add a topic while the bag is open (a publisher that appeared mid-episode)."""
        if topic not in self._connections:
            self._add(topic, type_name)

    def _add(self, topic: str, type_name: str) -> None:
        definition = self._definitions.definition(type_name)
        self._connections[topic] = self._writer.add_connection(
            topic, definition.type_name, msgdef=definition.text, rihs01=definition.rihs01)
        self._topics[topic] = TopicInfo(topic, definition.type_name)
        self.counts[topic] = 0

    def write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        """Append one serialized message; ``KeyError`` naming the topic if it was never added."""
        connection = self._connections.get(topic)
        if connection is None:
            raise KeyError(f"topic {topic!r} is not part of bag {self.bag_dir.name}")
        self._writer.write(connection, int(stamp_ns), data)
        self.counts[topic] += 1
        if self.first_stamp_ns is None:
            self.first_stamp_ns = int(stamp_ns)
        self.last_stamp_ns = int(stamp_ns)
        self.flush_if_due()

    def flush_if_due(self) -> bool:
        """Close the open chunk if it is old enough (call this when idle too)."""
        storage = self._writer.storage
        return bool(storage is not None and storage.flush_if_due())

    def set_custom_data(self, key: str, value: str) -> None:
        self._custom[key] = str(value)
        self._writer.set_custom_data(key, str(value))

    def close(self) -> None:
        """Close the MCAP (summary, footer) and rewrite metadata.yaml with the final counts."""
        if self._writer.storage is not None:
            self._writer.close()

    def _write_initial_metadata(self) -> None:
        info = {
            "version": BAG_VERSION, "storage_identifier": "mcap",
            "relative_file_paths": [self.mcap_path.name],
            "duration": {"nanoseconds": 0},
            "starting_time": {"nanoseconds_since_epoch": time.time_ns()},
            "message_count": 0,
            "topics_with_message_count": [topic_entry(
                t.topic, t.type_name, self._definitions.definition(t.type_name).rihs01, 0)
                for t in self._topics.values()],
            "compression_format": "", "compression_mode": "",
            "files": [{"path": self.mcap_path.name,
                       "starting_time": {"nanoseconds_since_epoch": time.time_ns()},
                       "duration": {"nanoseconds": 0}, "message_count": 0}],
            "custom_data": dict(self._custom) or None,
            "ros_distro": "rosbags",
        }
        write_metadata_yaml(self.bag_dir, info)


def topic_entry(topic: str, type_name: str, rihs01: str, count: int) -> dict:
    """One ``topics_with_message_count`` entry of rosbag2 metadata (version 9)."""
    canonical_type_name(type_name)
    return {"topic_metadata": {"name": topic, "type": type_name, "serialization_format": "cdr",
                               "offered_qos_profiles": [], "type_description_hash": rihs01},
            "message_count": int(count)}


def write_metadata_yaml(bag_dir: Path, info: dict) -> None:
    """Atomically (write + rename) replace ``bag_dir/metadata.yaml``."""
    path = Path(bag_dir) / "metadata.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False),
                   encoding="utf-8")
    tmp.replace(path)
