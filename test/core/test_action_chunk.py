"""ActionChunker: exact on constant velocity, better than hold on sinusoids, limits, proper
rotations, continuous hold/ramp when the hand is lost and rate-limited resume."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hand_perception.core.action_chunk import ActionChunker, ActionChunkOptions, \
    prediction_errors

LOWER = np.array([-1.0, -0.5, 0.0])
UPPER = np.array([1.0, 1.5, 2.0])


def _pose(rotation: Rotation, translation) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = rotation.as_matrix()
    pose[:3, 3] = translation
    return pose


def _jittered_stamps(count, rate=30.0, seed=0):
    rng = np.random.default_rng(seed)
    return 10.0 + np.arange(count) / rate + rng.uniform(-0.005, 0.005, count)


def test_constant_velocity_is_exact_with_irregular_stamps():
    options = ActionChunkOptions(horizon=8, dt=0.05, damping_s=0.0, latency_compensation_s=0.07)
    chunker = ActionChunker(options, np.full(3, -10.0), np.full(3, 10.0))
    q0, velocity = np.array([0.1, -0.2, 0.3]), np.array([0.5, -1.0, 0.25])
    omega, linear = np.array([0.3, -0.8, 1.1]), np.array([0.2, 0.0, -0.1])
    start = Rotation.from_rotvec([0.2, 0.1, -0.3])
    for stamp in _jittered_stamps(12):
        t = stamp - 10.0
        chunk = chunker.process(stamp, q0 + velocity * t,
                                _pose(start * Rotation.from_rotvec(omega * t), linear * t))
    lead = chunk.times_s - 10.0
    np.testing.assert_allclose(chunk.times_s - chunk.times_s[0], 0.05 * np.arange(8), atol=1e-12)
    np.testing.assert_allclose(chunk.actions, q0 + lead[:, None] * velocity, atol=1e-9)
    for pose, t in zip(chunk.wrist_poses, lead):
        expected = _pose(start * Rotation.from_rotvec(omega * t), linear * t)
        np.testing.assert_allclose(pose, expected, atol=1e-9)
    assert chunk.state == "tracking" and chunk.actions.shape == (8, 3)


def test_beats_zero_order_hold_on_sinusoids():
    stamps = _jittered_stamps(300)
    t = stamps[:, None] - 10.0
    joints = 0.6 * np.sin(2 * np.pi * np.array([0.4, 0.7, 1.0]) * t + np.array([0.0, 1.0, 2.0]))
    base = dict(horizon=10, dt=1 / 30, latency_compensation_s=0.0)
    hold = prediction_errors(stamps, joints, ActionChunkOptions(predictor="hold", **base))
    moving = prediction_errors(stamps, joints, ActionChunkOptions(history=4, **base))
    assert hold[0] == pytest.approx(0.0) and moving[0] == pytest.approx(0.0)
    assert np.all(moving[1:] < hold[1:]), (moving, hold)
    assert np.all(moving[1:5] < 0.6 * hold[1:5]), (moving, hold)  # up to 133 ms ahead


def test_damping_bounds_the_extrapolation():
    options = ActionChunkOptions(horizon=50, dt=0.1, damping_s=0.2, latency_compensation_s=0.0)
    chunker = ActionChunker(options, np.full(1, -100.0), np.full(1, 100.0))
    for stamp in (0.0, 0.1, 0.2):
        chunk = chunker.process(stamp, [stamp])  # 1 unit/s
    assert chunk.actions[-1, 0] < 0.2 + 0.2 + 1e-9  # x_last + v * T, never more
    assert np.all(np.diff(chunk.actions[:, 0]) >= 0)


def test_predictions_stay_inside_joint_limits():
    chunker = ActionChunker(ActionChunkOptions(horizon=20, damping_s=0.0), LOWER, UPPER)
    for i in range(6):  # fast motion towards / beyond every limit
        chunk = chunker.process(0.033 * i, np.clip(np.array([0.9, -0.4, 1.9]) + 0.3 * i *
                                                   np.array([1.0, -1.0, 1.0]), LOWER, UPPER))
        assert np.all(chunk.actions >= LOWER) and np.all(chunk.actions <= UPPER)
    assert np.any(chunk.actions == UPPER) and np.any(chunk.actions == LOWER)


def test_wrist_rotations_stay_proper_under_fast_noisy_rotation():
    rng = np.random.default_rng(4)
    chunker = ActionChunker(ActionChunkOptions(horizon=30, damping_s=0.0), LOWER, UPPER)
    for i in range(20):
        rotation = Rotation.from_rotvec([6.0 * 0.033 * i, 0.5, 0.0]) * Rotation.from_rotvec(
            rng.normal(0.0, 0.05, 3))
        chunk = chunker.process(0.033 * i, np.zeros(3), _pose(rotation, rng.normal(size=3)))
    rotations = chunk.wrist_poses[:, :3, :3]
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1),
                               np.broadcast_to(np.eye(3), rotations.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    quaternions = Rotation.from_matrix(rotations).as_quat()
    np.testing.assert_allclose(np.linalg.norm(quaternions, axis=1), 1.0, atol=1e-12)


def _track_then_lose(chunker, seconds_lost=3.0, rate=30.0):
    for i in range(10):
        chunk = chunker.process(i / rate, np.array([0.5, 1.2, 1.5]) + 0.01 * i)
    last_first_action = chunk.actions[0].copy()
    firsts, states, chunks = [], [], []
    for i in range(10, 10 + int(seconds_lost * rate)):
        chunk = chunker.process(i / rate, None)
        firsts.append(chunk.actions[0])
        states.append(chunk.state)
        chunks.append(chunk)
    return last_first_action, np.array(firsts), states, chunks


def test_lost_hand_holds_then_ramps_without_jumps():
    options = ActionChunkOptions(hold_s=0.5, ramp_s=1.0, latency_compensation_s=0.05)
    chunker = ActionChunker(options, LOWER, UPPER, safe_pose=np.array([0.0, 0.0, 0.0]))
    last, firsts, states, chunks = _track_then_lose(chunker)
    assert states[0] == "holding" and "ramping" in states and states[-1] == "safe"
    assert states.index("ramping") > 5  # held for a while first
    # The hold starts where the last command trajectory was (one frame on), not at a new value.
    assert np.abs(firsts[0] - last).max() < 0.01 * 2 + 1e-9
    np.testing.assert_allclose(firsts[-1], chunker.safe_pose, atol=1e-12)
    steps = np.abs(np.diff(np.vstack([last, firsts]), axis=0)).max(axis=0)
    peak = np.pi / 2 * np.abs(firsts[0] - chunker.safe_pose) / options.ramp_s / 30.0
    assert np.all(steps <= peak * 1.01 + 0.021), (steps, peak)
    span = np.abs(firsts[0] - chunker.safe_pose).max()
    for chunk in chunks:  # within every chunk as well
        assert np.abs(np.diff(chunk.actions, axis=0)).max() <= np.pi / 2 * span * options.dt + 1e-9


def test_resume_after_loss_is_rate_limited_then_tracks():
    options = ActionChunkOptions(hold_s=0.1, ramp_s=0.5, resume_speed=1.0, damping_s=0.0)
    chunker = ActionChunker(options, LOWER, UPPER)
    _, firsts, _, _ = _track_then_lose(chunker, seconds_lost=1.0)
    previous = firsts[-1]
    target = np.array([0.9, 1.4, 1.9])  # far from the safe pose
    states = []
    for i in range(40, 100):
        chunk = chunker.process(i / 30.0, target)
        step = np.abs(chunk.actions[0] - previous).max()
        assert step <= 1.0 / 30.0 + 1e-9
        assert np.abs(np.diff(chunk.actions, axis=0)).max() <= 1.0 * options.dt + 1e-9
        previous = chunk.actions[0]
        states.append(chunk.state)
    assert states[0] == "resuming" and states[-1] == "tracking"
    np.testing.assert_allclose(chunk.actions, np.tile(target, (options.horizon, 1)), atol=1e-12)


def test_new_track_hands_over_smoothly():
    options = ActionChunkOptions(resume_speed=0.5)
    chunker = ActionChunker(options, LOWER, UPPER)
    for i in range(5):
        first = chunker.process(i / 30.0, np.zeros(3)).actions[0]
    chunk = chunker.process(5 / 30.0, np.array([1.0, 1.0, 1.0]), new_track=True)
    assert chunk.state == "resuming"
    assert np.abs(chunk.actions[0] - first).max() <= 0.5 / 30.0 + 1e-9


def test_wrist_resume_is_rate_limited():
    options = ActionChunkOptions(hold_s=0.0, ramp_s=0.1, resume_linear_speed=0.3,
                                 resume_angular_speed=1.0)
    chunker = ActionChunker(options, LOWER, UPPER)
    chunker.process(0.0, np.zeros(3), _pose(Rotation.identity(), [0.0, 0.0, 0.0]))
    held = chunker.process(0.5, None).wrist_poses[0]
    far = _pose(Rotation.from_rotvec([0.0, 0.0, 2.0]), [1.0, 0.0, 0.0])
    chunk = chunker.process(0.533, np.zeros(3), far)
    shift = np.linalg.norm(chunk.wrist_poses[:, :3, 3] - held[:3, 3], axis=1)
    angle = np.linalg.norm(Rotation.from_matrix(chunk.wrist_poses[:, :3, :3]).as_rotvec(), axis=1)
    budget = 0.033 * (1 + np.arange(options.horizon))
    assert np.all(shift <= 0.3 * budget + 1e-9) and np.all(angle <= 1.0 * budget + 1e-9)


def test_out_of_order_stamp_raises_and_keeps_state():
    chunker = ActionChunker(ActionChunkOptions(), LOWER, UPPER)
    twin = ActionChunker(ActionChunkOptions(), LOWER, UPPER)
    for stamp in (0.0, 0.033):
        chunker.process(stamp, np.array([0.1, 0.2, 0.3]) + stamp)
        twin.process(stamp, np.array([0.1, 0.2, 0.3]) + stamp)
    for bad in (0.033, 0.01, float("nan")):
        with pytest.raises(ValueError, match="stamp_s"):
            chunker.process(bad, np.zeros(3))
    with pytest.raises(ValueError, match="joints"):
        chunker.process(0.05, np.array([0.0, np.nan, 0.0]))
    np.testing.assert_array_equal(chunker.process(0.066, np.ones(3) * 0.4).actions,
                                  twin.process(0.066, np.ones(3) * 0.4).actions)


def test_no_observation_yet_gives_an_empty_result():
    chunk = ActionChunker(ActionChunkOptions(), LOWER, UPPER).process(1.0, None)
    assert chunk.empty and chunk.state == "idle"


@pytest.mark.parametrize("field,value", [("horizon", 0), ("dt", 0.0), ("history", 1),
                                         ("predictor", "magic"), ("ramp_s", -1.0),
                                         ("latency_compensation_s", float("nan"))])
def test_bad_options_name_the_value(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        ActionChunkOptions(**{field: value})


def test_safe_pose_outside_limits_is_rejected():
    with pytest.raises(ValueError, match="safe_pose"):
        ActionChunker(ActionChunkOptions(), LOWER, UPPER, safe_pose=np.array([0.0, 0.0, 5.0]))
