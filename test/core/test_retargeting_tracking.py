"""Tracking behaviour of the single-frame retargeter: fast motion, output filters, DexPilot."""
import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="retargeting needs pinocchio: pip install 'pin==4.1.0'")
pytest.importorskip("dexi_rs", reason="shipped hands need pip install 'dexi-rs==0.4.1'")

from hand_perception.core.retargeting import Retargeter, load_options, shipped_config  # noqa: E402
from hand_perception.core.retargeting.bench_solve import camera_keypoints, \
    smooth_trajectory  # noqa: E402


def _tip_errors(retargeter, keypoints, truth, stamps=None):
    retargeter.reset()
    out = []
    for i, kp in enumerate(keypoints):
        result = retargeter.process(kp, None if stamps is None else stamps[i])
        out.append(np.linalg.norm(result.fingertips - truth[i], axis=1).max())
    return np.array(out)


@pytest.mark.parametrize("side", ["left", "right"])
def test_leap_keeps_track_under_fast_motion(side):
    # 0.3-1 Hz sinusoids over 80 % of every joint's range, at 15 Hz: up to ~0.4 rad per frame.
    retargeter = Retargeter(load_options(shipped_config("leap", side), {"scaling": 1.0}))
    traj = smooth_trajectory(retargeter, 150, fps=15.0, seed=1)
    keypoints = camera_keypoints(retargeter, traj, fps=15.0)
    truth = [retargeter.hand.positions(q, retargeter._tip_ids) for q in traj]
    errors = _tip_errors(retargeter, keypoints, truth)
    assert np.percentile(errors, 99) < 0.002, f"p99 fingertip error {errors.max() * 1e3:.1f} mm"


def test_one_euro_lags_less_than_exponential_and_reports_latency():
    path = shipped_config("allegro", "right")
    base = {"scaling": 1.0}
    raw = Retargeter(load_options(path, base))
    traj = smooth_trajectory(raw, 90, seed=2)
    keypoints = camera_keypoints(raw, traj)
    truth = [raw.hand.positions(q, raw._tip_ids) for q in traj]
    exp = Retargeter(load_options(path, dict(base, smoothing_alpha=0.5)))
    euro = Retargeter(load_options(path, dict(base, smoothing_filter="one_euro")))
    err_raw = _tip_errors(raw, keypoints, truth)[10:].mean()
    err_exp = _tip_errors(exp, keypoints, truth)[10:].mean()
    err_euro = _tip_errors(euro, keypoints, truth)[10:].mean()
    assert err_euro - err_raw < 0.85 * (err_exp - err_raw), (err_raw, err_exp, err_euro)
    # latency: 1 / (2 pi (min_cutoff + beta |v|)), at most the resting value 1/(2 pi) s
    result = euro.process(keypoints[0])
    assert 0.0 < result.latency_s <= 1.0 / (2.0 * np.pi) + 1e-9
    assert exp.process(keypoints[1]).latency_s == pytest.approx(1.0 / 30.0)


def test_one_euro_smooths_a_still_noisy_hand_within_limits():
    path = shipped_config("allegro", "right")
    euro = Retargeter(load_options(path, {"smoothing_filter": "one_euro"}))
    raw = Retargeter(load_options(path))
    hand = raw.hand
    base = raw.robot_keypoints(hand.lower + 0.3 * (hand.upper - hand.lower)) / raw.scaling
    rng = np.random.default_rng(7)
    q_raw, q_euro = [], []
    for i in range(60):
        kp = base + rng.normal(0.0, 0.001, base.shape)
        q_raw.append(raw.process(kp, stamp_s=i / 30.0).qpos)
        result = euro.process(kp, stamp_s=i / 30.0)
        q_euro.append(result.qpos)
        assert np.all(result.qpos >= raw.hand.lower) and np.all(result.qpos <= raw.hand.upper)
    assert np.std(q_euro[20:], axis=0).mean() < 0.75 * np.std(q_raw[20:], axis=0).mean()


def test_out_of_order_stamp_raises_and_keeps_state():
    retargeter = Retargeter(load_options(shipped_config("inspire", "right"),
                                         {"smoothing_filter": "one_euro"}))
    kp = retargeter.robot_keypoints(retargeter.hand.neutral())
    first = retargeter.process(kp, stamp_s=1.0)
    with pytest.raises(ValueError, match="stamp"):
        retargeter.process(kp * 1.1, stamp_s=1.0)
    with pytest.raises(ValueError, match="stamp"):
        retargeter.process(kp, stamp_s=float("nan"))
    again = retargeter.process(kp, stamp_s=1.1)
    np.testing.assert_allclose(again.qpos, first.qpos, atol=1e-6)


def test_dexpilot_keeps_two_pinching_fingers_apart():
    path = shipped_config("allegro", "right")

    def index_middle_gap(weight):
        retargeter = Retargeter(load_options(path, {"objective": "dexpilot",
                                                    "separation_weight": weight}))
        kp = retargeter.robot_keypoints(retargeter.hand.neutral()) / retargeter.scaling
        kp[8] = kp[4] + [0.004, 0.0, 0.0]  # index and middle both pinch the thumb, 2 mm apart
        kp[12] = kp[4] + [0.004, -0.002, 0.0]
        tips = retargeter.process(kp).fingertips  # thumb, index, middle, ring
        return np.linalg.norm(tips[1] - tips[2]), np.linalg.norm(tips[0] - tips[1])

    gap_off, pinch_off = index_middle_gap(0.0)
    gap_on, pinch_on = index_middle_gap(10.0)
    assert gap_on > gap_off + 0.004, (gap_off, gap_on)
    assert pinch_on < 0.015  # still pinching the thumb


def test_constant_velocity_warm_start_needs_fewer_iterations():
    path = shipped_config("shadow", "right")
    counts = {}
    for mode in ("previous", "constant_velocity"):
        retargeter = Retargeter(load_options(path, {"scaling": 1.0, "warm_start": mode}))
        keypoints = camera_keypoints(retargeter, smooth_trajectory(retargeter, 60, seed=4))
        counts[mode] = np.mean([retargeter.process(k).iterations for k in keypoints[1:]])
    assert counts["constant_velocity"] < counts["previous"], counts


@pytest.mark.parametrize("override,word", [({"smoothing_filter": "kalman"}, "smoothing_filter"),
                                           ({"warm_start": "guess"}, "warm_start"),
                                           ({"one_euro_min_cutoff": 0.0}, "one_euro_min_cutoff"),
                                           ({"vector_weights": [1.0]}, "vector_weights"),
                                           ({"cold_start_seeds": 0}, "cold_start_seeds")])
def test_new_options_are_validated(override, word):
    with pytest.raises((ValueError, TypeError), match=word):
        load_options(shipped_config("leap", "right"), override)
