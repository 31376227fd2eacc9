"""``hand-perception demo`` in one process: the record graph on loopback DDS, paced frame by frame.

Pacing: every node that takes part runs on a simulated clock (``use_sim_time``) that this module
publishes on ``/clock``. The camera (image_source_node, a timer at ``fps``) publishes one frame
each time the clock steps one camera period; the clock steps again only when the HandArray of the
previous frame has arrived. So every frame is processed however slow the machine is, the frame
stamps are exactly ``1 / fps`` apart (the video and the LeRobot episode play at the right speed),
and the FPS reported is what the machine really did. Retargeting and recording run alongside,
on the graph's executor, as they would live. A ROS image topic as input cannot be paced: then
frames the tracker cannot keep up with are dropped (as live) and counted.

The tracker's per-stage timings of each frame are read in this process by wrapping its
statistics (``HandTrackerNode.stats``); the end-to-end latencies are measured here.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

import rclpy
import rclpy.logging
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from hand_perception.core.demo_report import DemoReport, FrameRecord, HandSeen
from hand_perception.msg import HandArray
from hand_perception.ros.demo_graph import HANDS_TOPIC, DemoSettings, demo_graph, \
    recorded_topics, robot_sides, robot_topic_prefix
from hand_perception.ros.hand_conversions import HandData, hands_from_msg
from hand_perception.ros.hand_tracker_support import TrackerStats, stamp_seconds
from hand_perception.ros.image import image_to_rgb
from hand_perception.ros.runner import start_graph

_log = logging.getLogger(__name__)
Progress = Callable[[int], None]


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class ResultFrame:
    """A tracker result paired with its image: what the video writer draws."""

    record: FrameRecord
    rgb: object  # (H, W, 3) uint8 RGB, or None when the image was not seen
    hands: List[HandData]


class _TappedTrackerStats(TrackerStats):
    """The tracker's statistics, also handing each result's stage timings to ``on_result``."""

    def __init__(self, on_result: Callable) -> None:
        super().__init__()
        self._on_result = on_result

    def count_published(self, result, camera_latency_s: float, node_latency_s: float) -> None:
        super().count_published(result, camera_latency_s, node_latency_s)
        self._on_result(result.stamp_s, dict(result.timings_ms))


class DemoMonitor(Node):
    """Publishes the simulated clock and collects images, HandArrays and robot commands."""

    def __init__(self, settings: DemoSettings, context: Context) -> None:
        super().__init__("demo_monitor", context=context)
        self.lock = threading.Condition()  # guards what is collected; notified on each arrival
        self.images: Dict[int, tuple] = {}      # stamp ns -> (rgb, receipt monotonic s)
        self.results: Dict[int, tuple] = {}     # stamp ns -> (HandArray, receipt monotonic s)
        self.images_seen = 0
        self.timings: List[tuple] = []          # (stamp s, {stage: ms}) from the tracker
        self.commands: Dict[str, List[tuple]] = {}  # side -> [(stamp ns, receipt s)]
        reliable = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)
        image_qos = reliable if settings.paced else qos_profile_sensor_data
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if settings.paced else None
        self.create_subscription(Image, settings.image_topic, self._on_image, image_qos)
        self.create_subscription(HandArray, HANDS_TOPIC, self._on_hands, reliable)
        for side in robot_sides(settings.robot_hands):
            self.commands[side] = []
            self.create_subscription(
                JointState, robot_topic_prefix(side, settings.robot_hands) + "joint_states",
                lambda msg, s=side: self._on_command(s, msg), reliable)
        self.start_client = self.create_client(Trigger, "/recorder/start_episode")
        self.stop_client = self.create_client(Trigger, "/recorder/stop_episode")

    # --- callbacks (executor threads) ----------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except ValueError:  # the tracker reports such an image (and drops it)
            rgb = None
        with self.lock:
            self.images[stamp_ns(msg.header.stamp)] = (rgb, time.monotonic())
            self.images_seen += 1
            if len(self.images) > 60:  # a live topic the tracker cannot keep up with
                del self.images[min(self.images)]
            self.lock.notify_all()

    def _on_hands(self, msg: HandArray) -> None:
        with self.lock:
            self.results[stamp_ns(msg.header.stamp)] = (msg, time.monotonic())
            self.lock.notify_all()

    def _on_command(self, side: str, msg: JointState) -> None:
        with self.lock:
            self.commands[side].append((stamp_ns(msg.header.stamp), time.monotonic()))
            self.lock.notify_all()

    def on_pipeline_result(self, stamp_s: float, timings_ms: Dict[str, float]) -> None:
        with self.lock:
            self.timings.append((stamp_s, timings_ms))

    # --- main thread ---------------------------------------------------------------------------
    def wait_for(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        with self.lock:
            return self.lock.wait_for(condition, timeout_s)

    def publish_clock(self, nanoseconds: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(nanoseconds), 1_000_000_000)
        self.clock_pub.publish(msg)

    def call(self, client, timeout_s: float = 10.0) -> Trigger.Response:
        """Call a Trigger service (the graph's executor spins the reply)."""
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f"service {client.srv_name} is not available")
        future = client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            raise RuntimeError(f"service {client.srv_name} did not answer in {timeout_s:.0f} s")
        return future.result()

    def take_result(self, key: int) -> Optional[ResultFrame]:
        """Pop the HandArray stamped ``key`` (ns) with its image and timings; None if absent."""
        with self.lock:
            if key not in self.results:
                return None
            msg, received = self.results.pop(key)
            rgb, image_received = self.images.pop(key, (None, None))
            for old in [k for k in self.images if k < key]:
                del self.images[old]
            stamp_s = stamp_seconds(msg.header.stamp)
            near = [t for s, t in self.timings if abs(s - stamp_s) < 5e-4]
            self.timings = [(s, t) for s, t in self.timings if s > stamp_s + 5e-4]
        hands = hands_from_msg(msg)
        timings = dict(near[-1]) if near else {}
        if image_received is not None:
            timings["camera_to_hands"] = (received - image_received) * 1e3
        record = FrameRecord(-1, stamp_s, [HandSeen(h.track_id, h.handedness, h.score)
                                           for h in hands], timings, received)
        return ResultFrame(record, rgb, hands)

    def command_stamps(self) -> Dict[str, List[tuple]]:
        """side -> [(JointState stamp ns, receipt monotonic s)] so far."""
        with self.lock:
            return {side: list(items) for side, items in self.commands.items()}


def command_latencies(frames: List[FrameRecord], commands: Dict[str, List[tuple]],
                      offset_ns: int) -> None:
    """Fill ``hands_to_command`` (ms) of the frames with hands: from the HandArray's arrival to
    the last robot hand's JointState for that frame, the one stamped ``frame stamp +
    offset_ns`` (the retargeter's latency compensation; matched within 1 ms)."""
    pairs = sorted((stamp - offset_ns, received) for items in commands.values()
                   for stamp, received in items)
    if not pairs:
        return
    stamps = np.asarray([p[0] for p in pairs], np.float64) * 1e-9
    for frame in frames:
        if not frame.hands:
            continue
        low, high = np.searchsorted(stamps, [frame.stamp_s - 1e-3, frame.stamp_s + 1e-3])
        if high > low:
            last = max(pairs[i][1] for i in range(low, high))
            frame.timings_ms["hands_to_command"] = (last - frame.received_s) * 1e3


@dataclass
class DemoRun:
    """What a run produced: the measurements and the recorded episode's bag directory."""

    report: DemoReport
    bag_dir: Path


class _Session:
    """One demo run on a started graph (see the module docstring for the pacing)."""

    def __init__(self, settings: DemoSettings, running, monitor: DemoMonitor,
                 on_frame: Callable[[ResultFrame], None], progress: Optional[Progress]) -> None:
        self.settings, self.running, self.monitor = settings, running, monitor
        self.on_frame, self.progress = on_frame, progress or (lambda _n: None)
        self.nodes = {spec.executable: running.nodes[spec.name] for spec in running.graph.nodes}
        self.report = DemoReport(settings.input_name or settings.source or settings.ros_topic)
        self.deadline = float("inf")

    def _check_graph(self) -> None:
        if self.running.errors or not self.running.thread.is_alive():
            error = self.running.errors[0] if self.running.errors else "executor stopped"
            raise RuntimeError(f"the node graph stopped: {error}")

    def _wait(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.monitor.wait_for(condition, 0.1):
            self._check_graph()
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")

    def _wait_ready(self) -> None:
        recorder = self.nodes["recorder_node"]
        # a live camera may publish no camera_info: the recorder takes it if it comes later
        topics = [t for t in recorded_topics(self.settings)
                  if self.settings.paced or t != self.settings.camera_info_topic]
        wait_s = 10.0 if self.settings.paced else max(10.0, self.settings.duration_s)
        self._wait(lambda: self.monitor.count_publishers(self.settings.image_topic) > 0, wait_s,
                   f"a publisher on {self.settings.image_topic}")
        self._wait(lambda: set(recorder.recorded_subscriptions) >= set(topics), 10.0,
                   f"the recorder to subscribe {topics}")
        # tracker + recorder + this monitor on the image; retargeter + recorder + monitor on hands
        self._wait(lambda: self.monitor.count_subscribers(self.settings.image_topic) >= 3
                   and self.monitor.count_subscribers(HANDS_TOPIC) >= 3, 10.0, "matching")
        if self.settings.paced:  # camera, tracker and retargeter follow the clock
            self._wait(lambda: self.monitor.clock_pub.get_subscription_count() >= 3, 10.0,
                       "the nodes to subscribe /clock")

    def run(self) -> DemoRun:
        self._wait_ready()
        started = self.monitor.call(self.monitor.start_client)
        if not started.success:
            raise RuntimeError(f"the recorder did not start an episode: {started.message}")
        if self.settings.duration_s > 0:
            self.deadline = time.monotonic() + self.settings.duration_s
        (self._run_paced if self.settings.paced else self._run_live)()
        self._wait_last_commands()
        stopped = self.monitor.call(self.monitor.stop_client, timeout_s=60.0)
        if not stopped.success:
            self.report.notes.append(f"recorder: {stopped.message}")
        self._finish_report()
        return DemoRun(self.report, Path(started.message))

    def _run_paced(self) -> None:
        period = int(float(1.0 / self.settings.fps) * 1e9)  # as rclpy turns the timer period
        # Half a period off the timer's grid: each clock step then fires the camera timer once.
        t0 = (time.time_ns() // period) * period + period // 2
        limit = self.settings.max_frames or float("inf")
        tracker_stats = self.nodes["hand_tracker_node"].stats
        pending, start, k = None, None, 0
        while k < limit and time.monotonic() < self.deadline:
            stamp = t0 + k * period
            dropped = tracker_stats.dropped_bad_input
            self.monitor.publish_clock(stamp)
            start = start or time.monotonic()
            camera = self.nodes["image_source_node"]
            if not self.monitor.wait_for(lambda: stamp in self.monitor.images or
                                         stamp in self.monitor.results or camera.finished,
                                         self.settings.frame_timeout_s) or camera.finished:
                self._check_graph()
                break  # the camera has no more frames (or none came in frame_timeout_s)
            if pending is not None:  # drawn and encoded while the tracker works on this frame
                self.on_frame(pending)
            self._wait(lambda: stamp in self.monitor.results or
                       tracker_stats.dropped_bad_input > dropped, self.settings.frame_timeout_s,
                       f"the hand tracker's result for frame {k}")
            pending = self._take(stamp)
            if pending is not None:  # the retargeter must have this frame before the next one
                self._wait_commands(pending.record, 1.0)
            k += 1
        if pending is not None:
            self.on_frame(pending)
        self.report.wall_s = (self.report.frames[-1].received_s - start) if self.report.frames \
            else 0.0
        self.report.frames_in = self.nodes["image_source_node"].frames_published

    def _take(self, stamp: int) -> Optional[ResultFrame]:
        result = self.monitor.take_result(stamp)
        if result is not None:
            result.record.index = len(self.report.frames)
            self.report.frames.append(result.record)
            self.progress(1)
        return result

    def _run_live(self) -> None:
        self.report.mode = "live topic: the tracker drops frames it cannot keep up with"
        limit = self.settings.max_frames or float("inf")
        with self.monitor.lock:  # count only the frames that arrive from now on
            seen_before, cutoff = self.monitor.images_seen, max(self.monitor.images, default=-1)
        start = time.monotonic()
        while len(self.report.frames) < limit and time.monotonic() < self.deadline:
            self._check_graph()
            self.monitor.wait_for(lambda: bool(self.monitor.results), 0.2)
            for stamp in sorted(self.monitor.results):
                result = self._take(stamp) if stamp > cutoff else self.monitor.take_result(stamp)
                if result is not None and stamp > cutoff:
                    self.on_frame(result)
                if len(self.report.frames) >= limit:
                    break
        # The monitor's best-effort subscription can miss a frame the tracker still got.
        self.report.frames_in = max(self.monitor.images_seen - seen_before, len(self.report.frames))
        if self.report.frames:
            self.report.wall_s = self.report.frames[-1].received_s - start

    def _offset_ns(self) -> int:
        seconds = self.nodes["retargeting_node"].get_parameter("latency_compensation_s").value
        return int(round(float(seconds) * 1e9))

    def _wait_last_commands(self) -> None:
        """Until the robot hands' commands for the last frame with hands are in (or 2 s)."""
        with_hands = [f for f in self.report.frames if f.hands]
        if with_hands:
            self._wait_commands(with_hands[-1], 2.0)

    def _wait_commands(self, record, timeout_s: float) -> None:
        """Until every robot hand whose side ``record`` shows has commanded that frame."""
        wanted = int(round(record.stamp_s * 1e9)) + self._offset_ns() - 1_000_000
        sides = {h.handedness for h in record.hands} & set(self.monitor.commands)
        commands = self.monitor.commands
        self.monitor.wait_for(lambda: all(any(stamp >= wanted for stamp, _ in commands[side])
                                          for side in sides), timeout_s)

    def _finish_report(self) -> None:
        commands = self.monitor.command_stamps()
        command_latencies(self.report.frames, commands, self._offset_ns())
        names = robot_sides(self.settings.robot_hands)
        self.report.commands = {names[side]: len(items) for side, items in commands.items()}
        tracker, retargeter = self.nodes["hand_tracker_node"], self.nodes["retargeting_node"]
        for what, count in (("frames the tracker dropped (bad input)",
                             tracker.stats.dropped_bad_input),
                            ("frames the tracker dropped (busy)", tracker.stats.dropped_queue),
                            ("HandArrays the retargeter dropped (busy)", retargeter.queue_drops),
                            ("HandArrays the retargeter rejected", retargeter.dropped)):
            if count:
                self.report.notes.append(f"{what}: {count}")


def _quiet_node_loggers(graph, verbose: bool) -> None:
    """Nodes log warnings and errors only (info with ``verbose``): the demo has a progress bar."""
    level = rclpy.logging.LoggingSeverity.INFO if verbose else rclpy.logging.LoggingSeverity.WARN
    for spec in graph.nodes:
        rclpy.logging.set_logger_level(spec.name, level)


def run_demo(settings: DemoSettings, on_frame: Callable[[ResultFrame], None],
             progress: Optional[Progress] = None) -> DemoRun:
    """Start the demo graph in this process, run it over the input and stop it. ``on_frame`` gets
    each processed frame in order (main thread); ``progress(1)`` is called per frame. The local
    DDS environment must be applied before (hand_perception.ros.dds_env). ``RuntimeError`` or
    ``ValueError`` say what went wrong (a node that could not start, a stalled stage)."""
    graph = demo_graph(settings, settings.out_dir / "bag")
    context = Context()
    rclpy.init(context=context)
    try:
        _quiet_node_loggers(graph, settings.verbose)
        running = start_graph(graph, context=context)
        monitor = DemoMonitor(settings, context)
        running.executor.add_node(monitor)
        try:
            tracker = running.nodes[next(s.name for s in graph.nodes
                                         if s.executable == "hand_tracker_node")]
            tracker.stats = _TappedTrackerStats(monitor.on_pipeline_result)
            return _Session(settings, running, monitor, on_frame, progress).run()
        finally:
            running.stop()
            monitor.destroy_node()
    finally:
        if context.ok():
            rclpy.shutdown(context=context)
