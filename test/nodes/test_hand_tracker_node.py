"""hand_tracker_node over real loopback DDS: a real two-hand photo in, HandArray/markers/
annotated image/diagnostics out; depth pairing; the drop-oldest queue; every kind of bad input
is logged naming the value, dropped, and the next good frame is still processed."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from hand_perception.core.camera import CameraIntrinsics
from hand_perception.msg import Hand, HandArray
from hand_perception.nodes.hand_tracker_node import HandTrackerNode, pipeline_options_with
from hand_perception.nodes.image_source_node import camera_info_message
from hand_perception.paths import config_path
from hand_perception.ros.hand_conversions import hands_from_msg
from hand_perception.ros.image import numpy_to_image, rgb_to_compressed
from helpers import orphaned_fastdds_segments, remove_fastdds_segments, wait_until

pytestmark = pytest.mark.dds
FRAME_ID = "test_camera_optical_frame"
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def two_hands_rgb(shared_hands_dir):
    """in_the_wild/test5.jpg (a left and a right hand) at half size: (900, 600, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imread(str(shared_hands_dir / "in_the_wild" / "test5.jpg"))
    return np.ascontiguousarray(cv2.resize(bgr, None, fx=0.5, fy=0.5)[:, :, ::-1])


@dataclass
class Probe:
    """A test node that plays the camera and records everything the tracker publishes."""

    node: object
    image_pub: object
    info_pub: object
    depth_pub: object
    hands: List[HandArray] = field(default_factory=list)
    markers: List[MarkerArray] = field(default_factory=list)
    annotated: List[Image] = field(default_factory=list)
    diagnostics: List[DiagnosticArray] = field(default_factory=list)
    logs: List[str] = field(default_factory=list)
    last_stamp_ns: int = 0

    def stamp(self) -> Time:
        """A fresh stamp from the clock, strictly after the previous one."""
        now = max(time.time_ns(), self.last_stamp_ns + 1000)
        self.last_stamp_ns = now
        return Time(sec=now // 10**9, nanosec=now % 10**9)

    def send(self, rgb, stamp=None, info=True, encoding="rgb8") -> Header:
        header = Header(stamp=stamp or self.stamp(), frame_id=FRAME_ID)
        if info:
            intrinsics = CameraIntrinsics.from_fov(rgb.shape[1], rgb.shape[0], 60.0)
            self.info_pub.publish(camera_info_message(intrinsics, header))
        self.image_pub.publish(numpy_to_image(rgb, encoding, header))
        return header

    def result_for(self, header: Header):
        matches = [m for m in list(self.hands) if m.header.stamp == header.stamp]
        return matches[0] if matches else None

    def wait_result(self, header: Header, timeout_s: float = 20.0) -> HandArray:
        assert wait_until(lambda: self.result_for(header) is not None, timeout_s), (
            f"no HandArray for stamp {header.stamp}; logs: {self.logs[-5:]}")
        return self.result_for(header)


def _make_probe(context, image_type=Image, image_topic="image") -> Probe:
    node = rclpy.create_node("tracker_probe", context=context)
    probe = Probe(node, node.create_publisher(image_type, image_topic, RELIABLE),
                  node.create_publisher(CameraInfo, "camera_info", RELIABLE),
                  node.create_publisher(Image, "depth", RELIABLE))
    node.create_subscription(HandArray, "hands", probe.hands.append, RELIABLE)
    node.create_subscription(MarkerArray, "hands/markers", probe.markers.append, RELIABLE)
    node.create_subscription(Image, "hands/annotated", probe.annotated.append, RELIABLE)
    node.create_subscription(DiagnosticArray, "/diagnostics", probe.diagnostics.append, RELIABLE)
    node.create_subscription(Log, "/rosout", lambda m: probe.logs.append(m.msg), RELIABLE)
    return probe


@pytest.fixture(scope="module")
def module_context():
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def _spin(context, *nodes):
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    return executor, thread


@pytest.fixture(scope="module")
def rig(module_context):
    """One tracker (depth on, annotated on, every drop logged) and a probe, spinning together."""
    tracker = HandTrackerNode(context=module_context, cli_args=[
        "--ros-args", "-p", "use_depth:=true", "-p", "publish_annotated:=true",
        "-p", "drop_log_period_s:=0.0", "-p", "diagnostics_period_s:=0.2",
        "-p", "depth_tolerance_s:=0.005", "-p", "providers:=cpu"])
    probe = _make_probe(module_context)
    executor, thread = _spin(module_context, tracker, probe.node)
    pubs = (probe.image_pub, probe.info_pub, probe.depth_pub)
    assert wait_until(lambda: all(p.get_subscription_count() == 1 for p in pubs), 10.0)
    assert wait_until(lambda: tracker._hands_pub.get_subscription_count() >= 1
                      and tracker._markers_pub.get_subscription_count() >= 1, 10.0)
    yield tracker, probe
    tracker.close()  # no more publishing while the executor winds down
    executor.shutdown()
    thread.join(timeout=5.0)
    tracker.destroy_node()
    probe.node.destroy_node()


def _inside(keypoints, rgb) -> bool:
    height, width = rgb.shape[:2]
    return bool(np.all((keypoints >= 0) & (keypoints <= [width, height])))


def test_real_photo_gives_two_hands_with_metric_3d(rig, two_hands_rgb):
    tracker, probe = rig
    header = probe.send(two_hands_rgb)
    msg = probe.wait_result(header)
    assert msg.header.frame_id == FRAME_ID and msg.header.stamp == header.stamp
    hands = hands_from_msg(msg)  # also validates shapes, NaNs and the wrist quaternions
    assert sorted(h.handedness for h in hands) == ["left", "right"]
    for hand in hands:
        assert _inside(hand.keypoints_2d, two_hands_rgb)
        assert hand.depth_source == "monocular" and hand.has_metric_3d
        assert 0.2 < hand.keypoints_3d[0, 2] < 1.5  # a hand at arm's length, metres
        np.testing.assert_allclose(hand.wrist_pose[:3, 3], hand.keypoints_3d[0], atol=1e-5)
    assert msg.hands[0].source == Hand.SOURCE_VISION
    # RViz markers and the annotated image of the same frame.
    assert wait_until(lambda: any(m.markers and m.markers[-1].header.stamp == header.stamp
                                  for m in probe.markers), 5.0)
    markers = next(m for m in probe.markers if m.markers[-1].header.stamp == header.stamp)
    kinds = sorted(m.type for m in markers.markers if m.action == Marker.ADD)
    assert kinds == sorted([Marker.LINE_LIST, Marker.SPHERE_LIST, Marker.TEXT_VIEW_FACING] * 2)
    assert wait_until(lambda: any(a.header.stamp == header.stamp for a in probe.annotated), 5.0)
    annotated = next(a for a in probe.annotated if a.header.stamp == header.stamp)
    assert (annotated.width, annotated.height, annotated.encoding) == (600, 900, "rgb8")
    assert bytes(annotated.data) != numpy_to_image(two_hands_rgb, "rgb8").data.tobytes()


def test_without_camera_info_hands_have_no_metric_3d(module_context, two_hands_rgb):
    tracker = HandTrackerNode(context=module_context, cli_args=[
        "--ros-args", "-r", "__node:=tracker_no_info", "-r", "image:=/no_info/image",
        "-r", "hands:=/no_info/hands"])
    probe = _make_probe(module_context, image_topic="/no_info/image")
    probe.node.create_subscription(HandArray, "/no_info/hands", probe.hands.append, RELIABLE)
    executor, thread = _spin(module_context, tracker, probe.node)
    try:
        assert wait_until(lambda: probe.image_pub.get_subscription_count() == 1, 10.0)
        header = probe.send(two_hands_rgb, info=False)
        hands = hands_from_msg(probe.wait_result(header))
        assert len(hands) == 2
        assert all(h.depth_source == "none" and not h.has_metric_3d for h in hands)
    finally:
        executor.shutdown()
        thread.join(timeout=5.0)
        tracker.destroy_node()
        probe.node.destroy_node()


def _depth_image(rgb_shape, hands, header, holes: bool) -> Image:
    """16UC1 depth (mm) that agrees with ``hands``' metric keypoints: a disc of each joint's
    depth around its pixel, background empty (0 = hole); with ``holes`` every other disc is 0."""
    depth = np.zeros(rgb_shape[:2], np.float32)
    rows, cols = np.mgrid[:rgb_shape[0], :rgb_shape[1]]
    for hand in hands:
        order = np.argsort(-hand.keypoints_3d[:, 2])  # nearer joints painted last
        for j in order:
            if holes and j % 2:
                continue
            u, v = hand.keypoints_2d[j]
            disc = (cols - u) ** 2 + (rows - v) ** 2 <= 6 ** 2
            depth[disc] = hand.keypoints_3d[j, 2] - 0.008  # the skin, in front of the joint
    return numpy_to_image(np.round(depth * 1000).astype(np.uint16), "16UC1", header)


def test_depth_image_is_used_and_agrees_with_the_monocular_estimate(rig, two_hands_rgb):
    tracker, probe = rig
    mono = hands_from_msg(probe.wait_result(probe.send(two_hands_rgb)))
    for holes in (False, True):
        header = Header(stamp=probe.stamp(), frame_id=FRAME_ID)
        probe.depth_pub.publish(_depth_image(two_hands_rgb.shape, mono, header, holes))
        assert wait_until(lambda: any(d.header.stamp == header.stamp for d in tracker._depths), 5.0)
        hands = hands_from_msg(probe.wait_result(probe.send(two_hands_rgb, stamp=header.stamp)))
        assert [h.depth_source for h in hands] == ["depth", "depth"]
        for measured, reference in zip(hands, mono):
            assert measured.handedness == reference.handedness
            error = np.linalg.norm(measured.keypoints_3d - reference.keypoints_3d, axis=1)
            assert np.median(error) < 0.03, error


def test_all_nan_or_unpaired_depth_falls_back_to_monocular(rig, two_hands_rgb):
    tracker, probe = rig
    header = Header(stamp=probe.stamp(), frame_id=FRAME_ID)
    nan_depth = np.full(two_hands_rgb.shape[:2], np.nan, np.float32)
    probe.depth_pub.publish(numpy_to_image(nan_depth, "32FC1", header))
    assert wait_until(lambda: any(d.header.stamp == header.stamp for d in tracker._depths), 5.0)
    logs = len(probe.logs)
    hands = hands_from_msg(probe.wait_result(probe.send(two_hands_rgb, stamp=header.stamp)))
    assert len(hands) == 2 and all(h.depth_source == "monocular" for h in hands)
    assert wait_until(lambda: any("depth image has no valid pixel (all zero or NaN)" in log
                                  for log in probe.logs[logs:]), 5.0), probe.logs[logs:]
    # A valid depth image 1 s older than the next image: outside depth_tolerance_s.
    stale = Header(stamp=Time(sec=header.stamp.sec - 1, nanosec=header.stamp.nanosec))
    mono = hands_from_msg(probe.wait_result(probe.send(two_hands_rgb)))
    probe.depth_pub.publish(_depth_image(two_hands_rgb.shape, mono, stale, holes=False))
    assert wait_until(lambda: any(d.header.stamp == stale.stamp for d in tracker._depths), 5.0)
    hands = hands_from_msg(probe.wait_result(probe.send(two_hands_rgb)))
    assert all(h.depth_source == "monocular" for h in hands)


def test_frames_faster_than_inference_are_dropped_not_queued(rig, two_hands_rgb, monkeypatch):
    tracker, probe = rig
    stats = tracker.stats
    before = (stats.received, stats.published, stats.dropped_queue, stats.dropped_bad_input)
    # Inference held back until the burst is in: otherwise, on a busy machine, the burst can
    # arrive no faster than inference runs (nothing to displace; failed once in CI).
    gate, process = threading.Event(), tracker._pipeline.process
    monkeypatch.setattr(tracker._pipeline, "process",
                        lambda *args, **kwargs: gate.wait(30.0) and process(*args, **kwargs))
    headers = [probe.send(two_hands_rgb) for _ in range(12)]
    assert wait_until(lambda: stats.received - before[0] >= 3, 30.0)
    gate.set()
    settled = lambda: (len(tracker._queue) == 0 and stats.received > before[0] and  # noqa: E731
                       stats.received - before[0] == (stats.published - before[1])
                       + (stats.dropped_queue - before[2]) + (stats.dropped_bad_input - before[3]))
    assert wait_until(lambda: settled() and probe.result_for(headers[-1]) is not None, 30.0)
    assert stats.dropped_queue > before[2], "a burst must displace queued frames"
    assert stats.published - before[1] < len(headers)
    assert stats.dropped_bad_input == before[3]
    # Drop-oldest: the newest frame is always the one processed last.
    assert probe.hands[-1].header.stamp == headers[-1].stamp


def test_diagnostics_report_latency_rates_drops_and_stages(rig, two_hands_rgb):
    tracker, probe = rig
    probe.wait_result(probe.send(two_hands_rgb))
    start = len(probe.diagnostics)

    def report():
        for array in probe.diagnostics[start:]:
            values = {kv.key: kv.value for kv in array.status[0].values}
            if "latency_camera_to_hands_ms_mean" in values:
                return array.status[0], values
        return None
    probe.send(two_hands_rgb)
    assert wait_until(lambda: report() is not None, 10.0)
    status, values = report()
    assert status.name == "hand_tracker: hand pipeline"
    expected = {"fps_in", "fps_out", "frames_received", "frames_published", "frames_dropped_queue",
                "frames_dropped_bad_input", "hands_tracked", "latency_camera_to_hands_ms_p95",
                "latency_in_node_ms_mean"} | {f"stage_{k}_ms_{s}" for s in ("mean", "p95") for k in
                                              ("detect", "landmark", "track", "lift", "total")}
    assert expected <= set(values), expected - set(values)
    assert float(values["latency_camera_to_hands_ms_mean"]) > 0.0
    assert float(values["stage_total_ms_mean"]) > 0.0 and int(values["hands_tracked"]) == 2


def _image(width, height, encoding="rgb8", step=None, data_len=None) -> Image:
    msg = Image(width=width, height=height, encoding=encoding, step=step if step is not None else width * 3)
    msg.data = bytes(data_len if data_len is not None else msg.step * height)
    return msg


BAD_IMAGES = {
    "unsupported encoding": (_image(64, 48, "yuv422", step=128), "unsupported image encoding 'yuv422'"),
    "depth encoding as colour": (_image(64, 48, "16UC1", step=128), "'16UC1' is not a colour image"),
    "zero size": (_image(0, 0), "size 0x0 (rgb8) is empty"),
    "step too small": (_image(64, 48, step=100), "step 100 is smaller than a row (192 bytes)"),
    "data too short": (_image(64, 48, data_len=1000), "data has 1000 bytes, needs 9216"),
}


def _expect_drop(tracker, probe, send, text):
    dropped, logs = tracker.stats.dropped_bad_input, len(probe.logs)
    send()
    assert wait_until(lambda: tracker.stats.dropped_bad_input > dropped, 10.0)
    assert wait_until(lambda: any(text in log for log in probe.logs[logs:]), 5.0), probe.logs[logs:]


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_logged_and_dropped_then_the_next_frame_works(rig, two_hands_rgb, case):
    tracker, probe = rig
    msg, text = BAD_IMAGES[case]

    def send():
        msg.header = Header(stamp=probe.stamp(), frame_id=FRAME_ID)
        probe.image_pub.publish(msg)
    _expect_drop(tracker, probe, send, text)
    assert len(probe.wait_result(probe.send(two_hands_rgb)).hands) == 2


BAD_INFOS = {
    "size mismatch": ({"width": 320, "height": 240}, "camera_info is 320x240 but the image is 600x900"),
    "zero K": ({"k": [0.0] * 9}, "focal lengths fx=0.0"),
    "NaN in K": ({"k": [500.0, 0.0, float("nan"), 0.0, 500.0, 450.0, 0.0, 0.0, 1.0]}, "9 finite values"),
}


@pytest.mark.parametrize("case", sorted(BAD_INFOS))
def test_bad_camera_info_drops_its_frame(rig, two_hands_rgb, case):
    tracker, probe = rig
    changes, text = BAD_INFOS[case]

    def send():
        header = Header(stamp=probe.stamp(), frame_id=FRAME_ID)
        info = camera_info_message(CameraIntrinsics.from_fov(600, 900), header)
        for key, value in changes.items():
            setattr(info, key, value)
        probe.info_pub.publish(info)
        assert wait_until(lambda: any(i.header.stamp == header.stamp for i in tracker._infos), 5.0)
        probe.image_pub.publish(numpy_to_image(two_hands_rgb, "rgb8", header))
    _expect_drop(tracker, probe, send, text)
    assert len(probe.wait_result(probe.send(two_hands_rgb)).hands) == 2


def test_out_of_order_and_repeated_stamps_are_dropped(rig, two_hands_rgb):
    tracker, probe = rig
    good = probe.send(two_hands_rgb)
    probe.wait_result(good)
    old = Time(sec=good.stamp.sec - 1, nanosec=good.stamp.nanosec)
    _expect_drop(tracker, probe, lambda: probe.send(two_hands_rgb, stamp=old), "is not newer than")
    _expect_drop(tracker, probe, lambda: probe.send(two_hands_rgb, stamp=good.stamp),
                 "out of order or repeated")
    assert len(probe.wait_result(probe.send(two_hands_rgb)).hands) == 2


def test_a_big_jump_back_in_time_restarts_tracking(rig, two_hands_rgb):
    """A looping log replays old stamps: beyond time_jump_reset_s the tracker starts over."""
    tracker, probe = rig
    first = probe.wait_result(probe.send(two_hands_rgb))
    dropped = tracker.stats.dropped_bad_input
    rewound = Time(sec=first.header.stamp.sec - 60, nanosec=first.header.stamp.nanosec)
    restarted = probe.wait_result(probe.send(two_hands_rgb, stamp=rewound))
    assert len(restarted.hands) == 2 and tracker.stats.dropped_bad_input == dropped
    old_ids = {h.track_id for h in first.hands}
    assert not old_ids & {h.track_id for h in restarted.hands}, "tracks start afresh"
    # Stamps continue from the rewound time.
    after = Time(sec=rewound.sec, nanosec=rewound.nanosec + 1000)
    assert len(probe.wait_result(probe.send(two_hands_rgb, stamp=after)).hands) == 2


def test_compressed_transport(module_context, two_hands_rgb):
    tracker = HandTrackerNode(context=module_context, cli_args=[
        "--ros-args", "-r", "__node:=tracker_compressed", "-p", "image_transport:=compressed",
        "-p", "drop_log_period_s:=0.0",
        "-r", "image/compressed:=/cmp/image/compressed", "-r", "hands:=/cmp/hands",
        "-r", "camera_info:=/cmp/camera_info"])
    node = rclpy.create_node("compressed_probe", context=module_context)
    image_pub = node.create_publisher(CompressedImage, "/cmp/image/compressed", RELIABLE)
    info_pub = node.create_publisher(CameraInfo, "/cmp/camera_info", RELIABLE)
    received: List[HandArray] = []
    node.create_subscription(HandArray, "/cmp/hands", received.append, RELIABLE)
    executor, thread = _spin(module_context, tracker, node)
    try:
        assert wait_until(lambda: image_pub.get_subscription_count() == 1, 10.0)
        header = Header(stamp=node.get_clock().now().to_msg(), frame_id=FRAME_ID)
        info_pub.publish(camera_info_message(CameraIntrinsics.from_fov(600, 900), header))
        image_pub.publish(rgb_to_compressed(two_hands_rgb, "jpeg", 95, header))
        assert wait_until(lambda: any(m.header.stamp == header.stamp for m in received), 20.0)
        assert len(received[-1].hands) == 2
        bad = CompressedImage(header=Header(stamp=node.get_clock().now().to_msg()), format="tiff")
        bad.data = b"\x00" * 10
        image_pub.publish(bad)
        assert wait_until(lambda: tracker.stats.dropped_bad_input == 1, 10.0)
        assert "tiff" in tracker.stats.last_drop_reason
    finally:
        executor.shutdown()
        thread.join(timeout=5.0)
        tracker.destroy_node()
        node.destroy_node()


def test_lifecycle_deactivate_stops_and_activate_resumes(module_context):
    tracker = HandTrackerNode(context=module_context, cli_args=["--ros-args", "-r", "__node:=tracker_lc"])
    try:
        assert tracker._worker is not None and tracker._worker.is_alive()
        tracker.trigger_deactivate()
        assert tracker._worker is None
        tracker.trigger_activate()
        assert tracker._worker.is_alive()
    finally:
        tracker.destroy_node()


def test_manual_lifecycle_without_autostart_has_no_pipeline_until_configured(module_context):
    tracker = HandTrackerNode(context=module_context, cli_args=[
        "--ros-args", "-p", "autostart:=false", "-r", "__node:=tracker_manual"])
    try:
        assert tracker._pipeline is None and tracker._worker is None
        tracker.trigger_configure()
        assert tracker._pipeline is not None
    finally:
        tracker.destroy_node()


def test_inference_parameters_override_the_model_options() -> None:
    from hand_perception.core.hand_pipeline import load_pipeline_options

    params = {"min_detection_score": -1.0, "min_presence_score": -1.0, "providers": "cpu",
              "inference_threads": 1, "inference_thread_pool": "own",
              "image_is_mirrored": False, "max_hands": 0, "search_between_frames": True}
    options = pipeline_options_with(load_pipeline_options(), params)
    for model in (options.palm_detector, options.hand_landmarker):
        assert (model.providers, model.num_threads, model.thread_pool) == (("cpu",), 1, "own")
    assert options.search_between_frames and not load_pipeline_options().search_between_frames
    kept = pipeline_options_with(load_pipeline_options(), dict(params, inference_thread_pool="auto"))
    assert kept.hand_landmarker.thread_pool == load_pipeline_options().hand_landmarker.thread_pool


@pytest.mark.parametrize("args,error", [
    (["-p", "max_hands:=50"], "InvalidParameterValueException"),
    (["-p", "providers:=gpu"], "ValueError"),
    (["-p", "inference_thread_pool:=global"], "ValueError"),
    (["-p", "image_transport:=theora"], "ValueError"),
    (["-p", "config_file:=/nonexistent/hand_pipeline.yaml"], "RuntimeError"),
])
def test_bad_parameters_are_rejected(module_context, args, error):
    with pytest.raises(Exception) as info:
        HandTrackerNode(context=module_context, cli_args=["--ros-args", "-r", "__node:=tracker_bad", *args])
    assert type(info.value).__name__ == error


def test_graph_runner_starts_camera_and_tracker(module_context):
    """The shipped graph (camera -> tracker) runs in one process and publishes /hands."""
    from hand_perception.paths import sample_path
    from hand_perception.ros.graph import load_graph
    from hand_perception.ros.runner import start_graph

    graph = load_graph("hand_perception")
    camera = next(n for n in graph.nodes if n.name == "camera")
    camera.parameters.append({"source": str(sample_path("zidane.jpg")), "rate_hz": 10.0})
    running = start_graph(graph, context=module_context)
    try:
        node = rclpy.create_node("graph_probe", context=module_context)
        received: List[HandArray] = []
        node.create_subscription(HandArray, "/hands", received.append, RELIABLE)
        running.executor.add_node(node)
        assert wait_until(lambda: len(received) >= 2, 30.0)
        assert received[-1].header.frame_id == "camera_color_optical_frame"
    finally:
        running.stop()
    assert not running.errors


def test_the_search_for_a_second_hand_runs_between_frames(module_context, shared_hands_dir,
                                                           tmp_path):
    """One hand tracked, a second (small) one appears: the node finds it with the search it
    runs in its idle time between images (search_between_frames, on by default), so after the
    first frame no frame runs the palm detector itself. The camera here leaves the node idle
    after each frame until its search is done (or 1 s), so that the test does not depend on the
    machine's speed."""
    import yaml

    from scenes import second_hand_scene

    config = yaml.safe_load(config_path("hand_pipeline.yaml").read_text())
    config["hand_pipeline"]["tiled_detection"]["interval_frames"] = 10  # sweep on each search
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(config))
    tracker = HandTrackerNode(context=module_context, cli_args=[
        "--ros-args", "-r", "__node:=tracker_between", "-r", "image:=/between/image",
        "-r", "camera_info:=/between/camera_info", "-r", "hands:=/between/hands",
        "-p", "providers:=cpu", "-p", f"config_file:={tmp_path / 'pipeline.yaml'}"])
    inside_frame_runs = []
    process = tracker._pipeline.process

    def recording_process(*args, **kwargs):
        result = process(*args, **kwargs)
        inside_frame_runs.append(result.detector_ran)
        return result
    tracker._pipeline.process = recording_process
    node = rclpy.create_node("between_probe", context=module_context)
    image_pub = node.create_publisher(Image, "/between/image", RELIABLE)
    received: List[HandArray] = []
    node.create_subscription(HandArray, "/between/hands", received.append, RELIABLE)
    executor, thread = _spin(module_context, tracker, node)
    try:
        assert wait_until(lambda: image_pub.get_subscription_count() == 1, 10.0)
        alone, both = second_hand_scene(shared_hands_dir)
        pipeline = tracker._pipeline
        for index in range(30):
            header = Header(stamp=node.get_clock().now().to_msg(), frame_id=FRAME_ID)
            image_pub.publish(numpy_to_image(alone if index < 5 else both, "rgb8", header))
            assert wait_until(lambda: any(m.header.stamp == header.stamp for m in received), 20.0)
            wait_until(lambda: not pipeline.search_pending, 1.0)
            if len(received[-1].hands) == 2:
                break
        assert received and len(received[-1].hands) == 2, [len(m.hands) for m in received]
        assert tracker.stats.search_steps >= 7  # the single pass + 6 tiles, between frames
        assert inside_frame_runs[0] and not any(inside_frame_runs[1:]), inside_frame_runs
    finally:
        tracker.close()
        executor.shutdown()
        thread.join(timeout=5.0)
        tracker.destroy_node()
        node.destroy_node()


@dataclass
class NodeProcess:
    """``python -m ...hand_tracker_node`` (its main()) running as ``/<name>``, with its topics
    under ``/<name>/``, and a probe node that plays its camera."""

    process: subprocess.Popen
    log: Path
    node: object
    executor: object
    image_pub: object
    received: List[HandArray]

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:]

    def publish_and_spin(self, rgb) -> bool:
        """Send ``rgb`` once, spin a little; whether any HandArray has come back yet."""
        header = Header(stamp=self.node.get_clock().now().to_msg(), frame_id=FRAME_ID)
        self.image_pub.publish(numpy_to_image(rgb, "rgb8", header))
        self.executor.spin_once(timeout_sec=0.1)
        return bool(self.received)


@contextlib.contextmanager
def node_process(context, tmp_path, name: str, *params: str):
    """Start the node process (``params``: extra ``name:=value`` parameters) and its probe;
    kill the process if the test did not stop it (and remove its shared-memory segment), and
    free the probe."""
    orphans_before = orphaned_fastdds_segments()
    log = tmp_path / f"{name}.log"
    remaps = [arg for topic in ("image", "camera_info", "hands")
              for arg in ("-r", f"{topic}:=/{name}/{topic}")]
    process = subprocess.Popen(
        [sys.executable, "-m", "hand_perception.nodes.hand_tracker_node", "--ros-args",
         "-r", f"__node:={name}", *remaps, "-p", "providers:=cpu",
         *[arg for param in params for arg in ("-p", param)]],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=log.open("w"))
    node = rclpy.create_node(f"{name}_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        received: List[HandArray] = []
        node.create_subscription(HandArray, f"/{name}/hands", received.append, RELIABLE)
        image_pub = node.create_publisher(Image, f"/{name}/image", qos_profile_sensor_data)
        yield NodeProcess(process, log, node, executor, image_pub, received)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10.0)
            remove_fastdds_segments(orphaned_fastdds_segments() - orphans_before)
        executor.shutdown()
        node.destroy_node()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_node_process_answers_and_exits_cleanly_on_a_stop_signal(rclpy_context, two_hands_rgb,
                                                                  tmp_path, stop_signal):
    """``python -m ...hand_tracker_node`` (its main()) publishes HandArray for camera frames
    and exits 0 on Ctrl-C (SIGINT) or SIGTERM (what ros2 launch sends when SIGINT is not
    enough), while frames keep coming, and takes its 64 MiB Fast DDS shared-memory segment
    with it (the frozen garbage once kept its participant alive past exit: one segment leaked
    per run)."""
    orphans_before = orphaned_fastdds_segments()
    with node_process(rclpy_context, tmp_path, "tracker_process") as tracker:
        assert wait_until(lambda: tracker.publish_and_spin(two_hands_rgb), 60.0), \
            tracker.log_tail()
        assert len(tracker.received[-1].hands) == 2
        tracker.process.send_signal(stop_signal)
        for _ in range(20):  # still publishing while it stops
            tracker.publish_and_spin(two_hands_rgb)
        assert tracker.process.wait(20.0) == 0, tracker.log_tail()
    assert orphaned_fastdds_segments() - orphans_before == set()


def test_node_process_is_driven_through_its_lifecycle_services(rclpy_context, two_hands_rgb,
                                                               tmp_path):
    """With ``autostart:=false`` the node process (its main() and executor) waits unconfigured;
    a lifecycle manager's ChangeState calls configure and activate it, after which it answers
    images and its diagnostics timer fires, and deactivate stops the answers."""
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    with node_process(rclpy_context, tmp_path, "lifecycle_tracker", "autostart:=false") as tracker:
        node, executor = tracker.node, tracker.executor
        diagnostics: List[DiagnosticArray] = []
        node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, RELIABLE)
        get_state = node.create_client(GetState, "/lifecycle_tracker/get_state")
        change_state = node.create_client(ChangeState, "/lifecycle_tracker/change_state")

        def call(client, request, timeout_s: float):
            """The response, or None if it was lost: Fast DDS can answer before it has matched
            this client's response reader ("failed to send response (timeout)" in the log)."""
            assert client.wait_for_service(timeout_sec=30.0), tracker.log_tail()
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=timeout_s)
            if not future.done():
                client.remove_pending_request(future)
                return None
            return future.result()

        def state() -> int:
            for _ in range(10):  # idempotent: ask again if an answer was lost
                response = call(get_state, GetState.Request(), 3.0)
                if response is not None:
                    return response.current_state.id
            raise AssertionError(f"get_state never answered: {tracker.log_tail()}")

        def change(transition: int, expected_state: int) -> None:
            response = call(change_state, ChangeState.Request(
                transition=Transition(id=transition)), 20.0)
            assert response is None or response.success, tracker.log_tail()
            assert state() == expected_state  # also settles a transition whose answer was lost

        def diagnosed() -> bool:
            executor.spin_once(timeout_sec=0.1)
            return any(status.hardware_id == "/lifecycle_tracker"
                       for array in diagnostics for status in array.status)

        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        change(Transition.TRANSITION_CONFIGURE, State.PRIMARY_STATE_INACTIVE)
        change(Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE)
        assert wait_until(lambda: tracker.publish_and_spin(two_hands_rgb), 60.0), \
            tracker.log_tail()
        assert len(tracker.received[-1].hands) == 2
        assert wait_until(diagnosed, 10.0), "no /diagnostics from the node process"
        change(Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_INACTIVE)
        for _ in range(5):  # answers still on their way
            executor.spin_once(timeout_sec=0.1)
        tracker.received.clear()
        for _ in range(10):
            tracker.publish_and_spin(two_hands_rgb)
        assert not tracker.received, "an inactive node published hands"
        tracker.process.send_signal(signal.SIGINT)
        assert tracker.process.wait(20.0) == 0, tracker.log_tail()
