"""``retargeting``: tracked hands -> robot-hand commands with latency-compensating action chunks.

Subscribes ``hands`` (hand_perception/HandArray). For each robot hand of ``robot_hands`` (e.g.
``["allegro_right"]``, or ``["leap_left", "leap_right"]``; a ``<hand>_<side>`` shipped config or
a .yaml path) the person's hand of that side is picked (the track already driving it, else the
highest handedness score), retargeted (core/retargeting, warm-started; reset on a track change)
and turned into an action chunk (core/action_chunk.py: the next ``horizon`` commands every
``dt`` s from ``stamp + latency_compensation_s``). Published, under ``robot_hand/`` or, with two
robot hands, ``robot_hand/left/`` and ``robot_hand/right/``:

* ``joint_states`` (sensor_msgs/JointState): the first action, every URDF joint incl. mimic
  joints, stamped with the time it applies at (HandArray stamp + latency_compensation_s);
* ``joint_trajectory`` (trajectory_msgs/JointTrajectory) for ros2_control's
  joint_trajectory_controller, the independent joints: with ``trajectory_start_now`` (default)
  header.stamp = 0, i.e. "start on receipt", and action k at time_from_start (k + 1) * dt (the
  controller interpolates from its current state to action 0 over one step rather than jumping;
  include that step in ``latency_compensation_s``); otherwise header.stamp = the first action's
  time and action k at k * dt (camera and controller clocks must agree);
* ``action_chunk`` (hand_perception/ActionChunk): H x D actions, the independent joints' URDF
  names, the wrist poses in ``arm_base_frame``;
* ``/diagnostics``: per robot hand the state and the per-step solve time (ms).

Keypoints: ``keypoints_3d`` (camera frame) when known - then the wrist pose is published, mapped
by ``arm_from_camera_xyz``/``_xyzw`` (pose of the camera frame in the arm base frame) - else the
hand-centred ``world_keypoints`` (finger joints only need the hand's shape; no wrist poses).
Hand missing for ``lost_timeout_s`` (in HandArray stamps, or on the node clock when no HandArray
arrives at all): the command is held until ``hold_s`` after the last observation, then the
joints ramp (cosine, ``ramp_s``) to ``safe_pose.<robot hand>``; the wrist is held. When the
hand returns the commands are rate-limited from where the robot was told to be. Bad input - a
malformed HandArray (wrong array sizes, NaN keypoints, scores out of range, unknown handedness)
or a stamp not after the previous one - is logged (throttled) and publishes nothing.

Retargeting runs on a worker thread behind a one-slot drop-oldest queue (displaced HandArrays
are counted as queue_drops in /diagnostics). Predictor and its measured error vs horizon: see
core/action_chunk.py.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from hand_perception.core.action_chunk import ActionChunker, ActionChunkOptions, \
    ActionChunkResult, PREDICTORS
from hand_perception.core.keypoints import LEFT, RIGHT
from hand_perception.core.retargeting import BimanualRetargeter, HandObservation, Retargeter, \
    load_options, shipped_config
from hand_perception.msg import ActionChunk, HandArray
from hand_perception.ros.hand_conversions import HandData, hands_from_msg
from hand_perception.ros.hand_tracker_support import DropOldestQueue, stamp_seconds
from hand_perception.ros.node_utils import declare, log_dropped, run_nodes
from hand_perception.ros.retargeting_conversions import action_chunk_message, \
    joint_state_message, joint_trajectory_message

LOST_STATES = ("holding", "ramping", "safe")


def robot_hand_config(name: str) -> Path:
    """``<hand>_<side>`` (a shipped config, e.g. "allegro_right") or a .yaml path -> its file."""
    if name.endswith((".yaml", ".yml")):
        return Path(name).expanduser()
    hand, _, side = name.rpartition("_")
    if not hand or side not in (LEFT, RIGHT):
        raise ValueError(f"robot_hands entry {name!r} is neither <hand>_<left|right> nor a "
                         f".yaml path")
    return shipped_config(hand, side)


@dataclasses.dataclass
class RobotSide:
    """One configured robot hand: its retargeter, chunker, publishers and command state."""

    name: str
    side: str
    retargeter: Retargeter
    chunker: ActionChunker
    publishers: Tuple
    track_id: Optional[int] = None
    last_seen: Optional[float] = None  # stamp (s) of the last observation
    state: str = "idle"
    solve_ms: List[float] = dataclasses.field(default_factory=list)
    steps: int = 0
    last_lost_call: float = -np.inf  # node monotonic time (s) of the last watchdog command


class RetargetingNode(Node):
    """HandArray -> JointState, JointTrajectory and ActionChunk per configured robot hand."""

    def __init__(self, **kwargs) -> None:
        super().__init__("retargeting", **kwargs)
        self._params = self._declare_parameters()
        self.sides: Dict[str, RobotSide] = {}
        for name in self._params["robot_hands"]:
            self._add_robot_hand(name, len(self._params["robot_hands"]) > 1)
        self._bimanual = BimanualRetargeter(**{s: r.retargeter for s, r in self.sides.items()})
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", reliable)
        # Best effort matches reliable and best-effort publishers; the queue keeps the newest.
        self._sub = self.create_subscription(HandArray, "hands", self._on_hands,
                                             qos_profile_sensor_data)
        self.dropped = 0
        self.queue_drops = 0
        self._last_stamp: Optional[float] = None
        self._last_receipt = 0.0
        self._last_diagnostics = time.monotonic()
        self._queue = DropOldestQueue(1)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="retargeting", daemon=True)
        self._worker.start()

    # --- set-up ------------------------------------------------------------------------------

    def _declare_parameters(self) -> dict:
        p = {"robot_hands": list(declare(
            self, "robot_hands", ["allegro_right"], "Robot hands driven: <hand>_<side> of "
            "config/retargeting/ or .yaml paths; at most one per side (two = bimanual)"))}
        p["arm_base_frame"] = declare(self, "arm_base_frame", "arm_base_link",
                                      "frame_id of the ActionChunk wrist poses (robot arm base)")
        p["xyz"] = list(declare(self, "arm_from_camera_xyz", [0.0, 0.0, 0.0],
                                "Camera frame origin in the arm base frame (m)"))
        p["xyzw"] = list(declare(self, "arm_from_camera_xyzw", [0.0, 0.0, 0.0, 1.0],
                                 "Camera frame orientation in the arm base frame (x, y, z, w)"))
        p["chunk"] = self._declare_chunk_parameters()
        p["lost_timeout_s"] = declare(self, "lost_timeout_s", 0.3, "A hand missing this long is "
                                      "lost: hold, then ramp (s)", 0.0, 10.0)
        p["start_now"] = declare(self, "trajectory_start_now", True, "JointTrajectory header "
                                 "stamp 0 (start on receipt) instead of the first action's time")
        p["command_period_s"] = 1.0 / declare(
            self, "command_rate_hz", 30.0, "Rate of hold/ramp commands when no HandArray "
            "arrives (Hz)", 1.0, 1000.0)
        p["diagnostics_period_s"] = declare(self, "diagnostics_period_s", 1.0,
                                            "Period of /diagnostics (s)", 0.05, 60.0)
        p["drop_log_period_s"] = declare(self, "drop_log_period_s", 2.0,
                                         "Throttle of dropped-input errors (s)", 0.0, 60.0)
        return p

    def _declare_chunk_parameters(self) -> ActionChunkOptions:
        c = {"horizon": declare(self, "horizon", 10, "Actions per chunk (H)", 1, 200),
             "dt": declare(self, "dt", 0.033, "Seconds between actions", 0.001, 1.0),
             "history": declare(self, "history", 4, "Samples of the velocity fit", 2, 100),
             "history_window_s": declare(self, "history_window_s", 0.25,
                                         "Older samples are not fitted (s)", 0.001, 10.0),
             "latency_compensation_s": declare(self, "latency_compensation_s", 0.1,
                                               "HandArray stamp -> first action (s)", 0.0, 5.0),
             "predictor": declare(self, "predictor", "constant_velocity",
                                  f"One of {PREDICTORS}"),
             "damping_s": declare(self, "damping_s", 0.3, "Extrapolation damping time "
                                  "constant (s); 0: plain constant velocity", 0.0, 60.0),
             "hold_s": declare(self, "hold_s", 0.5, "Hold after the last observation before "
                               "ramping to the safe pose (s)", 0.0, 60.0),
             "ramp_s": declare(self, "ramp_s", 1.0, "Cosine ramp to the safe pose (s)",
                               0.001, 60.0),
             "resume_speed": declare(self, "resume_speed", 2.0, "Joint rate limit after a loss "
                                     "(rad/s or m/s)", 0.001, 1000.0),
             "resume_linear_speed": declare(self, "resume_linear_speed", 0.5, "Wrist rate limit "
                                            "after a loss (m/s)", 0.001, 1000.0),
             "resume_angular_speed": declare(self, "resume_angular_speed", 2.0, "Wrist rate "
                                             "limit after a loss (rad/s)", 0.001, 1000.0)}
        return ActionChunkOptions(**c)

    def _add_robot_hand(self, name: str, bimanual: bool) -> None:
        path = robot_hand_config(name)
        transform = {"xyz": self._params["xyz"], "xyzw": self._params["xyzw"]}
        retargeter = Retargeter(load_options(path, {"arm_from_camera": transform}))
        side = retargeter.options.side
        if side in self.sides:
            raise ValueError(f"robot_hands={self._params['robot_hands']}: two robot hands for "
                             f"the {side} side")
        hand = retargeter.hand
        default_safe = np.clip(np.zeros(hand.num_joints), hand.lower, hand.upper)
        safe = declare(self, f"safe_pose.{path.stem}", [float(v) for v in default_safe],
                       f"Joints {hand.joint_names} of {path.stem} when the hand is lost "
                       f"(rad/m); default: the URDF zero clipped to the limits")
        chunker = ActionChunker(self._params["chunk"], hand.lower, hand.upper, np.asarray(safe))
        prefix = f"robot_hand/{side}/" if bimanual else "robot_hand/"
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        publishers = (self.create_publisher(JointState, prefix + "joint_states", reliable),
                      self.create_publisher(JointTrajectory, prefix + "joint_trajectory", reliable),
                      self.create_publisher(ActionChunk, prefix + "action_chunk", reliable))
        self.sides[side] = RobotSide(path.stem, side, retargeter, chunker, publishers)

    # --- input -------------------------------------------------------------------------------

    def _on_hands(self, msg: HandArray) -> None:
        if not self._queue.put((msg, self._now())):
            self.queue_drops += 1

    def _work(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get(timeout_s=self._params["command_period_s"])
            try:
                if item is not None:
                    self.process_hand_array(*item)
                self._watchdog(self._now())
                self._maybe_publish_diagnostics()
            except Exception as error:  # noqa: BLE001 - the command stream must survive a bug
                self.get_logger().error(f"retargeting step failed: {error!r}",
                                        throttle_duration_sec=2.0)

    def _now(self) -> float:
        """Node-clock seconds: wall time normally, simulated time under use_sim_time, so a paced
        or replayed run never sees a hand as lost just because processing was slow."""
        return self.get_clock().now().nanoseconds * 1e-9

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        log_dropped(self, reason, self._params["drop_log_period_s"])

    def _parse(self, msg: HandArray) -> Optional[Tuple[float, List[HandData]]]:
        stamp = stamp_seconds(msg.header.stamp)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            self._drop(f"HandArray stamp {stamp:.6f} s is not after the previous one "
                       f"({self._last_stamp:.6f} s): out of order")
            return None
        try:
            hands = hands_from_msg(msg)
        except ValueError as error:
            self._drop(f"malformed HandArray: {error}")
            return None
        unknown = [i for i, h in enumerate(hands) if h.handedness not in (LEFT, RIGHT)]
        if unknown:
            self._drop(f"HandArray hands{unknown} have handedness {hands[unknown[0]].handedness!r}"
                       f": cannot route them to a robot hand")
            return None
        return stamp, hands

    def process_hand_array(self, msg: HandArray, received: float) -> None:
        """Process one HandArray (worker thread; public for tests that feed bad messages)."""
        parsed = self._parse(msg)
        if parsed is None:
            return
        stamp, hands = parsed
        self._last_stamp, self._last_receipt = stamp, received
        for robot in self.sides.values():
            hand = self._pick(robot, hands)
            if hand is not None:
                self._retarget(robot, hand, stamp)
            elif robot.last_seen is not None and \
                    stamp - robot.last_seen >= self._params["lost_timeout_s"]:
                self._command_lost(robot, stamp)

    @staticmethod
    def _pick(robot: RobotSide, hands: List[HandData]) -> Optional[HandData]:
        candidates = [h for h in hands if h.handedness == robot.side]
        if not candidates:
            return None
        # Keep the track already driving this robot hand so a second person does not take over.
        same = [h for h in candidates if h.track_id == robot.track_id]
        return same[0] if same else max(candidates, key=lambda h: h.handedness_score)

    # --- commands ----------------------------------------------------------------------------

    def _retarget(self, robot: RobotSide, hand: HandData, stamp: float) -> None:
        metric = hand.has_metric_3d
        keypoints = hand.keypoints_3d if metric else hand.world_keypoints
        start = time.perf_counter()
        result = self._bimanual.process([HandObservation(
            keypoints.astype(np.float64), hand.handedness, hand.track_id,
            hand.handedness_score, stamp_s=stamp)]).hands[robot.side]
        robot.solve_ms.append(1e3 * (time.perf_counter() - start))
        robot.steps += 1
        if not result.valid:
            self._drop(f"{robot.name}: no wrist frame from the keypoints of track {hand.track_id}")
            return
        new_track = robot.track_id is not None and robot.track_id != hand.track_id
        chunk = robot.chunker.process(stamp, result.qpos, result.wrist_pose if metric else None,
                                      new_track=new_track)
        if robot.state in LOST_STATES or new_track:
            self.get_logger().info(f"{robot.name}: following track {hand.track_id}, resuming "
                                   f"rate-limited from the last command",
                                   throttle_duration_sec=2.0)
        robot.track_id, robot.last_seen = hand.track_id, stamp
        self._publish(robot, chunk)

    def _command_lost(self, robot: RobotSide, stamp: float) -> None:
        chunk = robot.chunker.process(stamp, None)
        if chunk.empty:
            return
        options = self._params["chunk"]
        self.get_logger().warning(
            f"{robot.name}: {robot.side} hand lost for {stamp - robot.last_seen:.2f} s: "
            f"{chunk.state} (the last command is held {options.hold_s:.2f} s after the hand was "
            f"last seen, then the joints ramp over {options.ramp_s:.2f} s to the safe pose)",
            throttle_duration_sec=2.0)
        self._publish(robot, chunk)

    def _watchdog(self, now: float) -> None:
        """Hold/ramp commands on the node clock when no valid HandArray arrives at all."""
        silent = now - self._last_receipt
        if self._last_stamp is None or silent < self._params["lost_timeout_s"]:
            return
        for robot in self.sides.values():
            if robot.last_seen is None or now - robot.last_lost_call < \
                    self._params["command_period_s"]:
                continue
            robot.last_lost_call = now
            self._command_lost(robot, self._last_stamp + silent)

    def _publish(self, robot: RobotSide, chunk: ActionChunkResult) -> None:
        robot.state = chunk.state
        hand = robot.retargeter.hand
        joint_states, trajectory, chunk_pub = robot.publishers
        joint_states.publish(joint_state_message(chunk.times_s[0], hand.full_joint_names,
                                                 hand.full_q(chunk.actions[0])))
        trajectory.publish(joint_trajectory_message(chunk, hand.joint_names,
                                                    self._params["start_now"]))
        chunk_pub.publish(action_chunk_message(
            chunk, hand.joint_names, robot.name, robot.side,
            -1 if robot.track_id is None else robot.track_id, self._params["arm_base_frame"],
            self._params["chunk"].dt))

    # --- diagnostics and shutdown ------------------------------------------------------------

    def _maybe_publish_diagnostics(self) -> None:
        now = time.monotonic()
        if now - self._last_diagnostics < self._params["diagnostics_period_s"]:
            return
        self._last_diagnostics = now
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for robot in self.sides.values():
            times, robot.solve_ms = robot.solve_ms, []
            level = DiagnosticStatus.WARN if robot.state in LOST_STATES else DiagnosticStatus.OK
            values = {"state": robot.state, "steps": robot.steps, "track_id": robot.track_id,
                      "solve_ms_mean": f"{np.mean(times):.3f}" if times else "nan",
                      "solve_ms_max": f"{np.max(times):.3f}" if times else "nan",
                      "dropped_inputs": self.dropped, "queue_drops": self.queue_drops}
            array.status.append(DiagnosticStatus(
                level=level, name=f"retargeting: {robot.name}", hardware_id=robot.name,
                message=robot.state, values=[KeyValue(key=k, value=str(v))
                                             for k, v in values.items()]))
        self._diag_pub.publish(array)

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        self._stopping.set()
        self._queue.close()
        if self._worker.is_alive() and self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


NODE_CLASS = RetargetingNode


def main(args: Optional[Sequence[str]] = None) -> int:
    return run_nodes([RetargetingNode], args=args)


if __name__ == "__main__":
    raise SystemExit(main())
