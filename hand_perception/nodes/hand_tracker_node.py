"""``hand_tracker``: camera images -> tracked hands (21 keypoints, metric 3D, wrist pose).

Subscribes ``image`` (sensor_msgs/Image; with ``image_transport: compressed`` instead
``image/compressed``, sensor_msgs/CompressedImage), ``camera_info`` and, with ``use_depth``, an
aligned ``depth`` image (16UC1 mm or 32FC1 m), all with sensor-data QoS. Publishes ``hands``
(hand_perception/HandArray, header = the image's stamp and frame_id), ``hands/markers``
(visualization_msgs/MarkerArray), ``hands/annotated`` (sensor_msgs/Image, with
``publish_annotated``) and ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, ~1 Hz); markers
and the annotated image are built only while something subscribes to them.

Inference (core/hand_pipeline.py) runs on a worker thread behind a drop-oldest queue of
``queue_size`` frames (one by default): a slow frame never builds a backlog, and the frames it
displaced are counted in the diagnostics. With ``search_between_frames`` (default) the search for
further hands while one is tracked (the periodic palm detector pass and the tile sweep) runs on
that thread one detector pass at a time, only while no image waits and the next is not due before
the pass would end (ArrivalClock), so it never delays a frame. Python's garbage collection runs
there too, right after a frame is published (BetweenFramesGarbageCollector). Each image is paired
with the camera_info of the same stamp (else the latest) and with the depth image nearest in time
within ``depth_tolerance_s`` (else the frame is processed monocular). Bad input - an unsupported
encoding, an empty or inconsistent image, camera_info for another size or with an invalid K, an
out-of-order stamp - is logged (throttled, naming the value) and that frame is dropped; the node
keeps running.

A lifecycle node: configure loads the models, activate starts the worker. ``autostart`` (default
true) runs both transitions in the constructor so the graph runner and plain ``main()`` need no
lifecycle manager.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from hand_perception.msg import HandArray
from hand_perception.paths import config_path
from hand_perception.ros.hand_tracker_support import (
    ArrivalClock, BetweenFramesGarbageCollector, DropOldestQueue, TrackerStats, annotate,
    pair_depth, prepare_rgb, stamp_seconds)
from hand_perception.ros.hand_conversions import hand_array_message, intrinsics_from_camera_info
from hand_perception.ros.markers import hands_marker_array
from hand_perception.ros.node_utils import declare, log_dropped, run_nodes

TRANSPORTS = ("raw", "compressed")
#: ``providers`` parameter -> execution providers tried in order ("auto": the config file's list)
PROVIDERS = {"auto": None, "cpu": ("cpu",), "cuda": ("cuda", "cpu"),
             "tensorrt": ("tensorrt", "cuda", "cpu")}
THREAD_POOL_PARAMS = ("auto", "shared", "own")  # auto: config/models.yaml
#: A between-frames detector pass starts only if this many times its typical duration fits
#: before the next image is due (the camera's rate and the pass's duration both jitter).
IDLE_SEARCH_MARGIN = 1.25


def pipeline_options_with(options, params: dict):
    """``options`` (HandPipelineOptions from the config file) with the node's overriding
    parameters applied (0 / -1 / "auto" keep the file's value)."""
    replace = dataclasses.replace
    detector, landmarker, tracker = options.palm_detector, options.hand_landmarker, options.hand_tracker
    if params["min_detection_score"] >= 0.0:
        detector = replace(detector, min_score=params["min_detection_score"])
    if params["min_presence_score"] >= 0.0:
        presence = params["min_presence_score"]  # keep_presence may not exceed it
        tracker = replace(tracker, min_presence=presence,
                          keep_presence=min(tracker.keep_presence, presence))
    providers = PROVIDERS[params["providers"]]
    if providers is not None:
        detector, landmarker = (replace(detector, providers=providers),
                                replace(landmarker, providers=providers))
    if params["inference_threads"] > 0:
        detector, landmarker = (replace(detector, num_threads=params["inference_threads"]),
                                replace(landmarker, num_threads=params["inference_threads"]))
    if params["inference_thread_pool"] != "auto":
        pool = params["inference_thread_pool"]
        detector, landmarker = (replace(detector, thread_pool=pool),
                                replace(landmarker, thread_pool=pool))
    return replace(options, palm_detector=detector, hand_landmarker=landmarker,
                   hand_tracker=tracker, image_is_mirrored=params["image_is_mirrored"],
                   max_hands=params["max_hands"] or options.max_hands,
                   search_between_frames=params["search_between_frames"])


@dataclass
class Frame:
    """One image waiting for inference (camera_info and depth are paired when it is taken)."""

    msg: Any  # Image or CompressedImage
    stamp_s: float
    received_s: float


class HandTrackerNode(LifecycleNode):
    """Runs the hand pipeline on every image it can keep up with and publishes the hands."""

    def __init__(self, **kwargs) -> None:
        super().__init__("hand_tracker", **kwargs)
        self._pipeline = None
        self.stats = TrackerStats()
        self._arrivals = ArrivalClock()
        self._infos: Deque[CameraInfo] = deque(maxlen=8)
        self._info_arrived = threading.Condition()
        self._info_stamps_match = True  # until a camera shows it stamps camera_info otherwise
        self._depths: Deque[Image] = deque(maxlen=8)
        self._last_stamp_s = -float("inf")
        self._restart_pending = False
        self._worker: Optional[threading.Thread] = None
        self._garbage_collector: Optional[BetweenFramesGarbageCollector] = None
        self._subscriptions_made = []
        self._diag_timer = None
        self._configure_error = ""
        self._queue = DropOldestQueue(1)
        try:
            self._declare_parameters()
        except Exception:
            self.destroy_node()  # a rejected parameter: free the handles before raising
            raise
        self._queue = DropOldestQueue(self._params["queue_size"])
        if self._params["autostart"]:
            self._autostart()

    def _autostart(self) -> None:
        problem = ""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            problem = f"failed to configure: {self._configure_error}"
        elif self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            problem = "failed to activate"
        if problem:
            problem = f"{self.get_name()} {problem}"
            self.destroy_node()  # nobody else holds it: free its handles before raising
            raise RuntimeError(problem)

    # --- parameters ------------------------------------------------------------------------

    def _declare_parameters(self) -> None:
        p = {}
        p["autostart"] = declare(self, "autostart", True,
                                 "Configure and activate in the constructor (no lifecycle manager)")
        p["image_transport"] = declare(
            self, "image_transport", "raw", "'raw': sensor_msgs/Image on 'image'; 'compressed': "
            "sensor_msgs/CompressedImage (jpeg/png) on 'image/compressed'", read_only=True)
        if p["image_transport"] not in TRANSPORTS:
            raise ValueError(f"image_transport={p['image_transport']!r} is not one of {TRANSPORTS}")
        p["use_depth"] = declare(self, "use_depth", False,
                                 "Subscribe 'depth' (aligned to the image; 16UC1 mm or 32FC1 m)")
        p["depth_tolerance_s"] = declare(
            self, "depth_tolerance_s", 0.02,
            "Largest |image stamp - depth stamp| (s) for a depth image to be used", 0.0, 1.0)
        p["publish_annotated"] = declare(self, "publish_annotated", False,
                                         "Publish 'hands/annotated' (image with the skeletons)")
        p["queue_size"] = declare(self, "queue_size", 1,
                                  "Frames waiting for inference; older ones are dropped", 1, 8)
        p["marker_lifetime_s"] = declare(self, "marker_lifetime_s", 0.5,
                                         "Lifetime of RViz markers (s)", 0.0, 10.0)
        p["diagnostics_period_s"] = declare(self, "diagnostics_period_s", 1.0,
                                            "Period of /diagnostics (s)", 0.05, 60.0)
        p["camera_info_wait_s"] = declare(
            self, "camera_info_wait_s", 0.05, "Longest wait (s) for the camera_info stamped like "
            "an image, while the camera stamps them alike", 0.0, 1.0)
        p["time_jump_reset_s"] = declare(
            self, "time_jump_reset_s", 2.0, "Stamps going back more than this (s) restart tracking "
            "(a looping log); smaller steps back are dropped as out of order; 0: never", 0.0, 3600.0)
        p["drop_log_period_s"] = declare(self, "drop_log_period_s", 2.0,
                                         "Throttle period of dropped-frame errors (s)", 0.0, 60.0)
        self._params = p
        self._declare_pipeline_parameters()

    def _declare_pipeline_parameters(self) -> None:
        q = {}
        q["config_file"] = declare(self, "config_file", "hand_pipeline.yaml",
                                   "Pipeline options (YAML), relative to config/ or absolute",
                                   read_only=True)
        q["max_hands"] = declare(self, "max_hands", 0, "Hands tracked at most; 0: config file", 0, 10)
        q["min_detection_score"] = declare(
            self, "min_detection_score", -1.0, "Palm detector threshold; -1: config file", -1.0, 1.0)
        q["min_presence_score"] = declare(
            self, "min_presence_score", -1.0, "Hand presence threshold; -1: config file", -1.0, 1.0)
        q["image_is_mirrored"] = declare(
            self, "image_is_mirrored", False, "Images are horizontally flipped (selfie view); overrides the config file")
        q["search_between_frames"] = declare(
            self, "search_between_frames", True, "Look for further hands (the periodic palm "
            "detector pass and tile sweep while one is tracked) one detector run at a time in "
            "the idle time between images, not inside a frame", read_only=True)
        q["providers"] = declare(self, "providers", "auto", "Inference back-end: "
                                 "auto (config file) | cpu | cuda | tensorrt", read_only=True)
        if q["providers"] not in PROVIDERS:
            raise ValueError(f"providers={q['providers']!r} is not one of {tuple(PROVIDERS)}")
        q["inference_threads"] = declare(self, "inference_threads", 0,
                                         "ONNX Runtime intra-op threads; 0: config file", 0, 64)
        q["inference_thread_pool"] = declare(
            self, "inference_thread_pool", "auto", "ONNX Runtime thread pool: auto (config "
            "file) | shared (spinning, fastest) | own (per model, no spinning: cores shared "
            "with other busy processes)", read_only=True)
        if q["inference_thread_pool"] not in THREAD_POOL_PARAMS:
            raise ValueError(f"inference_thread_pool={q['inference_thread_pool']!r} is not one "
                             f"of {THREAD_POOL_PARAMS}")
        self._pipeline_params = q

    def _build_pipeline(self):
        # Imported here: the models load in configure, not when the module is imported.
        from hand_perception.core.hand_pipeline import HandPipeline, load_pipeline_options

        options = load_pipeline_options(config_path(self._pipeline_params["config_file"]))
        return HandPipeline(pipeline_options_with(options, self._pipeline_params))

    # --- lifecycle -------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._pipeline = self._build_pipeline()
            self._create_endpoints()
        except Exception as error:  # models, config file: reported (rclpy would swallow it)
            self._configure_error = f"{type(error).__name__}: {error}"
            self.get_logger().error(f"configure failed: {self._configure_error}")
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def _create_endpoints(self) -> None:
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._hands_pub = self.create_lifecycle_publisher(HandArray, "hands", reliable)
        self._markers_pub = self.create_lifecycle_publisher(MarkerArray, "hands/markers", reliable)
        self._annotated_pub = (self.create_lifecycle_publisher(Image, "hands/annotated", reliable)
                               if self._params["publish_annotated"] else None)
        self._diag_pub = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", reliable)
        self._create_subscriptions()

    def _create_subscriptions(self) -> None:
        sensor = qos_profile_sensor_data
        if self._params["image_transport"] == "compressed":
            image = self.create_subscription(CompressedImage, "image/compressed", self._on_image, sensor)
        else:
            image = self.create_subscription(Image, "image", self._on_image, sensor)
        subs = [image, self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, sensor)]
        if self._params["use_depth"]:
            subs.append(self.create_subscription(Image, "depth", self._on_depth, sensor))
        self._subscriptions_made = subs

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._garbage_collector = BetweenFramesGarbageCollector()  # models loaded: freeze them
        self._queue.open()
        self._worker = threading.Thread(target=self._work, name="hand_tracker-inference", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(self._params["diagnostics_period_s"],
                                             self._publish_diagnostics)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for sub in self._subscriptions_made:
            self.destroy_subscription(sub)
        self._subscriptions_made = []
        for pub in (self._hands_pub, self._markers_pub, self._annotated_pub, self._diag_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self._pipeline = None
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_shutdown(state)

    def _stop_worker(self) -> None:
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        self._queue.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        if self._garbage_collector is not None:
            self._garbage_collector.release()
            self._garbage_collector = None

    def close(self) -> None:
        """Stop the inference thread (the graph runner and run_nodes call this)."""
        self._stop_worker()

    def destroy_node(self) -> None:
        self._stop_worker()
        super().destroy_node()

    # --- executor thread: accept frames ----------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.stats.count_bad_input(reason)
        log_dropped(self, reason, self._params["drop_log_period_s"])

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._info_arrived:
            self._infos.append(msg)  # checked against its image when that is processed
            self._info_arrived.notify_all()

    def _on_depth(self, msg: Image) -> None:
        self._depths.append(msg)  # converted only if paired with an image

    def _on_image(self, msg) -> None:
        stamp_s = stamp_seconds(msg.header.stamp)
        received_s = time.monotonic()
        self._arrivals.arrived(received_s)
        self.stats.count_received()
        jump_s = self._last_stamp_s - stamp_s
        restart = 0.0 < self._params["time_jump_reset_s"] < jump_s
        if restart:  # the worker resets before its next frame, whichever frame that is
            self.get_logger().warning(f"image stamps jumped back {jump_s:.3f} s: tracking restarts")
            self._restart_pending = True
        elif stamp_s <= self._last_stamp_s:
            self._drop(f"image stamp {stamp_s:.6f} s is not newer than the previous "
                       f"{self._last_stamp_s:.6f} s (out of order or repeated)")
            return
        self._last_stamp_s = stamp_s
        if not self._queue.put(Frame(msg, stamp_s, received_s)):
            self.stats.count_queue_drop()

    # --- worker thread: inference and publishing -------------------------------------------

    def _work(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            try:
                self._process(frame)
                if not len(self._queue):  # a waiting frame goes first
                    self._garbage_collector.after_frame()
                self._search_while_idle()
            except ValueError as error:
                self._drop(str(error))
            except Exception as error:  # never let one frame kill the worker
                self.stats.count_bad_input("internal error")
                self.get_logger().error(f"frame at {frame.stamp_s:.6f} s failed: "
                                        f"{type(error).__name__}: {error}", throttle_duration_sec=2.0)

    def _search_while_idle(self) -> None:
        """Run the pipeline's pending search for further hands one detector pass at a time,
        while no image waits and the next is not expected before the pass would end: the search
        then never delays a frame (a camera that leaves no idle time gets it inside a frame,
        once it is overdue; HandPipelineOptions.search_between_frames)."""
        pipeline = self._pipeline
        while pipeline.search_pending and not len(self._queue):
            finish_s = time.monotonic() + IDLE_SEARCH_MARGIN * pipeline.search_step_cost_s
            if finish_s > self._arrivals.next_expected_s():
                return
            self.stats.count_search_step(pipeline.search_step())

    def _same_stamp_info(self, stamp) -> Optional[CameraInfo]:
        matches = [info for info in list(self._infos) if info.header.stamp == stamp]
        return matches[-1] if matches else None

    def _camera_info_for(self, msg, size) -> Optional[CameraInfo]:
        # camera_info and image travel on separate topics: give its twin a moment to arrive,
        # as long as this camera stamps them alike (else the latest one is used at once).
        wait_s = self._params["camera_info_wait_s"] if self._info_stamps_match else 0.0
        with self._info_arrived:
            self._info_arrived.wait_for(lambda: self._same_stamp_info(msg.header.stamp), wait_s)
        info = self._same_stamp_info(msg.header.stamp)
        # Stop waiting only while twins keep failing to come: one late camera_info (a loaded
        # machine) must not make every later image take the latest, possibly stale, one.
        self._info_stamps_match = info is not None or not self._infos
        if info is None and self._infos:
            info = self._infos[-1]
        if info is None:
            self.get_logger().warning("no camera_info yet: publishing hands without metric 3D",
                                      throttle_duration_sec=5.0)
            return None
        return intrinsics_from_camera_info(info, size)

    def _depth_for(self, stamp_s: float, size):
        if not self._params["use_depth"]:
            return None
        depth, problem = pair_depth(list(self._depths), stamp_s, size,
                                    self._params["depth_tolerance_s"])
        if problem:
            self.get_logger().warning(f"monocular for this frame: {problem}",
                                      throttle_duration_sec=self._params["drop_log_period_s"])
        return depth

    def _process(self, frame: Frame) -> None:
        if self._restart_pending:
            self._restart_pending = False
            self._pipeline.reset()
        rgb = prepare_rgb(frame.msg)
        size = (rgb.shape[1], rgb.shape[0])
        intrinsics = self._camera_info_for(frame.msg, size)
        depth = self._depth_for(frame.stamp_s, size) if intrinsics is not None else None
        result = self._pipeline.process(rgb, frame.stamp_s, intrinsics, depth)
        header = Header(stamp=frame.msg.header.stamp, frame_id=frame.msg.header.frame_id)
        self._hands_pub.publish(hand_array_message(result.hands, header))
        latency_s = stamp_seconds(self.get_clock().now().to_msg()) - frame.stamp_s
        self.stats.count_published(result, latency_s, time.monotonic() - frame.received_s)
        if self._markers_pub.get_subscription_count():  # built only for a listener (RViz)
            self._markers_pub.publish(
                hands_marker_array(header, result.hands, self._params["marker_lifetime_s"]))
        if self._annotated_pub is not None and self._annotated_pub.get_subscription_count():
            self._annotated_pub.publish(annotate(rgb, result, header))

    # --- diagnostics -----------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        status = self.stats.diagnostic_status(
            name=f"{self.get_name()}: hand pipeline", hardware_id=self.get_fully_qualified_name())
        self._diag_pub.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


NODE_CLASS = HandTrackerNode


def main(args: Optional[Sequence[str]] = None) -> int:
    # Its callbacks only queue frames (inference has a thread of its own): one executor thread
    return run_nodes([HandTrackerNode], args=args, single_threaded=True)


if __name__ == "__main__":
    raise SystemExit(main())
