"""Metric functions of the retargeting benchmark (bench/retargeting_metrics.py) and its input
helpers (bench/bench_retargeting.py); plain numpy, no peers needed."""
import numpy as np
import pytest

from bench.retargeting_metrics import (flip_rate, frame_from_059, limit_violations,
                                       rms_jerk, rotation_angles_deg, vector_error)


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_vector_error_is_mean_distance_per_frame():
    robot = np.zeros((2, 3, 3))
    target = np.zeros((2, 3, 3))
    target[0, :, 0] = [0.003, 0.0, 0.0]  # frame 0: one vector 3 mm off
    target[1, :, 1] = [0.003, 0.003, 0.003]  # frame 1: all three
    np.testing.assert_allclose(vector_error(robot, target), [0.001, 0.003])


def test_limit_violations_fraction_and_worst_excess():
    lower, upper = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    q = np.array([[0.5, 0.0], [1.2, 0.0], [0.5, -1.05], [1.0, 1.0]])
    fraction, worst = limit_violations(q, lower, upper)
    assert fraction == pytest.approx(0.5)  # on the bound is not a violation
    assert worst == pytest.approx(0.2)


def test_rms_jerk_zero_for_quadratic_and_known_for_cubic():
    t = np.arange(20)[:, None] / 30.0
    assert rms_jerk(3.0 * t ** 2 + t, 30.0) == pytest.approx(0.0, abs=1e-6)
    assert rms_jerk(t ** 3, 30.0) == pytest.approx(6.0, rel=1e-6)  # d³(t³)/dt³ = 6


def test_flip_rate_counts_large_jumps_only():
    rotations = np.array([_rot_z(a) for a in (0.0, 0.05, 0.1, np.pi + 0.1, 0.15, 0.2)])
    np.testing.assert_allclose(rotation_angles_deg(rotations)[:2], [np.degrees(0.05)] * 2)
    assert flip_rate(rotations, 60.0) == pytest.approx(2 / 5)


def test_frame_from_059_is_a_right_handed_frame_and_flips_when_collinear():
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 0.05, (21, 3))
    frame = frame_from_059(points)
    np.testing.assert_allclose(frame.T @ frame, np.eye(3), atol=1e-12)
    assert np.linalg.det(frame) == pytest.approx(1.0)
    # x runs from the middle knuckle (9) towards the wrist (0)
    x_dir = points[0] - points[9]
    assert frame[:, 0] @ x_dir > 0.9 * np.linalg.norm(x_dir - (x_dir @ frame[:, 1]) * frame[:, 1])
    # 0, 5, 9 almost on a line: a 0.1 mm wobble of 5 across it swings the plane by ~90°
    line = np.zeros((21, 3))
    line[5], line[9] = [0.08, 0.0001, 0.0], [0.09, 0.0, 0.0]
    tilted = line.copy()
    tilted[5] = [0.08, 0.0, 0.0001]
    angle = rotation_angles_deg(np.array([frame_from_059(line), frame_from_059(tilted)]))[0]
    assert angle > 60.0


def test_mirror_to_left_negates_x_only():
    from bench.bench_retargeting import mirror_to_left
    points = np.arange(2 * 21 * 3, dtype=float).reshape(2, 21, 3)
    mirrored = mirror_to_left(points)
    np.testing.assert_array_equal(mirrored[..., 0], -points[..., 0])
    np.testing.assert_array_equal(mirrored[..., 1:], points[..., 1:])


def test_urdf_mirror_mismatch_zero_for_mirrored_urdfs_only():
    pytest.importorskip("pinocchio")
    pytest.importorskip("dexi_rs")
    from bench.bench_retargeting import mirror_mismatches
    mismatch = mirror_mismatches(["ability", "leap"])
    assert mismatch["ability"] < 1e-9  # the dexi-rs left URDF is the right one mirrored
    assert mismatch["leap"] > 0.02  # its left fingers sit ~3 cm further from the thumb


def test_parse_overrides_reads_yaml_values_and_names_bad_items():
    from bench.bench_retargeting import parse_overrides
    assert parse_overrides(["huber_delta=0.02", "warm_start=previous"]) == {
        "huber_delta": 0.02, "warm_start": "previous"}
    with pytest.raises(ValueError, match="huber_delta"):
        parse_overrides(["huber_delta"])
