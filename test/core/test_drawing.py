"""Drawing hands: skeleton and joint colours where the keypoints are, hollow hidden joints, the
label in the handedness colour, NaN joints skipped, input image untouched, bad input rejected."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("cv2")

from hand_perception.core.drawing import (HANDEDNESS_COLOURS, KEYPOINT_COLOURS,  # noqa: E402
                                          draw_hands, hand_label)
from hand_perception.core.synthetic import default_intrinsics, hand_skeleton, project  # noqa: E402


@dataclass
class FakeHand:
    keypoints_2d: np.ndarray
    track_id: int = 7
    handedness: str = "right"
    score: float = 0.93
    joint_visible: np.ndarray = field(default_factory=lambda: np.ones(21, bool))


def hand_in_image(width: int = 640, height: int = 480) -> np.ndarray:
    """(21, 2) px of an open hand 0.4 m in front of a 640x480 camera."""
    points = hand_skeleton() + (0.0, 0.08, 0.4)
    return project(points, default_intrinsics(width, height)).astype(np.float32)


def colour_at(image: np.ndarray, xy: np.ndarray) -> tuple:
    return tuple(int(v) for v in image[int(round(xy[1] - 0.5)), int(round(xy[0] - 0.5))])


def test_joints_and_bones_are_drawn_where_the_keypoints_are() -> None:
    background = np.full((480, 640, 3), 40, np.uint8)
    keypoints = hand_in_image()
    out = draw_hands(background, [FakeHand(keypoints)])
    assert out.shape == background.shape and out.dtype == np.uint8
    assert np.all(background == 40), "the input image must not be modified"
    for index in (4, 8, 12, 16, 20):  # fingertips: only their own bone ends there
        assert colour_at(out, keypoints[index]) == KEYPOINT_COLOURS[index]
    middle = (keypoints[10] + keypoints[11]) / 2  # halfway along a middle-finger bone
    assert colour_at(out, middle) == KEYPOINT_COLOURS[11]
    assert colour_at(out, (10, 470)) == (40, 40, 40)  # far from the hand: untouched


def test_hidden_joints_are_hollow_and_nan_joints_skipped() -> None:
    keypoints = hand_in_image()
    keypoints[7] = np.nan  # no bone reaches the index tip 8 any more
    visible = np.ones(21, bool)
    visible[8] = False
    out = draw_hands(np.zeros((480, 640, 3), np.uint8),
                     [FakeHand(keypoints, joint_visible=visible)])
    assert colour_at(out, keypoints[8]) == (0, 0, 0)  # ring around it, centre empty
    ring = out[int(keypoints[8][1]) - 6:int(keypoints[8][1]) + 7,
               int(keypoints[8][0]) - 6:int(keypoints[8][0]) + 7]
    assert ring.any()


def test_label_uses_the_handedness_colour() -> None:
    keypoints = hand_in_image()
    for side in ("right", "left"):
        out = draw_hands(np.zeros((480, 640, 3), np.uint8),
                         [FakeHand(keypoints, handedness=side)])
        top = int(np.min(keypoints[:, 1]))
        label_area = out[max(top - 30, 0):top]
        colour = np.array(HANDEDNESS_COLOURS[side], np.uint8)
        assert np.all(label_area == colour, axis=-1).sum() > 100, side
    assert hand_label(3, "left", 0.5) == "#3 left 0.50"


def test_all_nan_hand_and_no_hands() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    assert np.array_equal(draw_hands(image, []), image)
    nan_hand = FakeHand(np.full((21, 2), np.nan, np.float32))
    assert np.array_equal(draw_hands(image, [nan_hand]), image)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 "image"])
def test_bad_images_are_rejected(bad) -> None:
    with pytest.raises(ValueError, match="rgb"):
        draw_hands(bad, [])
