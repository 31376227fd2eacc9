"""RViz markers for tracked hands: skeleton lines, joint spheres and a track-id label per hand.

Every MarkerArray starts with a DELETEALL marker, so hands that left the view vanish with the
next message; each marker also carries a ``lifetime`` so everything disappears when the tracker
stops publishing. Markers live in the HandArray's header frame (a camera optical frame) and only
hands with metric 3D (``keypoints_3d`` finite) are drawn: without depth there is nowhere to put
them. Colours: left hands blue, right hands orange, unknown grey.
"""
from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from hand_perception.core.keypoints import BONES, LEFT, RIGHT

COLOURS = {LEFT: (0.2, 0.5, 1.0), RIGHT: (1.0, 0.55, 0.1), "unknown": (0.7, 0.7, 0.7)}
NAMESPACES = ("skeleton", "joints", "labels")
BONE_WIDTH_M = 0.004
JOINT_DIAMETER_M = 0.008
LABEL_HEIGHT_M = 0.02


def _duration(seconds: float) -> Duration:
    whole = int(seconds)
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


def _colour(handedness: str, alpha: float = 1.0) -> ColorRGBA:
    r, g, b = COLOURS.get(handedness, COLOURS["unknown"])
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _points(keypoints: np.ndarray, indices: Iterable[int]) -> List[Point]:
    return [Point(x=float(keypoints[i, 0]), y=float(keypoints[i, 1]), z=float(keypoints[i, 2]))
            for i in indices]


def _marker(header, namespace: str, marker_id: int, kind: int, lifetime_s: float) -> Marker:
    marker = Marker(header=header, ns=namespace, id=marker_id, type=kind, action=Marker.ADD,
                    lifetime=_duration(lifetime_s), frame_locked=False)
    marker.pose.orientation.w = 1.0
    return marker


def hand_markers(header, track_id: int, handedness: str, keypoints_3d: np.ndarray,
                 lifetime_s: float = 0.5) -> List[Marker]:
    """Skeleton (LINE_LIST), joints (SPHERE_LIST) and label (TEXT_VIEW_FACING) of one hand.

    ``keypoints_3d``: (21, 3) metres in ``header.frame_id``; returns [] when any is not finite.
    Marker ids are the track id, so one hand keeps its markers across frames."""
    kp = np.asarray(keypoints_3d, dtype=np.float64)
    if kp.shape != (21, 3) or not np.all(np.isfinite(kp)):
        return []
    colour = _colour(handedness)
    skeleton = _marker(header, "skeleton", track_id, Marker.LINE_LIST, lifetime_s)
    skeleton.scale = Vector3(x=BONE_WIDTH_M)
    skeleton.points = _points(kp, [i for bone in BONES for i in bone])
    skeleton.color = colour
    joints = _marker(header, "joints", track_id, Marker.SPHERE_LIST, lifetime_s)
    joints.scale = Vector3(x=JOINT_DIAMETER_M, y=JOINT_DIAMETER_M, z=JOINT_DIAMETER_M)
    joints.points = _points(kp, range(len(kp)))
    joints.color = colour
    label = _marker(header, "labels", track_id, Marker.TEXT_VIEW_FACING, lifetime_s)
    label.scale = Vector3(z=LABEL_HEIGHT_M)
    # Above the wrist: -y is up in an optical frame.
    label.pose.position = Point(x=float(kp[0, 0]), y=float(kp[0, 1]) - 0.03, z=float(kp[0, 2]))
    label.text = f"{handedness} #{track_id}"
    label.color = colour
    return [skeleton, joints, label]


def hands_marker_array(header, hands: Sequence, lifetime_s: float = 0.5) -> MarkerArray:
    """MarkerArray for all hands of one frame: DELETEALL first (clears hands no longer seen),
    then :func:`hand_markers` of each hand. ``hands``: objects with ``track_id``,
    ``handedness`` and ``keypoints_3d`` (PipelineHand or hand_conversions.HandData)."""
    clear = Marker(header=header, action=Marker.DELETEALL)
    markers = [clear]
    for hand in hands:
        markers += hand_markers(header, int(hand.track_id), str(hand.handedness),
                                hand.keypoints_3d, lifetime_s)
    return MarkerArray(markers=markers)
