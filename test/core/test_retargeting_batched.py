"""The batched torch path agrees with the single-frame solver and respects the same limits."""
import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="retargeting needs pinocchio: pip install 'pin==4.1.0'")
pytest.importorskip("dexi_rs", reason="shipped hands need pip install 'dexi-rs==0.4.1'")
torch = pytest.importorskip("torch", reason="the batched path needs pip install 'torch==2.13.0'")

from hand_perception.core.retargeting import Retargeter, load_options, shipped_config  # noqa: E402
from hand_perception.core.retargeting.batched import BatchedRetargeter  # noqa: E402
from hand_perception.core.retargeting.batched_fk import TorchKinematics  # noqa: E402
from hand_perception.core.retargeting.bench_solve import camera_keypoints, \
    smooth_trajectory  # noqa: E402
from hand_perception.core.retargeting.kinematics import PointJacobians, \
    kinematic_tree  # noqa: E402

HANDS = ["allegro", "leap", "shadow", "inspire", "ability"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("hand", HANDS)
def test_torch_kinematics_match_pinocchio(hand):
    single = Retargeter(load_options(shipped_config(hand, "left")))
    ids = single._solver.frame_ids
    fk = TorchKinematics(kinematic_tree(single.hand, ids), torch.device("cpu"), torch.float64)
    reference = PointJacobians(single.hand, ids)
    rng = np.random.default_rng(0)
    span = single.hand.upper - single.hand.lower
    q = single.hand.lower + span * rng.uniform(size=(4, single.hand.num_joints))
    points, jac = fk.evaluate(torch.as_tensor(q))
    for row in range(len(q)):
        p_ref, j_ref = reference.evaluate(q[row])
        np.testing.assert_allclose(points[row].numpy(), p_ref, atol=1e-12)
        np.testing.assert_allclose(jac[row].numpy(), j_ref, atol=1e-12)
    # and the Jacobian is the derivative of the points (finite differences)
    step = 1e-6
    dq = np.zeros_like(q[0])
    dq[0] = step
    moved = fk.points(torch.as_tensor(q[:1] + dq)) - fk.points(torch.as_tensor(q[:1]))
    np.testing.assert_allclose(moved[0].numpy() / step, jac[0, :, :, 0].numpy(), atol=1e-5)


@pytest.mark.parametrize("hand,objective", [("allegro", "vector"), ("ability", "vector"),
                                            ("shadow", "position"), ("inspire", "dexpilot"),
                                            ("leap", "vector")])
def test_batched_agrees_with_single_frame(hand, objective):
    options = load_options(shipped_config(hand, "right"), {"scaling": 1.0,
                                                           "objective": objective})
    single = Retargeter(options)
    keypoints = camera_keypoints(single, smooth_trajectory(single, 24, seed=3))
    batched = BatchedRetargeter(options).process(keypoints)
    agree = []
    for row, kp in enumerate(keypoints):
        single.reset()  # the batched path solves each frame from the cold-start seeds
        result = single.process(kp)
        agree.append(np.linalg.norm(result.fingertips - batched.fingertips[row], axis=1).max())
        np.testing.assert_allclose(batched.wrist_pose[row], result.wrist_pose, atol=1e-9)
    assert batched.valid.all()
    assert np.median(agree) < 2e-4 and np.percentile(agree, 90) < 2e-3, agree


def test_batched_respects_limits_incl_mimic_on_wild_input():
    single = Retargeter(load_options(shipped_config("ability", "right")))
    hand = single.hand
    base = single.robot_keypoints(hand.neutral())
    rng = np.random.default_rng(4)
    keypoints = base * rng.uniform(0.3, 3.0, (40, 1, 1)) + rng.normal(0.0, 0.1, (40, 21, 3))
    result = BatchedRetargeter(single.options, max_iterations=15).process(keypoints)
    lower, upper = hand.full_limits()
    assert result.qpos.shape == (40, hand.num_joints)
    assert np.all(result.qpos >= hand.lower - 1e-12) and np.all(result.qpos <= hand.upper + 1e-12)
    assert np.all(result.full_qpos >= lower - 1e-9) and np.all(result.full_qpos <= upper + 1e-9)
    assert len(result.full_joint_names) == result.full_qpos.shape[1] > hand.num_joints


def test_batched_float32_and_chunks_match_float64():
    options = load_options(shipped_config("inspire", "left"), {"scaling": 1.0})
    single = Retargeter(options)
    keypoints = camera_keypoints(single, smooth_trajectory(single, 30, seed=5))
    ref = BatchedRetargeter(options).process(keypoints)
    small = BatchedRetargeter(options, dtype=torch.float32, chunk_size=7).process(keypoints)
    assert np.abs(small.fingertips - ref.fingertips).max() < 5e-4


def test_batched_rejects_bad_input():
    batched = BatchedRetargeter(load_options(shipped_config("inspire", "right")))
    with pytest.raises(ValueError, match="shape"):
        batched.process(np.zeros((3, 20, 3)))
    bad = np.zeros((2, 21, 3))
    bad[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match="frame"):
        batched.process(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_batched_on_cuda_matches_cpu():
    options = load_options(shipped_config("allegro", "right"), {"scaling": 1.0})
    single = Retargeter(options)
    keypoints = camera_keypoints(single, smooth_trajectory(single, 64, seed=6))
    cpu = BatchedRetargeter(options).process(keypoints)
    gpu = BatchedRetargeter(options, device="cuda").process(keypoints)
    assert np.abs(gpu.fingertips - cpu.fingertips).max() < 1e-3


def test_one_seed_with_a_neighbour_pass_tracks_a_sequence():
    options = load_options(shipped_config("allegro", "left"), {"scaling": 1.0})
    single = Retargeter(options)
    traj = smooth_trajectory(single, 40, seed=8)
    keypoints = camera_keypoints(single, traj)
    truth = np.array([single.hand.positions(q, single._tip_ids) for q in traj])
    result = BatchedRetargeter(options, seeds=1, neighbour_passes=1).process(keypoints)
    assert np.linalg.norm(result.fingertips - truth, axis=-1).max() < 1e-3
    with pytest.raises(ValueError, match="seeds"):
        BatchedRetargeter(options, seeds=0)
