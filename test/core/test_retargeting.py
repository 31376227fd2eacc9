"""Tests of the ROS-free retargeting core on every shipped robot hand (needs pin + dexi-rs)."""
import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="retargeting needs pinocchio: pip install 'pin==4.1.0'")
pytest.importorskip("dexi_rs", reason="shipped hands need pip install 'dexi-rs==0.4.1'")

from hand_perception.core.retargeting import (  # noqa: E402
    BimanualRetargeter, HandObservation, HandSizeCalibrator, Retargeter, RetargetingOptions,
    check_config, load_options, shipped_config, shipped_configs)
from hand_perception.core.retargeting.bench_solve import palm_moving_joints  # noqa: E402
from hand_perception.core.retargeting.resources import SHIPPED_HANDS  # noqa: E402

CONFIGS = shipped_configs()
IDS = [p.stem for p in CONFIGS]


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def _target_q(retargeter, rng):
    hand = retargeter.hand
    q = hand.lower + (hand.upper - hand.lower) * rng.uniform(0.15, 0.85, hand.num_joints)
    fixed = palm_moving_joints(retargeter)  # a moving knuckle would move the palm frame
    q[fixed] = hand.neutral()[fixed]
    return q


@pytest.fixture(scope="module", params=CONFIGS, ids=IDS)
def retargeter(request):
    return Retargeter(load_options(request.param, {"scaling": 1.0}))


def test_every_hand_and_side_is_shipped():
    names = set(IDS)
    for hand in SHIPPED_HANDS:
        for side in ("left", "right"):
            assert f"{hand}_{side}" in names
    assert not any("schunk" in n for n in names)  # GPL-3: not shipped by default


def test_positions_follow_the_model_through_live_views(retargeter):
    """``RobotHand.positions`` reads ``data.oMf`` through views kept from construction: they
    must see every later FK (pinocchio updates the placements in place)."""
    import pinocchio as pin
    hand = retargeter.hand
    ids = retargeter._kp_ids
    offsets = np.full((len(ids), 3), 0.01)
    for q in (hand.lower, hand.upper, hand.neutral()):
        pin.framesForwardKinematics(hand.model, hand.data, hand.full_q(q))
        poses = [hand.data.oMf[f] for f in ids]
        world = np.array([p.translation + p.rotation @ o for p, o in zip(poses, offsets)])
        expected = (world - hand._wrist_pos) @ hand._wrist_rot_t.T
        np.testing.assert_allclose(hand.positions(q, ids, offsets), expected, atol=1e-12)


def test_shipped_config_loads_and_passes_checks(retargeter):
    assert retargeter.hand.num_joints >= 6
    assert check_config(retargeter).ok, check_config(retargeter).problems


@pytest.mark.parametrize("objective", ["vector", "position", "dexpilot"])
def test_fk_keypoints_retarget_recovers_joints_and_fingertips(retargeter, objective):
    """The shipped (vector) objective recovers the generating joint angles on every hand; the
    position and DexPilot objectives see fingertips only, which leave a finger with more joints
    than a tip position fixes (Allegro, LEAP, Shadow: 0.2-0.8 rad apart) undetermined, so
    there only the fingertips are checked."""
    rng = np.random.default_rng(abs(hash(retargeter.options.urdf + objective)) % 2**32)
    solver = Retargeter(load_options(shipped_config(*_stem(retargeter)),
                                     {"scaling": 1.0, "objective": objective,
                                      "pinch_threshold": 1e-3}))
    hand = solver.hand
    errors, joint_errors = [], []
    for _ in range(3):
        target = _target_q(solver, rng)
        rot, shift = _rotation(rng), rng.normal(0.0, 0.3, 3)
        solver.reset()
        for s in np.linspace(0.0, 1.0, 8):  # warm-started approach, as when tracking
            q = (1 - s) * hand.neutral() + s * target
            result = solver.process(solver.robot_keypoints(q) @ rot.T + shift)
        truth = hand.positions(target, solver._tip_ids)
        errors.append(np.linalg.norm(result.fingertips - truth, axis=1).max())
        joint_errors.append(np.abs(result.qpos - target).max())
        assert np.allclose(result.wrist_pose[:3, :3], rot, atol=1e-6)
    assert np.median(errors) < 0.003, f"fingertip errors (m): {errors}"
    if objective == "vector":
        assert max(joint_errors) < 0.05, f"joint errors (rad): {joint_errors}"


def _stem(retargeter):
    hand = next(h for h in SHIPPED_HANDS if f"/{h}_hand/" in retargeter.options.urdf)
    return hand, retargeter.options.side


def test_limits_incl_mimic_always_respected(retargeter):
    rng = np.random.default_rng(1)
    hand = retargeter.hand
    lower, upper = hand.full_limits()
    base = retargeter.robot_keypoints(hand.neutral())
    retargeter.reset()
    for trial in range(25):
        noise = rng.normal(0.0, 0.05 if trial % 2 else 0.2, base.shape)
        keypoints = base * rng.uniform(0.3, 3.0) + noise  # random, mis-scaled, extreme
        result = retargeter.process(keypoints)
        if not result.valid:
            continue
        assert np.all(result.qpos >= hand.lower - 1e-12) and np.all(result.qpos <= hand.upper + 1e-12)
        assert np.all(result.full_qpos >= lower - 1e-9), result.full_qpos - lower
        assert np.all(result.full_qpos <= upper + 1e-9), upper - result.full_qpos


def test_mimic_joints_are_dependent():
    retargeter = Retargeter(load_options(shipped_config("ability", "right")))
    hand = retargeter.hand
    assert set(hand.mimic) == {"index_q2", "middle_q2", "ring_q2", "pinky_q2"}
    # index_q2 = 1.0585 q1 + 0.7235 must stay <= 2.6586: q1's bound shrinks to about 1.829.
    q1 = hand.joint_names.index("index_q1")
    assert hand.upper[q1] == pytest.approx((2.6586 - 0.72349796) / 1.05851325, abs=1e-3)


@pytest.mark.parametrize("bad", [np.full((21, 3), np.nan), np.zeros((20, 3)), np.zeros((21, 2)),
                                 [[0.0]] * 21])
def test_bad_keypoints_raise_value_error(bad):
    retargeter = Retargeter(load_options(shipped_config("inspire", "right")))
    with pytest.raises(ValueError, match="keypoints"):
        retargeter.process(np.asarray(bad))


@pytest.mark.parametrize("override,word", [({"side": "middle"}, "side"),
                                           ({"smoothing_alpha": 0.0}, "smoothing_alpha"),
                                           ({"objective": "magic"}, "objective"),
                                           ({"vector_pairs": [[0, 19]]}, "vector_pairs"),
                                           ({"colour": 1}, "colour"),
                                           ({"arm_from_camera": [[1, 0], [0, 1]]},
                                            "arm_from_camera"),
                                           ({"palm_offsets": {8: [0.0, 0.0, 0.01]}},
                                            "palm_offsets"),
                                           ({"palm_offsets": {5: [0.0, 0.01]}}, "palm_offsets"),
                                           ({"palm_offsets": {5: [0.0, 0.0, 0.01]},
                                             "vector_pairs": [[0, 5]], "vector_weights": []},
                                            "palm_offsets")])
def test_bad_options_name_the_value(override, word):
    with pytest.raises((ValueError, TypeError), match=word):
        load_options(shipped_config("leap", "right"), override)


def test_missing_link_is_a_clear_error():
    options = load_options(shipped_config("leap", "right"),
                           {"fingertip_links": ["no_such_tip"]})
    with pytest.raises(ValueError, match="no_such_tip"):
        Retargeter(options)


def test_check_flags_wrong_side_and_rotation():
    path = shipped_config("shadow", "right")
    swapped = check_config(Retargeter(load_options(path, {"side": "left"})))
    assert any("curl away" in p for p in swapped.problems)
    rotated = check_config(Retargeter(load_options(path, {"wrist_rotation_xyzw": [1, 0, 0, 0]})))
    assert any("MediaPipe convention" in p for p in rotated.problems)


def test_bimanual_routes_by_handedness_and_track():
    left = Retargeter(load_options(shipped_config("inspire", "left")))
    right = Retargeter(load_options(shipped_config("inspire", "right")))
    both = BimanualRetargeter(left=left, right=right)
    kp_l = left.robot_keypoints(left.hand.neutral())
    kp_r = right.robot_keypoints(right.hand.neutral())
    out = both.process([HandObservation(kp_r, "right", 7), HandObservation(kp_l, "left", 3)])
    assert set(out.hands) == {"left", "right"} and all(r.valid for r in out.hands.values())
    assert both.process([HandObservation(kp_r, "right", 8)]).hands.keys() == {"right"}
    with pytest.raises(ValueError, match="side"):
        BimanualRetargeter(left=right)


def test_hand_size_calibration_recovers_ratio():
    retargeter = Retargeter(load_options(shipped_config("allegro", "right")))
    calibrator = HandSizeCalibrator(retargeter)
    rng = np.random.default_rng(2)
    for _ in range(12):
        human = retargeter.robot_keypoints(_target_q(retargeter, rng)) / 1.3
        result = calibrator.process(human)
    assert result.valid and result.scaling == pytest.approx(1.3, rel=1e-3)


def test_smoothing_lags_but_stays_in_limits():
    path = shipped_config("leap", "right")
    raw = Retargeter(load_options(path, {"scaling": 1.0}))
    smooth = Retargeter(load_options(path, {"scaling": 1.0, "smoothing_alpha": 0.3}))
    a, b = raw.hand.neutral(), _target_q(raw, np.random.default_rng(3))
    for q in (a, b):
        kp = raw.robot_keypoints(q)
        r_raw, r_smooth = raw.process(kp), smooth.process(kp)
    assert np.abs(r_smooth.qpos - r_raw.qpos).max() > 1e-3
    assert np.all(r_smooth.qpos >= raw.hand.lower) and np.all(r_smooth.qpos <= raw.hand.upper)


def test_user_urdf_relative_to_yaml(tmp_path):
    import shutil
    src = shipped_config("inspire", "right")
    urdf = Retargeter(load_options(src)).hand.urdf_path
    shutil.copy(urdf, tmp_path / "my_hand.urdf")
    text = src.read_text().replace(load_options(src).urdf, "my_hand.urdf")
    (tmp_path / "my_hand.yaml").write_text(text)
    assert isinstance(load_options(tmp_path / "my_hand.yaml"), RetargetingOptions)
    assert Retargeter(load_options(tmp_path / "my_hand.yaml")).hand.num_joints == 6


@pytest.mark.parametrize("hand", ["ability", "shadow"])  # left URDFs = mirrored right ones
def test_left_hand_on_mirrored_keypoints_matches_right_hand(hand):
    """Left = right mirrored (camera x negated): same joints, same cost, frame after frame.

    The keypoints are off the robot's reach (scaled, noisy), so every term pulls: a handedness
    mistake in the wrist frame or the robot's palm rotation changes the solution.
    """
    right = Retargeter(load_options(shipped_config(hand, "right")))
    left = Retargeter(load_options(shipped_config(hand, "left")))
    assert left.hand.joint_names == right.hand.joint_names
    rng = np.random.default_rng(5)
    rot = _rotation(rng)
    start, end = (right.robot_keypoints(_target_q(right, rng)) for _ in range(2))
    mirror = np.array([-1.0, 1.0, 1.0])
    for s in np.linspace(0.0, 1.0, 6):
        human = ((1 - s) * start + s * end) @ rot.T / 1.1 + rng.normal(0.0, 0.004, (21, 3))
        human += [0.05, -0.02, 0.5]
        got_r, got_l = right.process(human), left.process(human * mirror)
        np.testing.assert_allclose(got_l.qpos, got_r.qpos, atol=1e-6)
        assert got_l.cost == pytest.approx(got_r.cost, rel=1e-6, abs=1e-12)
        assert got_r.cost > 1e-5  # really off the robot's reach


def _angle_deg(a, b):
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0))))


def test_leap_knuckles_on_the_finger_mid_plane_give_mirrored_palm_frames():
    """LEAP's knuckle links sit 14.5 mm beside the finger (right: thumb side, left: far side);
    ``palm_offsets`` moves the knuckles onto the line of the fingertips, which brings the left
    palm frame to within 8° of the mirrored right one (20° without)."""
    frames = {}
    for side in ("right", "left"):
        retargeter = Retargeter(load_options(shipped_config("leap", side)))
        keypoints = retargeter.robot_keypoints(retargeter.hand.clip(np.zeros(16)))
        np.testing.assert_allclose(keypoints[[5, 9, 13], 1], keypoints[[8, 12, 16], 1],
                                   atol=2e-3)  # q = 0: straight fingers along the wrist z axis
        frames[side] = retargeter.wrist_rotation
    mirror = np.diag([1.0, -1.0, 1.0])  # the thumbs are at +y / -y of the wrist link
    assert _angle_deg(mirror @ frames["right"] @ mirror, frames["left"]) < 8.0
