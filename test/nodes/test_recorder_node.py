"""recorder_node over real DDS: 30 Hz 640x480 rgb8 recorded without loss, episodes driven by the
services and the command topic, bad requests refused while the node keeps recording, and a
``kill -9``'d recorder leaves a readable bag that loses at most its last chunk."""
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from mcap.records import Message
from mcap.stream_reader import StreamReader
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hand_perception.core.recording.repair import repair_bag
from hand_perception.nodes.recorder_node import RecorderNode
from helpers import orphaned_fastdds_segments, remove_fastdds_segments, wait_until

pytestmark = pytest.mark.dds
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def graph(rclpy_context, tmp_path):
    """A recorder of /camera/image_raw and a test node, spinning on a background executor."""
    recorder = RecorderNode(context=rclpy_context, cli_args=[
        "--ros-args", "-p", "topics:=['/camera/image_raw']", "-p", f"output_dir:={tmp_path}",
        "-p", "task:=pick up the cube", "-p", "discovery_period_s:=0.05"])
    tester = rclpy.create_node("tester", context=rclpy_context)
    publisher = tester.create_publisher(Image, "/camera/image_raw", RELIABLE)
    executor = MultiThreadedExecutor(num_threads=3, context=rclpy_context)
    executor.add_node(recorder)
    executor.add_node(tester)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    assert wait_until(lambda: "/camera/image_raw" in recorder.recorded_subscriptions, 10.0)
    assert wait_until(lambda: publisher.get_subscription_count() == 1, 10.0)
    yield recorder, tester, publisher
    executor.shutdown()
    recorder.close()
    recorder.destroy_node()
    tester.destroy_node()


def call(tester, name: str) -> Trigger.Response:
    client = tester.create_client(Trigger, name)
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done, 30.0)
    tester.destroy_client(client)
    return future.result()


def image(i: int, width: int = 640, height: int = 480) -> Image:
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.header.stamp.sec = i
    msg.header.frame_id = "camera_color_optical_frame"
    msg.data = np.full(height * width * 3, i % 251, np.uint8).tobytes()
    return msg


def publish_at_30hz(publisher, frames) -> None:
    """Publish ``frames`` 1/30 s apart from the calling thread. Not a timer on the executor
    shared with the recorder: in one CI run, on a machine stalling under memory pressure (16 GB
    of orphaned Fast DDS segments, README "DDS stays on this machine"), it fired fewer than 90
    times in 20 s, and the test failed before the recorder was even asked."""
    due = time.monotonic()
    for frame in frames:
        due += 1.0 / 30.0
        time.sleep(max(0.0, due - time.monotonic()))
        publisher.publish(frame)


def read_bag(bag_dir: Path):
    with AnyReader([bag_dir]) as reader:
        return [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()]


def test_30hz_640x480_recorded_without_loss_via_services(graph):
    recorder, tester, publisher = graph
    started = call(tester, "/recorder/start_episode")
    assert started.success, started.message
    frames = [image(i) for i in range(90)]  # 3 s at 30 Hz
    sender = threading.Thread(target=publish_at_30hz, args=(publisher, frames))
    sender.start()
    sender.join(timeout=60.0)
    assert not sender.is_alive()
    assert wait_until(lambda: recorder.recorder.written_total() == 90, 20.0)
    stopped = call(tester, "/recorder/stop_episode")
    assert stopped.success and "90 messages, 0 dropped" in stopped.message, stopped.message
    bag_dir = Path(started.message)
    got = read_bag(bag_dir)
    assert [m.header.stamp.sec for m in got] == list(range(90))
    assert bytes(got[41].data) == bytes(frames[41].data) and got[41].width == 640
    info = yaml.safe_load((bag_dir / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["custom_data"]["hand_perception.task"] == "pick up the cube"
    assert info["message_count"] == 90


def test_bad_requests_are_refused_and_the_node_keeps_recording(graph, tmp_path):
    recorder, tester, publisher = graph
    refused = call(tester, "/recorder/stop_episode")
    assert not refused.success and "no episode is recording" in refused.message
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    recorder.set_parameters([Parameter("output_dir", value=str(blocker / "bags"))])
    unwritable = call(tester, "/recorder/start_episode")
    assert not unwritable.success and "bags" in unwritable.message
    recorder._subscribe("/strange", "nonexistent_msgs/msg/Thing")  # a type not installed here
    assert "/strange" not in recorder.recorded_subscriptions
    recorder.set_parameters([Parameter("output_dir", value=str(tmp_path / "good")),
                             Parameter("task", value="wave")])
    commands = tester.create_publisher(String, "/recorder/episode_command", 10)
    assert wait_until(lambda: commands.get_subscription_count() == 1, 10.0)
    commands.publish(String(data="start"))
    assert wait_until(lambda: recorder.recorder.recording, 10.0)
    again = call(tester, "/recorder/start_episode")
    assert not again.success and "already recording" in again.message
    for i in range(5):
        publisher.publish(image(i, 64, 48))
    assert wait_until(lambda: recorder.recorder.written_total() == 5, 10.0)
    commands.publish(String(data="stop"))
    assert wait_until(lambda: not recorder.recorder.recording
                      and recorder.recorder.current_episode is None, 10.0)
    (bag_dir,) = (tmp_path / "good").iterdir()
    assert [m.header.stamp.sec for m in read_bag(bag_dir)] == [0, 1, 2, 3, 4]
    assert "wave" in (bag_dir / "metadata.yaml").read_text()


def _streamed_stamps(mcap_file: Path):
    stamps = []
    content = mcap_file.read_bytes()  # a missing file is a test error, not a torn end
    try:
        for record in StreamReader(io.BytesIO(content)).records:
            if isinstance(record, Message):
                stamps.append(record.log_time)
    except Exception:  # the torn end of a killed writer's file
        pass
    return stamps


def test_kill_9_loses_at_most_the_last_chunk(rclpy_context, tmp_path):
    env = dict(os.environ)
    orphans_before = orphaned_fastdds_segments()
    process = subprocess.Popen(
        [sys.executable, "-m", "hand_perception.nodes.recorder_node", "--ros-args",
         "-p", "topics:=['/robot_hand/joint_states']", "-p", f"output_dir:={tmp_path}",
         "-p", "auto_start:=true", "-p", "max_chunk_age_s:=0.2", "-p", "task:=crash test"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "recorder.log").open("w"))
    node = rclpy.create_node("joint_publisher", context=rclpy_context)
    try:
        publisher = node.create_publisher(JointState, "/robot_hand/joint_states", RELIABLE)
        assert wait_until(lambda: publisher.get_subscription_count() == 1, 30.0)
        # rosbags creates the file under its own name; the writer renames it <bag>_0.mcap
        assert wait_until(lambda: any(tmp_path.glob("episode_*/episode_*_0.mcap")), 30.0)
        mcap_file = next(tmp_path.glob("episode_*/episode_*_0.mcap"))
        warmup = JointState(name=["j0"], position=[-1.0])
        # DDS drops what is published before the reader has matched the writer too: publish a
        # warm-up message until one is on disk, then the counted ones
        assert wait_until(lambda: publisher.publish(warmup) or _streamed_stamps(mcap_file), 20.0), (
            f"nothing on disk; recorder log:\n{(tmp_path / 'recorder.log').read_text()[-3000:]}")
        for i in range(40):
            publisher.publish(JointState(name=["j0"], position=[float(i)]))
        on_disk = len(_streamed_stamps(mcap_file))
        # idle for longer than max_chunk_age_s: every message reaches the disk
        assert wait_until(lambda: len(_streamed_stamps(mcap_file)) >= on_disk + 40, 20.0)
        for i in range(40, 60):
            publisher.publish(JointState(name=["j0"], position=[float(i)]))
        process.send_signal(signal.SIGKILL)
        process.wait(10.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10.0)
        node.destroy_node()
        remove_fastdds_segments(orphaned_fastdds_segments() - orphans_before)  # the killed one's
    bag_dir = mcap_file.parent
    info = yaml.safe_load((bag_dir / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["topics_with_message_count"][0]["topic_metadata"]["name"] == (
        "/robot_hand/joint_states")
    assert info["custom_data"]["hand_perception.task"] == "crash test"
    result = repair_bag(bag_dir)
    positions = [m.position[0] for m in read_bag(result.output_dir) if m.position[0] >= 0]
    assert 40 <= len(positions) <= 60
    assert positions == [float(i) for i in range(len(positions))]  # a gap-free prefix
