"""Tests of metric 3D lifting on rendered scenes (depth with holes/occluder, monocular)."""
import numpy as np
import pytest

from hand_perception.core.eval_lifting import LiftingEvalOptions, evaluate, format_table
from hand_perception.core.lifting import (HandLifter, LiftingOptions, LiftingResult,
                                          _row_median, consensus_depth, fit_translation,
                                          normalised_rays)
from hand_perception.core.options import options_from_mapping
from hand_perception.core.synthetic import default_intrinsics, project, random_hand_scene

DISTANCES = (0.3, 0.6, 1.2)


def _err_mm(result, scene):
    return float(np.mean(np.linalg.norm(result.points_camera - scene.points_camera, axis=1)) * 1e3)


@pytest.fixture(scope="module")
def scenes():
    rng = np.random.default_rng(42)
    return {d: [random_hand_scene(d, rng, hole_fraction=0.1, occluder=True) for _ in range(3)]
            for d in DISTANCES}


def test_monocular_exact_without_noise():
    rng = np.random.default_rng(1)
    scene = random_hand_scene(0.7, rng, kp_noise_px=0.0, world_noise_m=0.0, depth_noise=False)
    res = HandLifter().process(scene.keypoints_2d, scene.world_keypoints, scene.K)
    assert res.mode == "monocular" and res.valid.all()
    assert res.points_camera.dtype == np.float32 and res.points_camera.shape == (21, 3)
    assert _err_mm(res, scene) < 0.5
    assert res.reprojection_rms_px < 0.05


def test_gauss_newton_improves_on_linear_start():
    rng = np.random.default_rng(2)
    scene = random_hand_scene(1.0, rng, kp_noise_px=2.0, world_noise_m=0.003)
    rays = normalised_rays(scene.keypoints_2d.astype(float), scene.K)
    world = scene.world_keypoints.astype(float)
    _, res0 = fit_translation(world, rays, np.ones(21), 0)
    _, res5 = fit_translation(world, rays, np.ones(21), 5)
    assert np.sum(res5 ** 2) < np.sum(res0 ** 2)


@pytest.mark.parametrize("distance", DISTANCES)
def test_monocular_error_few_percent_of_distance(scenes, distance):
    errs = [_err_mm(HandLifter().process(s.keypoints_2d, s.world_keypoints, s.K), s)
            for s in scenes[distance]]
    assert np.mean(errs) < 0.04 * distance * 1e3


@pytest.mark.parametrize("distance", DISTANCES)
def test_depth_with_holes_and_occluder_is_accurate(scenes, distance):
    lifter = HandLifter()
    for scene in scenes[distance]:
        res = lifter.process(scene.keypoints_2d, scene.world_keypoints, scene.K, scene.depth)
        assert res.mode == "depth" and res.valid.all()
        assert _err_mm(res, scene) < 15.0
        # The occluder must not pull the hand forward: the root depth stays within 1 cm.
        true_centre = scene.points_camera.mean(0)
        assert abs(res.translation_m[2] - true_centre[2]) < 0.01
        assert not res.measured[scene.occluded].any()  # occluded joints fell back to the shape
        seen = scene.occluded & np.isfinite(res.depth_residual_m)
        assert np.all(res.depth_residual_m[seen] < -0.02)  # flags the occluder for the tracker


def test_naive_per_joint_depth_fails_on_the_same_scenes(scenes):
    """The scenes are hard: a plain per-joint window median is far off, so the bound above means
    something."""
    lifter = HandLifter()
    errs = []
    for scene in scenes[0.6]:
        med, _ = _row_median(lifter.depth_windows(scene.keypoints_2d.astype(float), scene.depth))
        naive = normalised_rays(scene.keypoints_2d.astype(float), scene.K) * (med + 0.008)[:, None]
        errs.append(np.nanmean(np.linalg.norm(naive - scene.points_camera, axis=1)) * 1e3)
    assert np.mean(errs) > 15.0


def test_uint16_millimetre_depth_matches_float_metres():
    rng = np.random.default_rng(3)
    scene = random_hand_scene(0.5, rng, hole_fraction=0.1)
    mm = np.nan_to_num(scene.depth * 1000.0, nan=0.0).round().astype(np.uint16)
    lifter = HandLifter()
    res_f = lifter.process(scene.keypoints_2d, scene.world_keypoints, scene.K, scene.depth)
    res_u = lifter.process(scene.keypoints_2d, scene.world_keypoints, scene.K, mm)
    assert res_u.mode == "depth"
    assert np.max(np.abs(res_f.points_camera - res_u.points_camera)) < 0.002


def test_all_nan_depth_falls_back_to_monocular():
    rng = np.random.default_rng(4)
    scene = random_hand_scene(0.5, rng)
    for hole in (np.full_like(scene.depth, np.nan), np.zeros((480, 640), dtype=np.uint16)):
        res = HandLifter().process(scene.keypoints_2d, scene.world_keypoints, scene.K, hole)
        assert res.mode == "monocular" and not res.measured.any()
        assert _err_mm(res, scene) < 0.04 * 500


def test_keypoints_outside_image_and_nan_joints():
    rng = np.random.default_rng(5)
    scene = random_hand_scene(0.5, rng)
    kp = scene.keypoints_2d.copy()
    kp[8] = (-50.0, -50.0)  # outside the image: no depth samples there
    kp[12] = np.nan
    res = HandLifter().process(kp, scene.world_keypoints, scene.K, scene.depth)
    assert res.mode == "depth" and not res.valid[12] and res.valid[8] and not res.measured[8]
    assert np.isnan(res.points_camera[12]).all()


def test_degenerate_inputs_give_empty_result():
    K = default_intrinsics()
    res = HandLifter().process(np.full((21, 2), np.nan), np.zeros((21, 3)), K)
    assert isinstance(res, LiftingResult) and res.mode == "none" and not res.valid.any()
    with pytest.raises(ValueError, match="K"):
        HandLifter().process(np.zeros((21, 2)), np.zeros((21, 3)), np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        HandLifter().process(np.zeros((20, 2)), np.zeros((21, 3)), K)


def test_consensus_finds_plurality_not_median():
    # Three consistent joints against four scattered occluder hits: the median (0.46) is wrong.
    h = np.array([0.50, 0.505, 0.495, 0.40, 0.42, 0.44, 0.46, np.nan])
    value, inliers = consensus_depth(h, 0.015)
    assert value == pytest.approx(0.5, abs=0.006) and inliers.sum() == 3
    # A tie between two equally supported groups goes to the farther: occluders are in front.
    value, _ = consensus_depth(np.array([0.40, 0.401, 0.50, 0.501]), 0.01)
    assert value == pytest.approx(0.5, abs=0.002)
    assert np.isnan(consensus_depth(np.full(3, np.nan), 0.02)[0])


def test_project_roundtrip():
    pts = np.array([[0.1, -0.05, 0.8]])
    K = default_intrinsics()
    assert np.allclose(normalised_rays(project(pts, K), K) * 0.8, pts)


@pytest.mark.parametrize("bad", [{"depth_window_radius_px": -1}, {"max_depth_m": 0.05},
                                 {"min_depth_joints": 0}, {"joint_surface_offset_m": 0.5}])
def test_options_validation(bad):
    with pytest.raises((ValueError, TypeError), match=next(iter(bad))):
        options_from_mapping(LiftingOptions, bad)


def test_eval_table_small():
    res = evaluate(LiftingEvalOptions(distances_m=(0.5,), trials=2))
    assert res.errors_mm["depth_holes_occluder"][0.5] < 15.0
    assert res.errors_mm["monocular"][0.5] < 20.0
    assert "| 0.50 |" in format_table(res)
