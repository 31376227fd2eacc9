"""RViz markers: one skeleton, joint list and label per hand with metric 3D, cleared each frame."""
from types import SimpleNamespace

import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from hand_perception.core.keypoints import BONES
from hand_perception.ros.markers import COLOURS, hand_markers, hands_marker_array


def _hand(track_id, handedness, z=0.5):
    kp = np.random.default_rng(track_id).normal(0, 0.03, (21, 3)).astype(np.float32) + [0, 0, z]
    return SimpleNamespace(track_id=track_id, handedness=handedness, keypoints_3d=kp)


def test_each_hand_gets_skeleton_joints_and_label_in_the_header_frame():
    header = Header(frame_id="cam_optical")
    hands = [_hand(4, "left"), _hand(9, "right")]
    array = hands_marker_array(header, hands, lifetime_s=0.25)
    assert array.markers[0].action == Marker.DELETEALL
    body = array.markers[1:]
    assert len(body) == 6
    assert all(m.header.frame_id == "cam_optical" and m.action == Marker.ADD for m in body)
    assert all(m.lifetime.nanosec == 250_000_000 for m in body)
    by_key = {(m.ns, m.id): m for m in body}
    assert set(by_key) == {(ns, i) for ns in ("skeleton", "joints", "labels") for i in (4, 9)}
    skeleton, joints = by_key[("skeleton", 9)], by_key[("joints", 9)]
    assert skeleton.type == Marker.LINE_LIST and len(skeleton.points) == 2 * len(BONES)
    assert joints.type == Marker.SPHERE_LIST and len(joints.points) == 21
    a, b = BONES[3]
    np.testing.assert_allclose([skeleton.points[7].x, skeleton.points[7].y, skeleton.points[7].z],
                               hands[1].keypoints_3d[b], rtol=1e-6)
    assert skeleton.points[6].x == float(hands[1].keypoints_3d[a][0])
    assert by_key[("labels", 4)].text == "left #4"
    left, right = by_key[("joints", 4)].color, joints.color
    assert (left.r, left.g, left.b) == COLOURS["left"] and (right.r, right.g, right.b) == COLOURS["right"]


def test_hand_without_metric_3d_draws_nothing_but_still_clears():
    hand = _hand(1, "right")
    hand.keypoints_3d = np.full((21, 3), np.nan, np.float32)
    assert hand_markers(Header(), 1, "right", hand.keypoints_3d) == []
    array = hands_marker_array(Header(), [hand])
    assert [m.action for m in array.markers] == [Marker.DELETEALL]


def test_no_hands_is_just_a_clear():
    assert [m.action for m in hands_marker_array(Header(), []).markers] == [Marker.DELETEALL]
