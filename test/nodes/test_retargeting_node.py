"""retargeting_node over DDS: HandArrays made from robot FK keypoints -> JointState,
JointTrajectory and ActionChunk; bimanual routing; bad input publishes nothing; hand loss ramps."""
import math

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory

pytest.importorskip("pinocchio", reason="retargeting needs pinocchio: pip install 'pin==4.1.0'")
pytest.importorskip("dexi_rs", reason="shipped hands need pip install 'dexi-rs==0.4.1'")

from hand_perception.core.retargeting import Retargeter, load_options, shipped_config  # noqa: E402
from hand_perception.core.retargeting.bench_solve import palm_moving_joints  # noqa: E402
from hand_perception.msg import ActionChunk, Hand, HandArray  # noqa: E402
from hand_perception.nodes import retargeting_node  # noqa: E402
from hand_perception.nodes.retargeting_node import RetargetingNode  # noqa: E402
from hand_perception.ros.graph import load_graph  # noqa: E402
from hand_perception.ros.hand_conversions import matrix_from_pose  # noqa: E402
from hand_perception.ros.retargeting_conversions import chunk_actions, time_message  # noqa: E402
from hand_perception.ros.runner import create_node  # noqa: E402
from helpers import spin_until  # noqa: E402

pytestmark = pytest.mark.dds
CAMERA_ROTATION = Rotation.from_euler("xyz", [100, -20, 30], degrees=True).as_matrix()
CAMERA_SHIFT = np.array([0.05, -0.02, 0.45])
ARM_XYZ, ARM_XYZW = [0.3, 0.1, 0.2], [0.0, 0.0, 0.7071068, 0.7071068]


def _retargeter(name):
    hand, side = name.rsplit("_", 1)
    return Retargeter(load_options(shipped_config(hand, side)))


def _pose_q(retargeter, seed):
    hand = retargeter.hand
    q = hand.lower + (hand.upper - hand.lower) * np.random.default_rng(seed).uniform(
        0.2, 0.8, hand.num_joints)
    fixed = palm_moving_joints(retargeter)  # a moving knuckle would move the palm frame
    q[fixed] = hand.neutral()[fixed]
    return q


def hand_message(retargeter, q, track_id, metric=True, handedness=None):
    """A Hand whose human keypoints retarget to ``q``: robot FK / scaling, in a camera frame."""
    local = retargeter.robot_keypoints(q) / retargeter.options.scaling
    camera = local @ CAMERA_ROTATION.T + CAMERA_SHIFT
    side = retargeter.options.side
    msg = Hand(track_id=track_id, handedness=handedness if handedness is not None else (
        Hand.HANDEDNESS_LEFT if side == "left" else Hand.HANDEDNESS_RIGHT),
        handedness_score=0.9, detection_score=0.95,
        depth_source=Hand.DEPTH_MONOCULAR if metric else Hand.DEPTH_NONE)
    msg.keypoints_2d = np.full(42, 100.0, dtype=np.float32)
    known = camera if metric else np.full((21, 3), np.nan)
    msg.keypoints_3d = known.reshape(-1).astype(np.float32)
    msg.world_keypoints = (camera - camera.mean(axis=0)).reshape(-1).astype(np.float32)
    msg.joint_confidence = np.full(21, 0.9, dtype=np.float32)
    msg.joint_visible = [True] * 21
    msg.wrist_pose.position.x, msg.wrist_pose.position.y, msg.wrist_pose.position.z = \
        (float(v) for v in camera[0])
    return msg


def array_message(stamp_s, hands):
    return HandArray(header=Header(stamp=time_message(stamp_s), frame_id="camera"), hands=hands)


class Rig:
    """The node under test, a probe publishing HandArrays and recording every output."""

    def __init__(self, context, params, sides=("",)):
        args = ["--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
        self.node = RetargetingNode(context=context, cli_args=args)
        self.probe = rclpy.create_node("probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.pub = self.probe.create_publisher(HandArray, "hands", 10)
        self.got = {}
        for side in sides:
            prefix = f"robot_hand/{side}/" if side else "robot_hand/"
            for kind, msg_type in (("joint_states", JointState),
                                   ("joint_trajectory", JointTrajectory),
                                   ("action_chunk", ActionChunk)):
                received = self.got.setdefault((side, kind), [])
                self.probe.create_subscription(msg_type, prefix + kind, received.append, 100)
        self.diagnostics = []
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        matched = lambda: self.pub.get_subscription_count() >= 1 and all(  # noqa: E731
            p.get_subscription_count() >= 1 for r in self.node.sides.values() for p in r.publishers)
        assert spin_until(self.executor, matched, 10.0)

    def send(self, msg, expect=None, timeout=10.0):
        """Publish; with ``expect`` = (side, count) wait until that many chunks arrived."""
        self.pub.publish(msg)
        if expect is not None:
            side, count = expect
            assert self.wait(lambda: len(self.got[(side, "action_chunk")]) >= count and len(
                self.got[(side, "joint_states")]) >= count, timeout)

    def wait(self, condition, timeout=10.0):
        return spin_until(self.executor, condition, timeout)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def rig_factory(rclpy_context):
    rigs = []

    def make(params, sides=("",)):
        rigs.append(Rig(rclpy_context, params, sides))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


def test_fk_keypoints_give_the_generating_joints_trajectory_and_chunk(rig_factory):
    rig = rig_factory({"robot_hands": "['allegro_right']", "horizon": 6, "dt": 0.05,
                       "arm_from_camera_xyz": str(ARM_XYZ), "arm_from_camera_xyzw": str(ARM_XYZW),
                       "arm_base_frame": "arm_base", "diagnostics_period_s": 0.1})
    retargeter = _retargeter("allegro_right")
    q = _pose_q(retargeter, 5)
    for i in range(3):  # still hand: warm-started solves converge, the velocity is zero
        rig.send(array_message(100.0 + i / 30, [hand_message(retargeter, q, 4)]), ("", i + 1))
    state = rig.got[("", "joint_states")][-1]
    hand = retargeter.hand
    assert list(state.name) == hand.full_joint_names
    np.testing.assert_allclose(state.position, hand.full_q(q), atol=0.02)
    trajectory = rig.got[("", "joint_trajectory")][-1]
    times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in trajectory.points]
    assert len(times) == 6 and np.all(np.diff(times) > 0) and times[0] > 0
    assert trajectory.header.stamp.sec == 0 and trajectory.header.stamp.nanosec == 0
    assert list(trajectory.joint_names) == hand.joint_names
    chunk = rig.got[("", "action_chunk")][-1]
    actions = chunk_actions(chunk)
    assert actions.shape == (6, hand.num_joints) and list(chunk.joint_names) == hand.joint_names
    np.testing.assert_allclose(actions, np.tile(q, (6, 1)), atol=0.02)
    assert chunk.header.frame_id == "arm_base" and chunk.robot_hand == "allegro_right"
    assert chunk.track_id == 4 and chunk.handedness == Hand.HANDEDNESS_RIGHT
    assert chunk.horizon == 6 and chunk.dt == pytest.approx(0.05)
    stamp = chunk.header.stamp.sec + 1e-9 * chunk.header.stamp.nanosec
    assert stamp == pytest.approx(100.0 + 2 / 30 + 0.1, abs=1e-6)  # + latency_compensation_s
    arm = np.eye(4)
    arm[:3, :3] = Rotation.from_quat(ARM_XYZW).as_matrix()
    arm[:3, 3] = ARM_XYZ
    camera_pose = np.eye(4)
    camera_pose[:3, :3], camera_pose[:3, 3] = CAMERA_ROTATION, CAMERA_SHIFT
    assert len(chunk.wrist_poses) == 6
    np.testing.assert_allclose(matrix_from_pose(chunk.wrist_poses[-1]), arm @ camera_pose,
                               atol=1e-4)
    assert rig.wait(lambda: any(s.name == "retargeting: allegro_right" and any(
        v.key == "solve_ms_mean" and v.value != "nan" for v in s.values)
        for d in rig.diagnostics for s in d.status))


def test_bimanual_routes_by_handedness_and_world_keypoints_drive_fingers_only(rig_factory):
    rig = rig_factory({"robot_hands": "['inspire_left', 'inspire_right']",
                       "lost_timeout_s": 5.0}, sides=("left", "right"))
    left, right = _retargeter("inspire_left"), _retargeter("inspire_right")
    q_left, q_right = _pose_q(left, 1), _pose_q(right, 2)
    both = [hand_message(right, q_right, 7, metric=False), hand_message(left, q_left, 3)]
    for i in range(2):
        rig.send(array_message(50.0 + i / 30, both), ("left", i + 1))
        assert rig.wait(lambda: len(rig.got[("right", "action_chunk")]) == i + 1)
    chunks = {s: rig.got[(s, "action_chunk")][-1] for s in ("left", "right")}
    np.testing.assert_allclose(chunk_actions(chunks["left"])[0], q_left, atol=0.01)
    np.testing.assert_allclose(chunk_actions(chunks["right"])[0], q_right, atol=0.01)
    assert chunks["left"].track_id == 3 and chunks["right"].track_id == 7
    assert len(chunks["left"].wrist_poses) == 10 and len(chunks["right"].wrist_poses) == 0
    # Only a left hand: the left robot hand moves on, the right one gets nothing (not lost yet).
    rig.send(array_message(50.1, [hand_message(left, q_left, 3)]), ("left", 3))
    assert len(rig.got[("right", "action_chunk")]) == 2


def _bad_messages(retargeter, q):
    nan_hand = hand_message(retargeter, q, 1)
    world = np.array(nan_hand.world_keypoints)
    world[7] = np.nan
    nan_hand.world_keypoints = world
    unknown = hand_message(retargeter, q, 1, handedness=Hand.HANDEDNESS_UNKNOWN)
    return [("NaN", array_message(10.2, [nan_hand]), "not finite"),
            ("unknown handedness", array_message(10.3, [unknown]), "handedness"),
            ("out of order", array_message(10.0, [hand_message(retargeter, q, 1)]),
             "out of order")]


def test_bad_input_publishes_nothing_and_logs_why(rig_factory, monkeypatch):
    logged = []
    real = retargeting_node.log_dropped
    monkeypatch.setattr(retargeting_node, "log_dropped",
                        lambda node, reason, period_s=2.0: (logged.append(reason),
                                                            real(node, reason, period_s)))
    rig = rig_factory({"robot_hands": "['inspire_right']", "lost_timeout_s": 5.0})
    retargeter = _retargeter("inspire_right")
    q = _pose_q(retargeter, 3)
    rig.send(array_message(10.1, [hand_message(retargeter, q, 1)]), ("", 1))
    for count, (_, msg, reason) in enumerate(_bad_messages(retargeter, q), start=1):
        rig.send(msg)
        assert rig.wait(lambda: rig.node.dropped == count), f"not dropped: {reason}"
        assert reason in logged[-1], logged
    short = hand_message(retargeter, q, 1)
    short._keypoints_3d = np.zeros(60, dtype=np.float32)  # 20 keypoints: cannot be sent over DDS
    rig.node.process_hand_array(array_message(10.4, [short]), 0.0)
    assert rig.node.dropped == 4 and "keypoints_3d has 60 values" in logged[-1]
    # The next good message is answered, and nothing was published for the bad ones in between.
    rig.send(array_message(10.5, [hand_message(retargeter, q, 1)]), ("", 2))
    stamps = [c.header.stamp.sec + 1e-9 * c.header.stamp.nanosec
              for c in rig.got[("", "action_chunk")]]
    assert stamps == pytest.approx([10.2, 10.6], abs=1e-6)
    assert len(rig.got[("", "joint_states")]) == 2 and len(rig.got[("", "joint_trajectory")]) == 2


def _first_actions(chunks):
    stamps = np.array([c.header.stamp.sec + 1e-9 * c.header.stamp.nanosec for c in chunks])
    return stamps, np.array([chunk_actions(c)[0] for c in chunks])


def test_hand_loss_holds_ramps_to_safe_pose_and_resumes_without_jumps(rig_factory):
    ramp_s, speed = 0.4, 3.0
    rig = rig_factory({"robot_hands": "['inspire_right']", "lost_timeout_s": 0.1, "hold_s": 0.2,
                       "ramp_s": ramp_s, "command_rate_hz": 50.0, "resume_speed": speed})
    retargeter = _retargeter("inspire_right")
    q = _pose_q(retargeter, 4)
    now = lambda: rig.node.get_clock().now().nanoseconds * 1e-9  # noqa: E731
    for i in range(3):
        rig.send(array_message(now(), [hand_message(retargeter, q, 2)]), ("", i + 1))
    chunks = rig.got[("", "action_chunk")]
    safe = retargeter.hand.clip(np.zeros(retargeter.hand.num_joints))
    assert rig.wait(lambda: np.allclose(chunk_actions(chunks[-1])[0], safe, atol=1e-6), 10.0)
    stamps, firsts = _first_actions(chunks[2:])
    assert stamps.size > 10 and np.all(np.diff(stamps) > 0)
    steps = np.abs(np.diff(firsts, axis=0)).max(axis=1)
    peak = math.pi / 2 * np.abs(q - safe).max() / ramp_s  # cosine ramp's top speed
    assert np.all(steps <= peak * np.diff(stamps) * 1.05 + 1e-6), (steps, np.diff(stamps))
    assert np.abs(firsts[1] - firsts[0]).max() < 1e-3  # held first, no jump
    # The hand comes back: rate-limited from the safe pose towards q.
    lost_count = len(chunks)
    for _ in range(4):
        rig.send(array_message(now(), [hand_message(retargeter, q, 2)]), ("", len(chunks) + 1))
    stamps, firsts = _first_actions(chunks[lost_count - 1:])
    steps = np.abs(np.diff(firsts, axis=0)).max(axis=1)
    assert np.all(steps <= speed * (np.diff(stamps) + 0.033) + 1e-6), steps
    assert not np.allclose(firsts[1], q, atol=0.05)  # not there at once


def test_teleop_graph_starts_the_node_with_its_parameter_file(rclpy_context):
    graph = load_graph("teleop")
    assert [n.executable for n in graph.nodes] == [
        "image_source_node", "hand_tracker_node", "retargeting_node"]
    node = create_node(next(n for n in graph.nodes if n.name == "retargeting"), rclpy_context)
    try:
        assert node.get_name() == "retargeting" and set(node.sides) == {"right"}
        assert node.sides["right"].name == "allegro_right"
        assert node._sub.topic_name == "/hands"
        assert [p.topic_name for p in node.sides["right"].publishers] == [
            "/robot_hand/joint_states", "/robot_hand/joint_trajectory", "/robot_hand/action_chunk"]
    finally:
        node.destroy_node()


def test_two_robot_hands_for_one_side_are_rejected(rclpy_context):
    with pytest.raises(ValueError, match="two robot hands"):
        RetargetingNode(context=rclpy_context, cli_args=[
            "--ros-args", "-p", "robot_hands:=['inspire_right', 'ability_right']"])
