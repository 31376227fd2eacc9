"""core.recording: episodes written as rosbag2/MCAP bags read back intact by rosbags and by the
mcap_ros2 decoder; bounded queue; clear errors; interrupted bags stay readable and repairable."""
import io
import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.records import Message
from mcap.stream_reader import StreamReader
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from hand_perception.core.recording import (EpisodeMetadata, EpisodeRecorder,
                                            MessageDefinitionSource, RecorderOptions,
                                            read_episode_file)
from hand_perception.core.recording.bag_writer import EpisodeBagWriter
from hand_perception.core.recording.repair import repair_bag

STORE = get_typestore(Stores.ROS2_KILTED)
IMAGE = "sensor_msgs/msg/Image"
JOINTS = "sensor_msgs/msg/JointState"


def _header(i: int):
    t = STORE.types
    return t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](i, 5), "cam")


def image_bytes(i: int, width: int = 64, height: int = 48) -> bytes:
    pixels = np.random.default_rng(i).integers(0, 255, height * width * 3, dtype=np.uint8)
    msg = STORE.types[IMAGE](_header(i), height, width, "rgb8", 0, width * 3, pixels)
    return bytes(STORE.serialize_cdr(msg, IMAGE))


def joints_bytes(i: int) -> bytes:
    msg = STORE.types[JOINTS](_header(i), ["a", "b"], np.array([i, -i], float),
                              np.zeros(0), np.zeros(0))
    return bytes(STORE.serialize_cdr(msg, JOINTS))


def custom_data(bag: Path) -> dict:
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return info["custom_data"]


@pytest.fixture
def recorder(tmp_path):
    rec = EpisodeRecorder(RecorderOptions(output_dir=str(tmp_path / "episodes"),
                                          max_chunk_age_s=0.05))
    rec.add_topic("/camera/image_raw", IMAGE)
    rec.add_topic("/robot_hand/joint_states", JOINTS)
    yield rec
    rec.close()


def test_definition_is_the_installed_msg_text_with_dependencies_and_rosidl_hash():
    source = MessageDefinitionSource()
    image = source.definition("sensor_msgs/Image")
    share = Path(sys.prefix) / "share" / "sensor_msgs" / "msg"
    assert image.type_name == IMAGE
    assert image.text.startswith((share / "Image.msg").read_text().rstrip("\n"))
    assert "=" * 80 + "\nMSG: std_msgs/msg/Header\n" in image.text
    assert "\nMSG: builtin_interfaces/msg/Time\n" in image.text
    hashes = json.loads((share / "Image.json").read_text())["type_hashes"]
    assert image.rihs01 == hashes[0]["hash_string"]
    hands = source.dependencies("hand_perception/msg/HandArray")
    assert hands[:3] == ["std_msgs/msg/Header", "builtin_interfaces/msg/Time",
                         "hand_perception/msg/Hand"] and "geometry_msgs/msg/Pose" in hands
    # rosbags' computation (used where no rosidl .json is installed) agrees with rosidl's
    key = "hand_perception/msg/HandArray"
    assert source._hash_with_rosbags(key, [key, *hands]) == source.definition(key).rihs01


def test_unknown_type_is_refused_by_name(recorder):
    with pytest.raises(ValueError, match="nonexistent_msgs/msg/Foo"):
        recorder.add_topic("/x", "nonexistent_msgs/msg/Foo")
    with pytest.raises(ValueError, match="pkg/msg/Type"):
        recorder.add_topic("/x", "not a type")
    assert "/x" not in recorder.topics


def test_two_episodes_round_trip_intact_with_metadata(recorder):
    sent = []
    for episode in range(2):
        bag_dir = recorder.start_episode(EpisodeMetadata(task=f"grasp {episode}", operator="ann",
                                                         robot_hand="allegro_right"))
        assert (bag_dir / "metadata.yaml").is_file()  # written at the start already
        for i in range(20):
            data = image_bytes(i) if i % 2 else joints_bytes(i)
            topic = "/camera/image_raw" if i % 2 else "/robot_hand/joint_states"
            assert recorder.write(topic, 1_000_000 * (i + 1), data)
            sent.append((episode, topic, 1_000_000 * (i + 1), data))
        summary = recorder.stop_episode()
        assert summary.message_counts == {"/camera/image_raw": 10, "/robot_hand/joint_states": 10}
        assert summary.total_dropped == 0 and not summary.error
    bags = sorted(Path(recorder.options.output_dir).iterdir())
    assert [b.name[:14] for b in bags] == ["episode_000000", "episode_000001"]
    for episode, bag in enumerate(bags):
        with AnyReader([bag]) as reader:
            got = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
            msgs = {c.topic: reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()}
        assert got == [(t, s, d) for e, t, s, d in sent if e == episode]
        custom = custom_data(bag)
        assert custom["hand_perception.task"] == f"grasp {episode}"
        assert custom["hand_perception.robot_hand"] == "allegro_right"
        assert yaml.safe_load(custom["hand_perception.message_counts"])["/camera/image_raw"] == 10
        image = msgs["/camera/image_raw"]
        assert image.width == 64 and image.encoding == "rgb8"
        sidecar = read_episode_file(bag)
        assert sidecar["status"] == "complete" and sidecar["episode_index"] == episode
        assert sidecar["end_time_ns"] >= sidecar["start_time_ns"] > 0
        _check_third_party_decoder(bag, 20)


def _check_third_party_decoder(bag: Path, expected: int) -> None:
    """The embedded ros2msg schemas are enough for mcap_ros2 (what Foxglove does)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with (bag / f"{bag.name}_0.mcap").open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        decoded = [(c.topic, msg) for _, c, _, msg in reader.iter_decoded_messages()]
    assert len(decoded) == expected
    image = next(msg for topic, msg in decoded if topic == "/camera/image_raw")
    assert image.height == 48 and len(image.data) == 48 * 64 * 3


def test_errors_are_clear_and_leave_the_recorder_usable(recorder, tmp_path):
    with pytest.raises(RuntimeError, match="no episode is recording"):
        recorder.stop_episode()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        recorder.start_episode(EpisodeMetadata(), output_dir=str(blocker / "sub"))
    assert not recorder.recording
    assert not recorder.write("/camera/image_raw", 1, image_bytes(0))  # idle: nothing queued
    recorder.start_episode()
    with pytest.raises(RuntimeError, match="already recording"):
        recorder.start_episode()
    assert not recorder.write("/not/registered", 1, b"xx")
    assert recorder.write("/camera/image_raw", 1, image_bytes(1))
    assert recorder.stop_episode().message_counts["/camera/image_raw"] == 1


class _GatedRecorder(EpisodeRecorder):
    """A writer that cannot proceed until the test opens the gate (a disk that stalls)."""

    def __init__(self, *args, **kwargs):
        self.gate = threading.Event()
        super().__init__(*args, **kwargs)

    def _write_one(self, bag, topic, stamp_ns, data):
        self.gate.wait(30.0)
        super()._write_one(bag, topic, stamp_ns, data)


@pytest.mark.parametrize("limits, size", [({"max_queue_messages": 8}, 1024),
                                          ({"max_queue_mb": 1.0}, 100 * 1024)])
def test_slow_writer_drops_oldest_counted_with_memory_bounded(tmp_path, limits, size):
    rec = _GatedRecorder(RecorderOptions(output_dir=str(tmp_path), **limits))
    rec.add_topic("/raw", "std_msgs/msg/String")
    rec.start_episode()
    sent = 60
    for i in range(sent):
        payload = i.to_bytes(4, "little") + bytes(size)
        cdr = bytes(STORE.serialize_cdr(STORE.types["std_msgs/msg/String"](payload.hex()),
                                        "std_msgs/msg/String"))
        assert rec.write("/raw", i + 1, cdr)
        length = len(cdr)
        assert rec.queued_bytes <= limits.get("max_queue_mb", 1e9) * 2 ** 20
    rec.gate.set()
    summary = rec.stop_episode()
    rec.close()
    written, dropped = summary.message_counts["/raw"], summary.dropped_counts["/raw"]
    assert written + dropped == sent and dropped >= sent - 8 - 4
    bound = limits.get("max_queue_messages", 0) * length or 2 ** 20
    assert rec.peak_queued_bytes <= bound
    with AnyReader([summary.bag_dir]) as reader:
        stamps = [t for _, t, _ in reader.messages()]
    assert stamps == sorted(stamps) and stamps[-1] == sent  # the newest survive, oldest went
    if "max_queue_messages" in limits:
        assert stamps[-8:] == list(range(sent - 7, sent + 1))


def test_interrupted_bag_is_readable_and_repairable(tmp_path):
    """The on-disk state of a writer that died: what the chunks flushed so far hold."""
    bag_dir = tmp_path / "episode_000000_x"
    writer = EpisodeBagWriter(bag_dir, MessageDefinitionSource(),
                              {"hand_perception.task": "wave"}, max_chunk_age_s=0.01)
    writer.open({"/camera/image_raw": IMAGE})
    for i in range(5):
        writer.write("/camera/image_raw", i + 1, image_bytes(i))
    writer._writer.storage.close_chunk()  # what flush_if_due does once the chunk is 0.01 s old
    writer.write("/camera/image_raw", 6, image_bytes(5))  # still in the open chunk: lost
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / "metadata.yaml").write_bytes((bag_dir / "metadata.yaml").read_bytes())
    mcap_bytes = writer.mcap_path.read_bytes()
    (crashed / "crashed_0.mcap").write_bytes(mcap_bytes[:-7])  # a torn tail, as after kill -9
    info = yaml.safe_load((crashed / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["topics_with_message_count"][0]["topic_metadata"]["type"] == IMAGE
    assert info["custom_data"]["hand_perception.task"] == "wave"
    streamed = []
    with pytest.raises(Exception):  # no footer: a streaming reader gets every record, then EOF
        for record in StreamReader(io.BytesIO(mcap_bytes[:-7])).records:
            if isinstance(record, Message):
                streamed.append(record.log_time)
    assert streamed == [1, 2, 3, 4, 5]
    result = repair_bag(crashed)
    assert result.message_counts == {"/camera/image_raw": 5}
    with AnyReader([result.output_dir]) as reader:
        assert [t for _, t, _ in reader.messages()] == [1, 2, 3, 4, 5]
        assert len(reader.connections) == 1
    assert custom_data(result.output_dir)["hand_perception.task"] == "wave"
    writer.close()


def test_options_are_validated():
    with pytest.raises(ValueError, match="max_queue_messages"):
        RecorderOptions(max_queue_messages=0)
    with pytest.raises(ValueError, match="output_dir"):
        RecorderOptions(output_dir=" ")
    with pytest.raises(TypeError, match="task"):
        EpisodeMetadata(task=3)
