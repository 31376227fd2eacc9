"""hand_perception/HandArray <-> numpy, and sensor_msgs/CameraInfo -> CameraIntrinsics.

Writing: :func:`hand_array_message` turns the hand pipeline's result (``PipelineHand`` objects, or
anything with the same attributes) into a HandArray. Reading: :func:`hand_from_msg` /
:func:`hands_from_msg` give consumers such as the retargeter :class:`HandData` - numpy arrays named
like ``PipelineHand``'s - after checking shapes, NaNs and ranges; a malformed message raises
``ValueError`` naming the field and the problem, so a node can log it and drop the message.
Conventions (units, frames, flat layouts, the wrist frame) are those of msg/Hand.msg.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion
from sensor_msgs.msg import CameraInfo

from hand_perception.core import rotations
from hand_perception.core.camera import CameraIntrinsics
from hand_perception.core.keypoints import LEFT, NUM_KEYPOINTS, RIGHT
from hand_perception.core.rotations import quaternion_from_matrix
from hand_perception.msg import Hand, HandArray

HANDEDNESS_TO_MSG: Dict[str, int] = {
    LEFT: Hand.HANDEDNESS_LEFT, RIGHT: Hand.HANDEDNESS_RIGHT, "unknown": Hand.HANDEDNESS_UNKNOWN}
HANDEDNESS_FROM_MSG: Dict[int, str] = {v: k for k, v in HANDEDNESS_TO_MSG.items()}
DEPTH_SOURCE_TO_MSG: Dict[str, int] = {
    "none": Hand.DEPTH_NONE, "monocular": Hand.DEPTH_MONOCULAR, "depth": Hand.DEPTH_SENSOR}
DEPTH_SOURCE_FROM_MSG: Dict[int, str] = {v: k for k, v in DEPTH_SOURCE_TO_MSG.items()}
SOURCE_FROM_MSG: Dict[int, str] = {
    Hand.SOURCE_VISION: "vision", Hand.SOURCE_EMG: "emg", Hand.SOURCE_FUSED: "fused"}
_UNIT_QUATERNION_TOLERANCE = 1e-3


@dataclass
class HandData:
    """One hand read from a Hand message. Shapes/dtypes: ``keypoints_2d`` (21, 2) float32 px;
    ``keypoints_3d`` (21, 3) float32 m, header frame (camera optical), all NaN when unknown;
    ``world_keypoints`` (21, 3) float32 m, hand-centred, axes of the header frame;
    ``joint_confidence`` (21,) float32 [0, 1]; ``joint_visible`` (21,) bool; ``wrist_pose`` (4, 4)
    float64 in the header frame, translation NaN when unknown. ``handedness`` "left"/"right"/
    "unknown"; ``depth_source`` "none"/"monocular"/"depth"; ``source`` "vision"/"emg"/"fused"."""

    track_id: int
    handedness: str
    handedness_score: float
    score: float
    source: str
    depth_source: str
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    world_keypoints: np.ndarray
    joint_confidence: np.ndarray
    joint_visible: np.ndarray
    wrist_pose: np.ndarray

    @property
    def has_metric_3d(self) -> bool:
        """True when ``keypoints_3d`` holds camera-frame positions."""
        return bool(np.all(np.isfinite(self.keypoints_3d)))


# --- rotations -------------------------------------------------------------------------------

def matrix_from_quaternion(quat: Sequence[float]) -> np.ndarray:
    """(x, y, z, w) unit quaternion (a message orientation) -> (3, 3) float64 rotation;
    ``ValueError`` unless unit-norm within the tolerance."""
    x, y, z, w = (float(v) for v in quat)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(norm) or abs(norm - 1.0) > _UNIT_QUATERNION_TOLERANCE:
        raise ValueError(f"orientation ({x}, {y}, {z}, {w}) is not a unit quaternion (norm {norm})")
    return rotations.matrix_from_quaternion((x, y, z, w))


def pose_from_matrix(transform: np.ndarray) -> Pose:
    """(4, 4) homogeneous transform -> geometry_msgs/Pose. A NaN translation (unknown position)
    stays NaN; a NaN rotation gives a NaN orientation (unknown) rather than an error."""
    t = np.asarray(transform, dtype=np.float64)
    if t.shape != (4, 4):
        raise ValueError(f"wrist_pose must be (4, 4), got {t.shape}")
    position = Point(x=float(t[0, 3]), y=float(t[1, 3]), z=float(t[2, 3]))
    if np.all(np.isfinite(t[:3, :3])):
        x, y, z, w = quaternion_from_matrix(t[:3, :3])
    else:
        x = y = z = w = math.nan
    return Pose(position=position, orientation=Quaternion(x=x, y=y, z=z, w=w))


def matrix_from_pose(pose: Pose) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4) float64. A NaN position passes through (unknown); an
    all-NaN orientation gives a NaN rotation (unknown); any other orientation must be a unit
    quaternion."""
    o, p = pose.orientation, pose.position
    transform = np.eye(4)
    quat = (o.x, o.y, o.z, o.w)
    if all(math.isnan(v) for v in quat):
        transform[:3, :3] = np.nan
    else:
        transform[:3, :3] = matrix_from_quaternion(quat)
    transform[:3, 3] = (p.x, p.y, p.z)
    return transform


# --- writing ---------------------------------------------------------------------------------

def _flat(name: str, value: Any, shape: tuple) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    return array.reshape(-1)


def hand_message(hand: Any) -> Hand:
    """A ``PipelineHand`` (or any object with its attributes) -> Hand (source VISION)."""
    if hand.handedness not in HANDEDNESS_TO_MSG:
        raise ValueError(f"handedness {hand.handedness!r} is not one of {sorted(HANDEDNESS_TO_MSG)}")
    if hand.depth_source not in DEPTH_SOURCE_TO_MSG:
        raise ValueError(
            f"depth_source {hand.depth_source!r} is not one of {sorted(DEPTH_SOURCE_TO_MSG)}")
    visible = np.asarray(hand.joint_visible, dtype=bool)
    if visible.shape != (NUM_KEYPOINTS,):
        raise ValueError(f"joint_visible must have shape ({NUM_KEYPOINTS},), got {visible.shape}")
    msg = Hand(track_id=int(hand.track_id), handedness=HANDEDNESS_TO_MSG[hand.handedness],
               handedness_score=float(hand.handedness_score), detection_score=float(hand.score),
               source=Hand.SOURCE_VISION, depth_source=DEPTH_SOURCE_TO_MSG[hand.depth_source])
    msg.keypoints_2d = _flat("keypoints_2d", hand.keypoints_2d, (NUM_KEYPOINTS, 2))
    msg.keypoints_3d = _flat("keypoints_3d", hand.keypoints_3d, (NUM_KEYPOINTS, 3))
    msg.world_keypoints = _flat("world_keypoints", hand.world_keypoints, (NUM_KEYPOINTS, 3))
    msg.joint_confidence = _flat("joint_confidence", hand.joint_confidence, (NUM_KEYPOINTS,))
    msg.joint_visible = visible.tolist()
    msg.wrist_pose = pose_from_matrix(hand.wrist_pose)
    return msg


def hand_array_message(hands: Sequence[Any], header) -> HandArray:
    """Hands of one frame -> HandArray with ``header`` (the source image's stamp and frame_id)."""
    return HandArray(header=header, hands=[hand_message(hand) for hand in hands])


# --- reading ---------------------------------------------------------------------------------

def _read(msg: Hand, name: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    array = np.asarray(getattr(msg, name), dtype=dtype)
    size = int(np.prod(shape))
    if array.shape != (size,):
        raise ValueError(f"Hand.{name} has {array.size} values, expected {size}")
    return array.reshape(shape)


def _require_finite(name: str, array: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(array).reshape(array.shape[0], -1).all(axis=1))
    if bad.size:
        raise ValueError(f"Hand.{name} is not finite at keypoint(s) {bad.tolist()}")


def _check_scores(msg: Hand, confidence: np.ndarray) -> None:
    for name in ("handedness_score", "detection_score"):
        value = float(getattr(msg, name))
        if not 0.0 <= value <= 1.0:  # NaN fails too
            raise ValueError(f"Hand.{name}={value} is outside [0, 1]")
    if not np.all((confidence >= 0.0) & (confidence <= 1.0)):
        raise ValueError(f"Hand.joint_confidence has values outside [0, 1]: {confidence.tolist()}")


def _check_enums(msg: Hand) -> None:
    for name, table in (("handedness", HANDEDNESS_FROM_MSG), ("depth_source", DEPTH_SOURCE_FROM_MSG),
                        ("source", SOURCE_FROM_MSG)):
        if int(getattr(msg, name)) not in table:
            raise ValueError(f"Hand.{name}={getattr(msg, name)} is not one of {sorted(table)}")


def _read_3d(msg: Hand) -> np.ndarray:
    keypoints_3d = _read(msg, "keypoints_3d", (NUM_KEYPOINTS, 3))
    if msg.depth_source == Hand.DEPTH_NONE:
        if not np.all(np.isnan(keypoints_3d)):
            raise ValueError("Hand.keypoints_3d must be all NaN when depth_source is DEPTH_NONE")
    else:
        _require_finite("keypoints_3d", keypoints_3d)
    return keypoints_3d


def hand_from_msg(msg: Hand) -> HandData:
    """Hand -> :class:`HandData` (see its shapes). ``ValueError`` naming the field when the
    message is malformed: wrong array lengths, non-finite 2D/world keypoints, metric 3D that
    disagrees with ``depth_source``, scores outside [0, 1], unknown enum values, or a wrist
    orientation that is not a unit quaternion."""
    _check_enums(msg)
    keypoints_2d = _read(msg, "keypoints_2d", (NUM_KEYPOINTS, 2))
    world = _read(msg, "world_keypoints", (NUM_KEYPOINTS, 3))
    _require_finite("keypoints_2d", keypoints_2d)
    _require_finite("world_keypoints", world)
    keypoints_3d = _read_3d(msg)
    confidence = _read(msg, "joint_confidence", (NUM_KEYPOINTS,))
    _check_scores(msg, confidence)
    visible = _read(msg, "joint_visible", (NUM_KEYPOINTS,), dtype=bool)
    try:
        wrist = matrix_from_pose(msg.wrist_pose)
    except ValueError as error:
        raise ValueError(f"Hand.wrist_pose: {error}") from None
    if msg.depth_source != Hand.DEPTH_NONE and not np.all(np.isfinite(wrist[:3, 3])):
        raise ValueError("Hand.wrist_pose.position is NaN although keypoints_3d is known")
    return HandData(
        track_id=int(msg.track_id), handedness=HANDEDNESS_FROM_MSG[msg.handedness],
        handedness_score=float(msg.handedness_score), score=float(msg.detection_score),
        source=SOURCE_FROM_MSG[msg.source], depth_source=DEPTH_SOURCE_FROM_MSG[msg.depth_source],
        keypoints_2d=keypoints_2d, keypoints_3d=keypoints_3d, world_keypoints=world,
        joint_confidence=confidence, joint_visible=visible, wrist_pose=wrist)


def hands_from_msg(msg: HandArray) -> List[HandData]:
    """Every hand of a HandArray; ``ValueError`` names the index of the first malformed hand."""
    hands = []
    for index, hand in enumerate(msg.hands):
        try:
            hands.append(hand_from_msg(hand))
        except ValueError as error:
            raise ValueError(f"hands[{index}]: {error}") from None
    return hands


# --- camera ----------------------------------------------------------------------------------

def intrinsics_from_camera_info(msg: CameraInfo, image_size: Optional[tuple] = None
                                ) -> CameraIntrinsics:
    """CameraInfo -> CameraIntrinsics (pinhole K; the image is assumed rectified).

    ``image_size`` (width, height) of the image it will be used with: a CameraInfo for another
    size raises ``ValueError`` (K is in that size's pixels). K with non-finite values, a zero or
    negative focal length, or a principal point outside the image also raise ``ValueError``."""
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise ValueError(f"camera_info size {width}x{height} is empty")
    if image_size is not None and (width, height) != tuple(int(v) for v in image_size):
        raise ValueError(
            f"camera_info is {width}x{height} but the image is {image_size[0]}x{image_size[1]}")
    k = np.asarray(msg.k, dtype=np.float64)
    if k.shape != (9,) or not np.all(np.isfinite(k)):
        raise ValueError(f"camera_info K must be 9 finite values, got {k.tolist()}")
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if fx <= 0.0 or fy <= 0.0:
        raise ValueError(f"camera_info K has focal lengths fx={fx}, fy={fy}; both must be > 0")
    if not (0.0 <= cx <= width and 0.0 <= cy <= height):
        raise ValueError(f"camera_info principal point ({cx}, {cy}) is outside {width}x{height}")
    return CameraIntrinsics.from_matrix(k, width, height)
