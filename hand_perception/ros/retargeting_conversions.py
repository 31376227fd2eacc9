"""Retargeting outputs -> ROS messages: JointState, JointTrajectory (ros2_control's
joint_trajectory_controller) and hand_perception/ActionChunk.

Times are seconds in the HandArray stamps' time base (the camera clock); see
hand_perception/nodes/retargeting_node.py for what each header stamp means.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hand_perception.core.action_chunk import ActionChunkResult
from hand_perception.msg import ActionChunk, Hand
from hand_perception.ros.hand_conversions import pose_from_matrix

HANDEDNESS_CODES = {"left": Hand.HANDEDNESS_LEFT, "right": Hand.HANDEDNESS_RIGHT}


def time_message(seconds: float) -> Time:
    """Seconds (>= 0) -> builtin_interfaces/Time (negative values clamp to 0)."""
    nanoseconds = max(int(round(seconds * 1e9)), 0)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def duration_message(seconds: float) -> Duration:
    """Seconds (>= 0) -> builtin_interfaces/Duration."""
    nanoseconds = max(int(round(seconds * 1e9)), 0)
    return Duration(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def joint_state_message(stamp_s: float, names: Sequence[str], positions: np.ndarray) -> JointState:
    """JointState of ``positions`` (n,) rad/m named ``names`` (n), stamped ``stamp_s``."""
    if len(names) != len(positions):
        raise ValueError(f"{len(names)} joint names for {len(positions)} positions")
    return JointState(header=Header(stamp=time_message(stamp_s)), name=list(names),
                      position=[float(v) for v in positions])


def joint_trajectory_message(chunk: ActionChunkResult, names: Sequence[str],
                             start_now: bool) -> JointTrajectory:
    """The chunk's H actions as a JointTrajectory for joint_trajectory_controller.

    start_now: header.stamp = 0 ("start when received") and action k at time_from_start
    (k + 1) * dt, so the controller interpolates from its current state to the first action over
    one step instead of jumping; else header.stamp = the first action's time and action k at
    k * dt (needs the camera and controller clocks to agree; points already in the past are
    skipped by the controller)."""
    times = chunk.times_s - chunk.times_s[0]
    if start_now:
        step = times[1] if len(times) > 1 else 0.0
        times = times + (step if step > 0 else 1e-3)
    header = Header(stamp=Time() if start_now else time_message(chunk.times_s[0]))
    points = [JointTrajectoryPoint(positions=[float(v) for v in action],
                                   time_from_start=duration_message(t))
              for action, t in zip(chunk.actions, times)]
    return JointTrajectory(header=header, joint_names=list(names), points=points)


def action_chunk_message(chunk: ActionChunkResult, names: Sequence[str], robot_hand: str,
                         side: str, track_id: int, frame_id: str, dt: float) -> ActionChunk:
    """ActionChunk of ``chunk``: header.stamp = the first action's time, frame_id = the arm
    base frame of the wrist poses; actions row-major (H, D)."""
    actions = np.asarray(chunk.actions, dtype=np.float32)
    if actions.shape[1] != len(names):
        raise ValueError(f"{len(names)} joint names for {actions.shape[1]} action columns")
    msg = ActionChunk(header=Header(stamp=time_message(chunk.times_s[0]), frame_id=frame_id),
                      track_id=max(int(track_id), 0), handedness=HANDEDNESS_CODES.get(side, 0),
                      robot_hand=robot_hand, joint_names=list(names), dt=float(dt),
                      horizon=int(actions.shape[0]), predictor=chunk.predictor)
    msg.actions = actions.reshape(-1).tolist()
    msg.wrist_poses = [pose_from_matrix(pose) for pose in chunk.wrist_poses]
    return msg


def chunk_actions(msg: ActionChunk) -> np.ndarray:
    """ActionChunk -> actions float64 (H, D); ``ValueError`` when the sizes disagree."""
    count = len(msg.joint_names)
    if count == 0 or len(msg.actions) != msg.horizon * count or not math.isfinite(msg.dt):
        raise ValueError(f"ActionChunk has {len(msg.actions)} actions for horizon {msg.horizon} "
                         f"x {count} joints")
    return np.asarray(msg.actions, dtype=np.float64).reshape(msg.horizon, count)
