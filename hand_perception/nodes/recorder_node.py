"""Records demonstration episodes of chosen topics into rosbag2/MCAP bags (one bag per episode).

Topics come from the ``topics`` parameter; their types are discovered from the graph and each is
subscribed RAW (the serialized CDR goes straight to the bag, no deserialization). Episodes are
started and stopped with the ``~/start_episode`` / ``~/stop_episode`` services (std_srvs/Trigger)
or by publishing "start" / "stop" on ``~/episode_command`` (std_msgs/String). ``task``,
``operator`` and ``robot_hand`` are read at each start, so set them before it. The log time of a
message is its receive time on this node's clock (as ``ros2 bag record`` does).
"""
from __future__ import annotations

import importlib
from typing import Dict, List, Optional, Sequence

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hand_perception.core.recording.recorder import (EpisodeMetadata, EpisodeRecorder,
                                                     RecorderOptions)
from hand_perception.ros.node_utils import declare, run_nodes


def message_class(type_name: str) -> type:
    """The Python class of ``pkg/msg/Type``; ``ValueError`` naming it when not importable."""
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ValueError(f"type {type_name!r} is not a message type pkg/msg/Type")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
    except (ImportError, AttributeError) as error:
        raise ValueError(f"message type {type_name!r} is not installed here: {error}") from None


class RecorderNode(Node):
    """Subscribes raw to the chosen topics and hands the bytes to core.recording."""

    def __init__(self, **kwargs) -> None:
        super().__init__("recorder", **kwargs)
        self._wanted: List[str] = [self.resolve_topic_name(t) for t in declare(
            self, "topics", ["/camera/image_raw"], "Topics to record (types found on the graph)")]
        options = RecorderOptions(
            output_dir=declare(self, "output_dir", "episodes",
                               "Directory the episode bags go to (read at each start)"),
            max_queue_messages=declare(self, "max_queue_messages", 256,
                                       "Queued messages before the oldest is dropped", 1, 100000),
            max_queue_mb=declare(self, "max_queue_mb", 512.0,
                                 "Queued payload (MiB) before the oldest is dropped", 1.0, 65536.0),
            max_chunk_age_s=declare(self, "max_chunk_age_s", 0.5, "An MCAP chunk is closed and "
                                    "flushed by this age (s): the most a crash loses", 0.01, 60.0))
        for name, description in (("task", "Task text of the next episode"),
                                  ("operator", "Who demonstrates the next episode"),
                                  ("robot_hand", "Robot hand model of the next episode")):
            declare(self, name, "", description)
        self._auto_start = declare(self, "auto_start", False,
                                   "Start an episode as soon as a recorded topic is found")
        period = declare(self, "discovery_period_s", 0.5,
                         "How often the graph is searched for topics not yet subscribed (s)",
                         0.05, 60.0)
        self.recorder = EpisodeRecorder(options)
        self.recorded_subscriptions: Dict[str, object] = {}  # topic -> raw subscription
        self._reported: set = set()
        control = MutuallyExclusiveCallbackGroup()  # stop waits for the writer: not on data cbs
        self.create_service(Trigger, "~/start_episode", self._on_start, callback_group=control)
        self.create_service(Trigger, "~/stop_episode", self._on_stop, callback_group=control)
        self.create_subscription(String, "~/episode_command", self._on_command, 10,
                                 callback_group=control)
        self._discovery = self.create_timer(period, self._discover, callback_group=control)
        self._discover()

    # ------------------------------------------------------------------ topics
    def _discover(self) -> None:
        types = dict(self.get_topic_names_and_types())
        for topic in self._wanted:
            if topic in self.recorded_subscriptions or topic not in types:
                continue
            self._subscribe(topic, types[topic][0])
        if self._auto_start and self.recorded_subscriptions and not self.recorder.recording:
            self._auto_start = False
            self._start()
        if len(self.recorded_subscriptions) == len(self._wanted):
            self._discovery.cancel()

    def _subscribe(self, topic: str, type_name: str) -> None:
        try:
            msg_type = message_class(type_name)
            self.recorder.add_topic(topic, type_name)
        except ValueError as error:
            if topic not in self._reported:
                self._reported.add(topic)
                self.get_logger().error(f"not recording {topic}: {error}")
            return
        self.recorded_subscriptions[topic] = self.create_subscription(
            msg_type, topic, lambda data, t=topic: self._on_message(t, data),
            self._qos_for(topic), raw=True)
        self.get_logger().info(f"recording {topic} ({type_name})")

    def _qos_for(self, topic: str) -> QoSProfile:
        """Reliable unless a publisher is best effort (a reliable reader would not match it)."""
        publishers = self.get_publishers_info_by_topic(topic)
        best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for p in publishers)
        return QoSProfile(depth=100, durability=DurabilityPolicy.VOLATILE,
                          reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                          else ReliabilityPolicy.RELIABLE)

    def _on_message(self, topic: str, data: bytes) -> None:
        self.recorder.write(topic, self.get_clock().now().nanoseconds, data)

    # ------------------------------------------------------------------ episodes
    def _metadata(self) -> EpisodeMetadata:
        return EpisodeMetadata(**{name: str(self.get_parameter(name).value)
                                  for name in ("task", "operator", "robot_hand")})

    def _start(self) -> Trigger.Response:
        try:
            bag_dir = self.recorder.start_episode(
                self._metadata(), str(self.get_parameter("output_dir").value))
        except (RuntimeError, OSError, ValueError) as error:
            self.get_logger().error(f"start_episode refused: {error}")
            return Trigger.Response(success=False, message=str(error))
        self.get_logger().info(f"episode started: {bag_dir}")
        return Trigger.Response(success=True, message=str(bag_dir))

    def _stop(self) -> Trigger.Response:
        try:
            summary = self.recorder.stop_episode()
        except RuntimeError as error:
            self.get_logger().error(f"stop_episode refused: {error}")
            return Trigger.Response(success=False, message=str(error))
        text = (f"{summary.bag_dir}: {summary.total_written} messages, "
                f"{summary.total_dropped} dropped {summary.dropped_counts or ''}".strip())
        if summary.error:
            self.get_logger().error(f"episode {summary.episode_index}: {summary.error}")
            return Trigger.Response(success=False, message=f"{text}; {summary.error}")
        self.get_logger().info(f"episode stopped: {text}")
        return Trigger.Response(success=True, message=text)

    def _on_start(self, _request: Trigger.Request, _response: Trigger.Response):
        return self._start()

    def _on_stop(self, _request: Trigger.Request, _response: Trigger.Response):
        return self._stop()

    def _on_command(self, msg: String) -> None:
        command = msg.data.strip().lower()
        if command == "start":
            self._start()
        elif command == "stop":
            self._stop()
        else:
            self.get_logger().error(f"episode_command {msg.data!r} is neither 'start' nor 'stop'",
                                    throttle_duration_sec=2.0)

    def close(self) -> None:
        """Finalise a running episode (Ctrl-C, shutdown) and end the writer thread."""
        self.recorder.close()


NODE_CLASS = RecorderNode


def main(args: Optional[Sequence[str]] = None) -> int:
    return run_nodes([RecorderNode], args=args)


if __name__ == "__main__":
    raise SystemExit(main())
