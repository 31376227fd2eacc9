"""Rebuild a complete bag from one whose recorder died (``kill -9``, power cut) mid-episode.

Such a bag has a metadata.yaml from the episode start (zero counts) and an MCAP without summary
and footer, ending in a torn chunk. ``ros2 bag reindex <bag>`` (ROS 2 install) rebuilds the
metadata.yaml; this module needs no ROS: it streams the MCAP, keeps every complete chunk, and
writes a new, complete bag (summary, chunk indexes, counts in metadata.yaml) beside the old one.
"""
from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import yaml
from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader

from hand_perception.core.recording.bag_writer import EpisodeBagWriter
from hand_perception.core.recording.message_definitions import MessageDefinition

_log = logging.getLogger(__name__)


@dataclass
class RepairResult:
    """What a repair kept."""

    output_dir: Path
    message_counts: Dict[str, int] = field(default_factory=dict)
    truncated: bool = False  # the source ended inside a record (the torn last chunk was dropped)

    @property
    def total(self) -> int:
        return sum(self.message_counts.values())


class _Definitions:
    """Message definitions taken from the damaged bag's own schemas."""

    def __init__(self) -> None:
        self.by_type: Dict[str, MessageDefinition] = {}

    def definition(self, type_name: str) -> MessageDefinition:
        return self.by_type[type_name]


def _metadata(bag_dir: Path) -> dict:
    path = bag_dir / "metadata.yaml"
    if not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(
        "rosbag2_bagfile_information", {}) or {}


def _mcap_file(bag_dir: Path, info: dict) -> Path:
    listed = [bag_dir / Path(n).name for n in info.get("relative_file_paths") or []]
    candidates = [c for c in listed if c.is_file()] or sorted(bag_dir.glob("*.mcap"))
    if len(candidates) != 1:
        raise ValueError(f"{bag_dir}: expected exactly one .mcap file, found {candidates}")
    return candidates[0]


def repair_bag(bag_dir: Path, output_dir: Optional[Path] = None) -> RepairResult:
    """Stream ``bag_dir``'s MCAP and write every intact message into ``output_dir`` (default
    ``<bag_dir>_repaired``, must not exist), keeping the episode's ``custom_data``.
    ``ValueError`` when ``bag_dir`` holds no single MCAP file."""
    bag_dir = Path(bag_dir)
    info = _metadata(bag_dir)
    source = _mcap_file(bag_dir, info)
    output_dir = Path(output_dir) if output_dir else bag_dir.with_name(bag_dir.name + "_repaired")
    hashes = {t["topic_metadata"]["type"]: t["topic_metadata"].get("type_description_hash", "")
              for t in info.get("topics_with_message_count") or []}
    definitions = _Definitions()
    writer = EpisodeBagWriter(output_dir, definitions, info.get("custom_data") or {})
    result = RepairResult(output_dir)
    schemas: Dict[int, Schema] = {}
    channels: Dict[int, Channel] = {}
    opened = False
    with source.open("rb") as stream:
        try:
            for record in StreamReader(stream, skip_magic=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message) and record.channel_id in channels:
                    channel = channels[record.channel_id]
                    if not opened:
                        writer.open({})
                        opened = True
                    _ensure_topic(writer, definitions, channel, schemas, hashes)
                    writer.write(channel.topic, record.log_time, record.data)
                    result.message_counts[channel.topic] = (
                        result.message_counts.get(channel.topic, 0) + 1)
        except (McapError, EOFError, ValueError, struct.error) as error:  # torn last record
            result.truncated = True
            _log.info("%s ends inside a record (%s): kept what precedes it", source, error)
    if not opened:
        writer.open({})
    writer.close()
    return result


def _ensure_topic(writer: EpisodeBagWriter, definitions: _Definitions, channel: Channel,
                  schemas: Dict[int, Schema], hashes: Dict[str, str]) -> None:
    if channel.topic in writer.counts:
        return
    schema = schemas[channel.schema_id]
    rihs01 = hashes.get(schema.name) or "RIHS01_" + "0" * 64  # unknown: metadata.yaml was lost
    definitions.by_type[schema.name] = MessageDefinition(
        schema.name, schema.data.decode("utf-8"), rihs01)
    writer.add_topic(channel.topic, schema.name)
