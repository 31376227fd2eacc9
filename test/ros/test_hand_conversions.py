"""HandArray <-> numpy and CameraInfo -> CameraIntrinsics: round trips, and malformed messages
raise ValueError naming the problem."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from hand_perception.msg import Hand
from hand_perception.ros.hand_conversions import (
    hand_array_message, hand_from_msg, hands_from_msg, intrinsics_from_camera_info,
    matrix_from_quaternion, quaternion_from_matrix)


def _rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def pipeline_hand(track_id=3, handedness="right", depth_source="monocular", seed=0):
    rng = np.random.default_rng(seed)
    world = rng.normal(0.0, 0.04, (21, 3)).astype(np.float32)
    pose = np.eye(4)
    pose[:3, :3] = _rotation([0.3, -1.0, 0.5], 2.5)
    pose[:3, 3] = (0.1, -0.05, 0.6) if depth_source != "none" else (np.nan,) * 3
    kp3 = (world + np.float32([0.1, -0.05, 0.6])) if depth_source != "none" else np.full((21, 3), np.nan, np.float32)
    return SimpleNamespace(
        track_id=track_id, handedness=handedness, handedness_score=0.9, score=0.8,
        keypoints_2d=rng.uniform(0, 640, (21, 2)).astype(np.float32), keypoints_3d=kp3,
        depth_source=depth_source, world_keypoints=world,
        joint_confidence=rng.uniform(0, 1, 21).astype(np.float32),
        joint_visible=rng.uniform(0, 1, 21) > 0.3, wrist_pose=pose)


def test_round_trip_keeps_every_field():
    hands = [pipeline_hand(3, "right", "monocular", 0), pipeline_hand(7, "left", "depth", 1)]
    header = Header(frame_id="cam_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = hand_array_message(hands, header)
    assert msg.header.frame_id == "cam_optical" and msg.header.stamp.nanosec == 345
    assert [h.source for h in msg.hands] == [Hand.SOURCE_VISION] * 2
    assert [h.handedness for h in msg.hands] == [Hand.HANDEDNESS_RIGHT, Hand.HANDEDNESS_LEFT]
    assert [h.depth_source for h in msg.hands] == [Hand.DEPTH_MONOCULAR, Hand.DEPTH_SENSOR]
    back = hands_from_msg(msg)
    for original, data in zip(hands, back):
        assert (data.track_id, data.handedness, data.depth_source) == (
            original.track_id, original.handedness, original.depth_source)
        np.testing.assert_array_equal(data.keypoints_2d, original.keypoints_2d)
        np.testing.assert_array_equal(data.keypoints_3d, original.keypoints_3d)
        np.testing.assert_array_equal(data.world_keypoints, original.world_keypoints)
        np.testing.assert_array_equal(data.joint_visible, original.joint_visible)
        np.testing.assert_allclose(data.wrist_pose, original.wrist_pose, atol=1e-9)
        assert data.keypoints_2d.shape == (21, 2) and data.has_metric_3d
    # Flat layout is row-major: keypoint 5's y is value 11.
    assert msg.hands[0].keypoints_2d[11] == hands[0].keypoints_2d[5, 1]


def test_unknown_position_stays_nan_and_reads_back():
    msg = hand_array_message([pipeline_hand(depth_source="none")], Header())
    hand = msg.hands[0]
    assert hand.depth_source == Hand.DEPTH_NONE and math.isnan(hand.wrist_pose.position.x)
    assert np.all(np.isnan(hand.keypoints_3d))
    data = hand_from_msg(hand)
    assert not data.has_metric_3d and np.all(np.isnan(data.wrist_pose[:3, 3]))


@pytest.mark.parametrize("axis,angle", [([1, 0, 0], math.pi), ([0, 1, 0], math.pi),
                                        ([0, 0, 1], math.pi), ([1, 1, 0], 3.1), ([1, 2, 3], 0.4),
                                        ([0, 0, 1], 0.0)])
def test_quaternion_round_trip_including_half_turns(axis, angle):
    rotation = _rotation(axis, angle)
    quat = quaternion_from_matrix(rotation)
    assert quat[3] >= 0.0 and np.linalg.norm(quat) == pytest.approx(1.0)
    np.testing.assert_allclose(matrix_from_quaternion(quat), rotation, atol=1e-9)


def test_quaternion_matches_a_known_value():
    # 90 degrees about z: (0, 0, sin 45, cos 45).
    np.testing.assert_allclose(quaternion_from_matrix(_rotation([0, 0, 1], math.pi / 2)),
                               [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)


def test_reflection_is_not_a_rotation():
    with pytest.raises(ValueError, match="not a rotation"):
        quaternion_from_matrix(np.diag([1.0, 1.0, -1.0]))


def _msg(**changes):
    hand = hand_array_message([pipeline_hand()], Header()).hands[0]
    for name, value in changes.items():
        setattr(hand, name, value)
    return hand


@pytest.mark.parametrize("changes,match", [
    ({"handedness": 9}, "handedness=9"),
    ({"depth_source": 7}, "depth_source=7"),
    ({"detection_score": float("nan")}, "detection_score"),
    ({"handedness_score": 1.5}, "handedness_score"),
])
def test_bad_scalars_are_named(changes, match):
    with pytest.raises(ValueError, match=match):
        hand_from_msg(_msg(**changes))


def test_nan_keypoint_is_named_with_its_index():
    hand = _msg()
    values = np.array(hand.keypoints_2d)
    values[2 * 4 + 1] = np.nan
    hand.keypoints_2d = values
    with pytest.raises(ValueError, match=r"keypoints_2d is not finite at keypoint\(s\) \[4\]"):
        hand_from_msg(hand)


def test_partial_metric_3d_and_missing_wrist_position_are_rejected():
    hand = _msg()
    values = np.array(hand.keypoints_3d)
    values[0] = np.nan
    hand.keypoints_3d = values
    with pytest.raises(ValueError, match="keypoints_3d is not finite"):
        hand_from_msg(hand)
    hand = _msg()
    hand.wrist_pose.position.x = float("nan")
    with pytest.raises(ValueError, match="wrist_pose.position"):
        hand_from_msg(hand)


def test_non_unit_orientation_and_bad_confidence_are_rejected():
    hand = _msg()
    hand.wrist_pose.orientation.w = 0.0
    hand.wrist_pose.orientation.x = hand.wrist_pose.orientation.y = hand.wrist_pose.orientation.z = 0.0
    with pytest.raises(ValueError, match="wrist_pose.*unit quaternion"):
        hand_from_msg(hand)
    hand = _msg()
    hand.joint_confidence = np.full(21, 2.0, np.float32)
    with pytest.raises(ValueError, match="joint_confidence"):
        hand_from_msg(hand)


def test_array_error_names_the_hand_index():
    msg = hand_array_message([pipeline_hand(1), pipeline_hand(2)], Header())
    msg.hands[1].handedness = 5
    with pytest.raises(ValueError, match=r"hands\[1\]: Hand.handedness=5"):
        hands_from_msg(msg)


def test_writing_rejects_a_wrong_shape_or_label():
    hand = pipeline_hand()
    hand.keypoints_2d = np.zeros((20, 2))
    with pytest.raises(ValueError, match=r"keypoints_2d must have shape \(21, 2\)"):
        hand_array_message([hand], Header())
    with pytest.raises(ValueError, match="handedness 'middle'"):
        hand_array_message([pipeline_hand(handedness="middle")], Header())


def _info(width=640, height=480, k=(500.0, 0, 320.0, 0, 500.0, 240.0, 0, 0, 1)):
    return CameraInfo(width=width, height=height, k=list(k))


def test_camera_info_to_intrinsics():
    intrinsics = intrinsics_from_camera_info(_info(), (640, 480))
    assert (intrinsics.fx, intrinsics.cy, intrinsics.width) == (500.0, 240.0, 640)


@pytest.mark.parametrize("info,size,match", [
    (_info(), (320, 240), "camera_info is 640x480 but the image is 320x240"),
    (_info(k=[0.0] * 9), None, "focal lengths fx=0.0"),
    (_info(k=(500.0, 0, float("nan"), 0, 500.0, 240.0, 0, 0, 1)), None, "9 finite values"),
    (_info(k=(500.0, 0, 900.0, 0, 500.0, 240.0, 0, 0, 1)), None, "principal point"),
    (_info(width=0), None, "size 0x480 is empty"),
])
def test_bad_camera_info_is_named(info, size, match):
    with pytest.raises(ValueError, match=match):
        intrinsics_from_camera_info(info, size)
