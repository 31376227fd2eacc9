"""``hand-perception demo`` end to end in a subprocess: the sample clip, a folder of real photos,
a live ROS image topic and bad inputs. Every output is read back: the video decoded, the bag
read with rosbags, the LeRobot episode's files, the plot and the summary."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
av = pytest.importorskip("av")

from hand_perception.core.models import runtime  # noqa: E402
from hand_perception.ros.dds_env import local_dds_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FPS = 30


@pytest.fixture(scope="module")
def ready() -> None:
    try:
        runtime.resolve_model_dir()
        from hand_perception.paths import sample_path

        sample_path("zidane.jpg")
        sample_path("bus.jpg")
    except (runtime.ModelsNotFoundError, ValueError) as err:
        pytest.skip(f"set-up incomplete: {err}")


def demo(*args: str, own_domain: bool = True, timeout: float = 120.0,
         **popen) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if own_domain:  # nothing else on the graph: a fresh domain for this run
        env.update(local_dds_environment())
    return subprocess.run([sys.executable, "-m", "hand_perception.cli", "demo", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout, **popen)


def decoded_frames(path: Path) -> list:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def read_bag(out: Path) -> dict:
    """topic -> [(header stamp ns, message)] of the one recorded episode."""
    from rosbags.highlevel import AnyReader

    bags = sorted((out / "bag").glob("episode_*"))
    assert len(bags) == 1, bags
    topics: dict = {}
    with AnyReader(bags) as reader:  # the bag carries its message definitions
        for connection, _, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            topics.setdefault(connection.topic, []).append((stamp, msg))
    return topics


def summary_numbers(stdout: str) -> dict:
    found = re.search(r"hands +found in (\d+) of (\d+) frames", stdout)
    processed = re.search(r"processed +(\d+) of (\d+) frames in [\d.]+ s = ([\d.]+) FPS", stdout)
    assert found and processed, stdout
    return {"with_hands": int(found[1]), "processed": int(processed[1]),
            "frames_in": int(processed[2]), "fps": float(processed[3])}


def expected_episode_frames(topics: dict, joints: str, chunk: str) -> int:
    """Frames over the span that camera, joints and action chunks all cover, at FPS."""
    streams = [[s for s, _ in topics[t]] for t in ("/camera/image_raw", joints, chunk)]
    start, end = max(min(s) for s in streams), min(max(s) for s in streams)
    return int(round((end - start) * FPS / 1e9)) + 1


def check_bag(topics: dict, with_hands: int) -> None:
    images, hands = topics["/camera/image_raw"], topics["/hands"]
    assert len(images) == len(hands) == 20
    assert [s for s, _ in images] == [s for s, _ in hands]  # one HandArray per frame, in order
    steps = np.diff([s for s, _ in images])
    assert np.all(np.abs(steps - 1e9 / FPS) < 1e3)  # stamps exactly one camera period apart
    assert sum(len(m.hands) > 0 for _, m in hands) == with_hands
    for side, code in (("left", 1), ("right", 2)):  # Hand.HANDEDNESS_LEFT / _RIGHT
        # a command for every frame with a hand of that side, stamped frame + latency
        # compensation; any other command is a hold/ramp while that side is lost (> 0.3 s)
        seen = [s + 100_000_000 for s, m in hands if any(h.handedness == code for h in m.hands)]
        commands = [s for s, _ in topics.get(f"/robot_hand/{side}/joint_states", [])]
        assert all(np.abs(np.asarray(commands) - s).min() < 1e4 for s in seen), side
        extra = [c for c in commands if np.abs(np.asarray(seen) - c).min() >= 1e4]
        # 1e4 ns: the node's float-second stamps (~0.2 us resolution at today's epoch) decide
        # a gap of exactly lost_timeout_s (9 frames at 30 fps) either way
        assert all(c - max(s for s in seen if s < c) >= 0.3e9 - 1e4 for c in extra), side
    left = topics["/robot_hand/left/joint_states"]
    assert len(left) >= 10 and len(left[0][1].name) == len(left[0][1].position) > 10
    assert len(topics["/robot_hand/left/action_chunk"]) == len(left)


def check_lerobot(root: Path, topics: dict) -> None:
    import pyarrow.parquet as pq

    info = json.loads((root / "meta" / "info.json").read_text())
    expected = expected_episode_frames(topics, "/robot_hand/left/joint_states",
                                       "/robot_hand/left/action_chunk")
    assert info["total_episodes"] == 1 and info["total_frames"] == expected > 10
    data = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == expected
    tasks = pq.read_table(root / "meta" / "tasks.parquet").to_pandas()
    assert "demo: follow the pointing hand" in str(tasks)
    assert list((root / "videos").rglob("*.mp4"))


def test_sample_clip_end_to_end(ready, tmp_path) -> None:
    out = tmp_path / "demo"
    proc = demo("--frames", "20", "--size", "320x240", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    numbers = summary_numbers(proc.stdout)
    assert numbers["processed"] == numbers["frames_in"] == 20  # paced: none dropped
    assert numbers["with_hands"] >= 15 and numbers["fps"] > 0
    assert re.search(r"tracks +#\d+ left", proc.stdout)  # the pointing hand is a left hand
    assert (out / "summary.txt").read_text() in proc.stdout

    frames = decoded_frames(out / "annotated.mp4")
    assert len(frames) == 20 and frames[0].shape == (240, 320, 3)
    topics = read_bag(out)
    check_bag(topics, numbers["with_hands"])
    check_lerobot(out / "lerobot", topics)
    plot = cv2.imread(str(out / "latency.png"))
    assert plot is not None and plot.shape[0] > 200 and plot.shape[1] > 400


def test_folder_of_real_photos(ready, shared_hands_dir, tmp_path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(shared_hands_dir / "in_the_wild", photos)
    out = tmp_path / "demo"
    proc = demo("--input", str(photos), "--fps", "5", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    numbers = summary_numbers(proc.stdout)
    assert numbers["processed"] == numbers["frames_in"] == 5, proc.stdout + proc.stderr[-2000:]
    assert numbers["with_hands"] >= 3  # as `hand-perception detect` finds them (gloves, trumpet)
    frames = decoded_frames(out / "annotated.mp4")
    first = cv2.imread(str(sorted(photos.iterdir())[0]))
    even = tuple(n // 2 * 2 for n in first.shape[:2])  # H.264 (yuv420p) needs even sizes
    assert len(frames) == 5 and frames[0].shape == even + (3,)  # the photos' native size
    assert len(read_bag(out)["/hands"]) == 5


@pytest.mark.parametrize("args, message", [
    (("--input", "/no/such/input"), "is not a file, a folder, a webcam index or ros:"),
    (("--input", "NOT_A_VIDEO"), "neither an image nor a video"),
    (("--frames", "0"), "--frames 0 must be at least 1"),
])
def test_bad_input_is_a_clear_error(ready, tmp_path, args, message) -> None:
    if "NOT_A_VIDEO" in args:
        bad = tmp_path / "notes.mp4"
        bad.write_text("this is text, not a video")
        args = ("--input", str(bad))
    proc = demo(*args, "--out", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: " in proc.stderr and message in proc.stderr
    assert not (tmp_path / "out" / "bag").exists()


class ExternalCamera:
    """A camera in the test process: clip frames at 10 Hz on /test_demo/image_raw."""

    def __init__(self, context) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import CameraInfo, Image

        from hand_perception.core.sample_clip import SampleClip, SampleClipOptions, load_photos
        from hand_perception.paths import sample_path

        clip = SampleClip(SampleClipOptions(frames=30, width=320, height=240),
                          load_photos({n: sample_path(n) for n in ("zidane.jpg", "bus.jpg")}))
        self.frames = [clip.process(i).rgb for i in range(len(clip))]
        self.node = Node("test_camera", context=context)
        self.image_pub = self.node.create_publisher(Image, "/test_demo/image_raw", 5)
        self.info_pub = self.node.create_publisher(CameraInfo, "/test_demo/camera_info", 5)
        self.count = 0
        self.node.create_timer(0.1, self.publish)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def publish(self) -> None:
        from hand_perception.core.camera import CameraIntrinsics
        from hand_perception.nodes.image_source_node import camera_info_message
        from hand_perception.ros.image import numpy_to_image

        msg = numpy_to_image(self.frames[self.count % len(self.frames)], "rgb8")
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.image_pub.publish(msg)
        self.info_pub.publish(camera_info_message(CameraIntrinsics.from_fov(320, 240, 60.0),
                                                  msg.header))
        self.count += 1

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


def test_live_ros_topic(ready, rclpy_context, tmp_path) -> None:
    """Another process publishes the camera; the demo subscribes it for --duration seconds."""
    camera = ExternalCamera(rclpy_context)
    try:
        out = tmp_path / "demo"
        proc = demo("--input", "ros:/test_demo/image_raw", "--duration", "3", "--out", str(out),
                    own_domain=False)
    finally:
        camera.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    numbers = summary_numbers(proc.stdout)
    assert "live topic" in proc.stdout
    assert 5 <= numbers["processed"] <= numbers["frames_in"]
    topics = read_bag(out)
    assert "/test_demo/image_raw" in topics and len(topics["/hands"]) >= numbers["processed"] - 1
