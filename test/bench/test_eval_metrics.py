"""Metric functions of bench/ (PCK, matching, jitter, ID switches, label flips, annotation
transforms): plain numpy on hand-made data, no models and no peer."""
import json

import cv2
import numpy as np
import pytest

from bench import metrics, sequences
from bench.metrics import GtHand
from bench.peers.mediapipe_runner import IdLinker
from bench.runners import FrameResult
from bench.tally import SequenceTally, Tally


def hand(offset=(0.0, 0.0), size=100.0, handedness="right") -> GtHand:
    """A GT hand: keypoints on a line inside a box of the given size."""
    keypoints = np.stack([np.linspace(0, size, 21), np.linspace(0, size / 2, 21)], axis=1)
    keypoints += np.asarray(offset)
    box = np.array([offset[0], offset[1], offset[0] + size, offset[1] + size / 2])
    return GtHand(keypoints, np.ones(21, bool), box, handedness)


def result(*keypoints, track_ids=None, labels=None) -> FrameResult:
    ids = track_ids or list(range(len(keypoints)))
    labels = labels or ["right"] * len(keypoints)
    return FrameResult([{"track_id": i, "handedness": lab, "score": 1.0, "keypoints_2d": kp}
                        for kp, i, lab in zip(keypoints, ids, labels)])


def test_load_coco_hands_reads_keypoints_visibility_and_box(tmp_path):
    raw = np.zeros((21, 3))
    raw[:, 0], raw[:, 1], raw[1:, 2] = np.arange(21), 2 * np.arange(21), 1  # wrist unlabelled
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({
        "images": [{"id": 5, "file_name": "a.jpg"}, {"id": 6, "file_name": "empty.jpg"}],
        "annotations": [{"image_id": 5, "keypoints": raw.ravel().tolist(), "bbox": [1, 2, 30, 40]}]}))
    hands = metrics.load_coco_hands(path, "right")
    assert hands["empty.jpg"] == []
    (gt,) = hands["a.jpg"]
    assert gt.visible.sum() == 20 and not gt.visible[0]
    np.testing.assert_allclose(gt.keypoints[3], [3, 6])
    np.testing.assert_allclose(gt.box, [1, 2, 31, 42])
    assert gt.box_size == 40 and gt.handedness == "right"


def test_pck_uses_the_box_longer_side_and_skips_unlabelled_keypoints():
    gt = hand(size=100.0)  # threshold 0.2 * 100 = 20 px
    pred = gt.keypoints.copy()
    pred[:5, 0] += 25.0  # 5 keypoints wrong
    pred[5:8, 0] += 15.0  # 3 off but inside the threshold
    assert metrics.pck_counts(pred, gt) == (16, 21)
    gt.visible[:5] = False
    assert metrics.pck_counts(pred, gt) == (16, 16)
    assert metrics.keypoint_errors(pred, gt).max() == pytest.approx(15.0)


def test_match_hands_pairs_by_error_and_rejects_far_guesses():
    a, b = hand((0, 0)), hand((300, 0))
    pairs = metrics.match_hands([b.keypoints + 2, a.keypoints - 1], [a, b])
    assert sorted(pairs) == [(0, 1), (1, 0)]
    assert metrics.match_hands([a.keypoints + 60.0], [a]) == []  # 0.6 box sizes off
    assert metrics.match_hands([], [a]) == [] and metrics.match_hands([a.keypoints], []) == []


def test_transform_hand_follows_the_warped_image():
    image = np.zeros((60, 80, 3), np.uint8)
    point = np.array([50.0, 20.0])
    image[20, 50] = 255  # cv2.warpAffine maps pixel indices, as transform_hand maps points
    gt = GtHand(np.tile(point, (21, 1)), np.ones(21, bool), np.array([40.0, 10, 60, 30]))
    matrix = sequences.similarity((100, 90), 1.5, 30.0, (80, 60))
    warped = cv2.warpAffine(image, matrix, (200, 180), flags=cv2.INTER_LINEAR)
    moved = metrics.transform_hand(matrix, gt, (200, 180))
    peak = np.unravel_index(np.argmax(warped[..., 0]), warped.shape[:2])[::-1]
    assert np.linalg.norm(moved.keypoints[0] - np.array(peak)) < 1.5
    assert moved.visible.all()
    width = 20 * 1.5 * (np.cos(np.radians(30)) + np.sin(np.radians(30)))  # rotated box hull
    assert moved.box_size == pytest.approx(width)
    outside = metrics.transform_hand(matrix, gt, (50, 50))
    assert not outside.visible.any()


def test_sequence_annotations_stay_on_the_rendered_hand():
    image = np.zeros((100, 120, 3), np.uint8)
    image[30:34, 70:74] = 255  # a 4x4 bright square centred at pixel index (71.5, 31.5)
    gt = GtHand(np.tile([71.5, 31.5], (21, 1)), np.ones(21, bool), np.array([60.0, 20, 84, 44]))
    layer = sequences.Layer(image, [gt], sequences.motion("shake", 12, (120, 100)))
    for frame, (moved,) in sequences.frames([layer]):
        ys, xs = np.nonzero(frame[..., 0] > 200)
        centroid = np.array([xs.mean(), ys.mean()])  # cv2's convention: pixel centres at integers
        assert np.linalg.norm(centroid - moved.keypoints[0]) < 1.0


def test_acceleration_is_zero_for_constant_velocity_and_skips_gaps():
    t = np.arange(10, dtype=float)
    track = np.stack([np.stack([3 * t, -2 * t], axis=1)] * 21, axis=1)  # (10, 21, 2)
    assert metrics.mean_acceleration(track) == pytest.approx(0.0)
    track[5] += [4.0, 0.0]  # one jump: accelerations 4, 8, 4 around it
    assert metrics.acceleration_norms(track).max() == pytest.approx(8.0)
    assert metrics.mean_acceleration(track) == pytest.approx(16 / 8)
    track[2] = np.nan  # removes the three triples that use frame 2
    assert metrics.acceleration_norms(track).size == 21 * 5
    assert np.isnan(metrics.mean_acceleration(track[:2]))


def test_id_switches_and_label_flips_ignore_missed_frames():
    assert metrics.count_id_switches([1, 1, None, 1, 2, 2, None, 1]) == 2
    assert metrics.count_id_switches([None, None]) == 0
    assert metrics.count_label_flips(["right", None, "right", "left", None, "left", "right"]) == 2
    assert metrics.count_label_flips([]) == 0


def test_tally_counts_misses_false_positives_and_handedness():
    a, b = hand((0, 0)), hand((300, 0), handedness="")
    tally = Tally()
    tally.add(result(a.keypoints, np.full((21, 2), 900.0), labels=["left", "right"]), [a, b])
    recall, false_pos, pck, error, handedness = tally.cells()
    assert (recall, false_pos, pck, error) == (50.0, 1, 50.0, 0.0)
    assert handedness == 0.0  # the one known label was wrong


def test_sequence_tally_temporal_metrics():
    gts = [[hand((5.0 * t, 0))] for t in range(8)]
    ids = [0, 0, 0, 7, 7, 7, 7, 7]
    labels = ["right"] * 4 + ["left"] + ["right"] * 3
    results = [result(g[0].keypoints + (1.0 if t == 4 else 0.0), track_ids=[ids[t]],
                      labels=[labels[t]]) for t, g in enumerate(gts)]
    tally = SequenceTally()
    tally.add_sequence(results, gts)
    pred_jitter, gt_accel, residual, switches, flips, _, _ = tally.temporal_cells()
    assert gt_accel == pytest.approx(0.0)
    assert residual == pytest.approx(pred_jitter) and residual > 0
    assert (switches, flips) == (1, 2)
    assert tally.cells()[2] == 100.0


def test_peer_id_linker_keeps_ids_of_moving_hands():
    linker = IdLinker()
    a, b = hand((0, 0)).keypoints, hand((400, 0)).keypoints
    first = linker.link([a, b])
    assert linker.link([b + 5, a + 5]) == first[::-1]
    assert linker.link([b + 300]) not in ([first[0]], [first[1]])  # too far: a new id
