"""HandPipeline's recovery and rejection steps on real photos: the retry of a faded tracking ROI
after a fast zoom, the confirmation crop that keeps a hand-like wall sign from starting a track,
MediaPipe's detector-input sampling, the video tiled sweep for small hands, and the search for
further hands between frames.

Needs the prepared models (skips without them), ../shared/data/hands and the bus.jpg sample.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from hand_perception.core.hand_pipeline import HandPipeline  # noqa: E402
from hand_perception.core.models.palm_detector import (INPUT_SIZE, PalmDetectorOptions,  # noqa: E402
                                                       letterbox)
from scenes import second_hand_scene  # noqa: E402

#: Photos whose hand is tracked at 200 px on a 640x480 canvas (checked: the detector finds them).
TRACKED_PHOTOS = ("freihand/00000355.jpg", "freihand/00017620.jpg", "freihand/00115300.jpg",
                  "onehand10k/33.jpg")


def on_canvas(rgb: np.ndarray, long_side_px: float, canvas=(640, 480)) -> np.ndarray:
    """``rgb`` scaled so its longer side is ``long_side_px``, centred on a grey canvas."""
    scale = long_side_px / max(rgb.shape[:2])
    matrix = np.array([[scale, 0, canvas[0] / 2 - scale * rgb.shape[1] / 2],
                       [0, scale, canvas[1] / 2 - scale * rgb.shape[0] / 2]])
    return cv2.warpAffine(rgb, matrix, canvas, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(114, 114, 114))


def hands_per_frame(pipeline: HandPipeline, frames) -> list:
    return [len(pipeline.process(frame, k / 30.0).hands) for k, frame in enumerate(frames)]


def test_a_faded_tracking_roi_is_retried_larger_after_a_fast_zoom(base_options,
                                                                    shared_hands_dir) -> None:
    """Two frames at 200 px, then the hand 1.8x larger in one frame: the last ROI cuts it off.
    The detector does not run on that frame (the track was healthy), so only the retry finds it."""
    kept, lost_without_retry = 0, 0
    for rel in TRACKED_PHOTOS:
        rgb = cv2.cvtColor(cv2.imread(str(Path(shared_hands_dir) / rel)), cv2.COLOR_BGR2RGB)
        frames = [on_canvas(rgb, 200), on_canvas(rgb, 200), on_canvas(rgb, 360)]
        with_retry = hands_per_frame(HandPipeline(base_options), frames)
        without = hands_per_frame(
            HandPipeline(dataclasses.replace(base_options, retry_roi_scale=0.0)), frames)
        assert with_retry[:2] == [1, 1] and without[:2] == [1, 1], (rel, with_retry, without)
        kept += with_retry[2]
        lost_without_retry += 1 - without[2]
    assert kept == len(TRACKED_PHOTOS)
    assert lost_without_retry >= 2  # the retry is what keeps them (measured: 3 of 4 lost)


def test_a_hand_like_wall_sign_starts_no_track_in_video(base_options) -> None:
    """bus.jpg's top (no people) panned over 60 frames: a sign scores 0.6-0.8 at the palm detector and passes
    the landmark presence on the palm's loose ROI in some frames; the confirmation crop around
    its own landmarks rejects it."""
    from hand_perception.paths import sample_path

    try:
        bus = cv2.cvtColor(cv2.imread(str(sample_path("bus.jpg"))), cv2.COLOR_BGR2RGB)[:380]
    except ValueError as err:
        pytest.skip(str(err))
    scale = 1.3 * max(640 / bus.shape[1], 480 / bus.shape[0])
    frames = []
    for shift in np.linspace(0.0, 2 * np.pi, 60):
        matrix = cv2.getRotationMatrix2D((bus.shape[1] / 2, bus.shape[0] / 2),
                                         5 * np.sin(shift), scale)
        matrix[:, 2] += np.array([320 + 40 * np.sin(shift), 240]) - [bus.shape[1] / 2,
                                                                    bus.shape[0] / 2]
        frames.append(cv2.warpAffine(bus, matrix, (640, 480)))
    confirmed = sum(hands_per_frame(HandPipeline(base_options), frames))
    unconfirmed = sum(hands_per_frame(
        HandPipeline(dataclasses.replace(base_options, confirm_new_hands=False)), frames))
    # Measured: 23 hand-frames without the confirmation, 6 with it (MediaPipe: 6).
    assert unconfirmed >= 12, unconfirmed  # the sign does fool the detector and the loose crop
    assert 2 * confirmed < unconfirmed, (confirmed, unconfirmed)


def test_mediapipe_resampling_maps_the_frame_like_the_area_letterbox() -> None:
    """Both samplings place the frame at the same scale and padding (so detections map back
    alike); they differ only in how pixels are interpolated."""
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3)).astype(np.uint8), (0, 0), 4)
    area, (sx, sy, px, py) = letterbox(image, "area")
    bilinear, (mx, my, qx, qy) = letterbox(image, "mediapipe")
    assert bilinear.shape == area.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    assert bilinear.dtype == np.float32 and 0.0 <= bilinear.min() and bilinear.max() <= 1.0
    assert np.allclose([sx, sy, px, py], [mx, my, qx, qy], atol=1e-6)
    inside = slice(int(py) + 2, int(py + 480 * sy) - 2)
    assert np.abs(area[inside] - bilinear[inside]).mean() < 0.02  # same picture, smooth input
    assert np.all(bilinear[:int(py) - 1] == 0) and np.all(bilinear[int(py + 480 * sy) + 1:] == 0)
    with pytest.raises(ValueError, match="resampling"):
        PalmDetectorOptions(resampling="cubic")


def test_the_video_sweep_finds_small_hands_the_single_pass_misses(base_options,
                                                                 shared_hands_dir) -> None:
    """Two photos at 200 px side by side on 640x480: the letterboxed 192x192 pass alone finds
    neither hand in 3 frames; the first frame's tiled sweep (video_grids) finds both, and
    tracking keeps them."""
    canvas = np.full((480, 640, 3), 114, np.uint8)
    for rel, x0 in (("freihand/00032915.jpg", 40), ("freihand/00065475.jpg", 400)):
        rgb = cv2.cvtColor(cv2.imread(str(Path(shared_hands_dir) / rel)), cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (200, 200), interpolation=cv2.INTER_AREA)
        canvas[140:340, x0:x0 + 200] = small
    frames = [canvas] * 3
    off = dataclasses.replace(base_options.tiled_detection, interval_frames=0)
    assert hands_per_frame(HandPipeline(dataclasses.replace(base_options, tiled_detection=off)),
                           frames) == [0, 0, 0]
    pipeline = HandPipeline(base_options)
    results = [pipeline.process(frame, k / 30.0) for k, frame in enumerate(frames)]
    assert [len(r.hands) for r in results] == [2, 2, 2]
    assert [r.detector_ran for r in results] == [True, False, False]
    xs = sorted(float(np.mean(h.keypoints_2d[:, 0])) for h in results[-1].hands)
    assert 40 < xs[0] < 240 and 400 < xs[1] < 600  # one hand in each photo


def test_the_search_for_further_hands_runs_between_frames(base_options, shared_hands_dir) -> None:
    """With search_between_frames, frames after the first never run the detector inside
    process(): the due search (the single pass, then one tile per step) runs in search_step()
    calls on the last frame, and the second hand it finds is tracked from the next frame on.
    Without those calls, the search is finished inside process() once overdue."""
    alone, both = second_hand_scene(shared_hands_dir)
    tiling = dataclasses.replace(base_options.tiled_detection, interval_frames=10)
    options = dataclasses.replace(base_options, search_between_frames=True,
                                  redetect_interval_frames=10, tiled_detection=tiling)
    pipeline = HandPipeline(options)
    frames = [alone] * 3 + [both] * 7
    results = [pipeline.process(frame, k / 30.0) for k, frame in enumerate(frames)]
    assert [len(r.hands) for r in results] == [1] * 10
    assert [r.detector_ran for r in results] == [True] + [False] * 9
    assert pipeline.search_pending  # started on the 10th frame, not run yet
    steps = 0
    while pipeline.search_pending:
        assert pipeline.search_step() > 0.0
        steps += 1
    assert steps == 7  # the single pass (one hand tracked, none new) + the 6 tiles of grid 2
    assert pipeline.search_step() == 0.0 and pipeline.search_step_cost_s > 0.0
    after = pipeline.process(both, 10 / 30.0)
    assert len(after.hands) == 2 and not after.detector_ran
    assert len({h.track_id for h in after.hands}) == 2

    idle = HandPipeline(options)  # nobody calls search_step: finished in process() when overdue
    frames = [alone] * 3 + [both] * 18
    results = [idle.process(frame, k / 30.0) for k, frame in enumerate(frames)]
    ran = [k for k, r in enumerate(results) if r.detector_ran]
    assert ran == [0, 20], ran
    assert [len(r.hands) for r in results] == [1] * 20 + [2]
