"""core.sample_clip: the demo's moving clip made from still photos."""
from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from hand_perception.core.sample_clip import (DEFAULT_SHOTS, SampleClip,  # noqa: E402
                                              SampleClipOptions, Shot, View, load_photos,
                                              render_view, smoothstep, view_at)


def textured_photo(width: int = 400, height: int = 300, seed: int = 0) -> np.ndarray:
    """Smooth random texture (so small moves change pixels a little, not all at once)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 50, width // 50, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def two_shot_options(frames: int = 40) -> SampleClipOptions:
    shots = (Shot("a", 0.5, (View(0.0, 0.4, 0.5, 1.0), View(1.0, 0.6, 0.5, 1.5, 5.0))),
             Shot("b", 0.5, (View(0.0, 0.5, 0.5, 1.2), View(1.0, 0.5, 0.4, 1.2, -5.0))))
    return SampleClipOptions(frames=frames, width=160, height=120, shots=shots)


@pytest.fixture
def photos():
    return {"a": textured_photo(seed=1), "b": textured_photo(300, 400, seed=2)}


def test_frames_are_deterministic_and_sized(photos) -> None:
    clip = SampleClip(two_shot_options(), photos)
    again = SampleClip(two_shot_options(), {k: v.copy() for k, v in photos.items()})
    assert len(clip) == 40
    for index in (0, 13, 39):
        frame = clip.process(index)
        assert frame.rgb.shape == (120, 160, 3) and frame.rgb.dtype == np.uint8
        assert np.array_equal(frame.rgb, again.process(index).rgb)
        assert frame.stamp_s == pytest.approx(index / 30.0)


def test_motion_is_smooth_within_a_shot_and_cuts_between_shots(photos) -> None:
    clip = SampleClip(two_shot_options(), photos)
    frames = [clip.process(i) for i in range(len(clip))]
    assert [f.photo for f in frames] == ["a"] * 20 + ["b"] * 20
    steps = [np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean()
             for a, b in zip(frames[:-1], frames[1:])]
    cut = steps[19]
    within = steps[:19] + steps[20:]
    assert max(within) < cut / 2  # moving, but far less than a scene cut
    assert min(steps[1:18]) > 0.0  # the camera really moves
    # eased: the first step of a shot is smaller than the one in its middle
    assert steps[0] < steps[9]


def test_view_eases_between_keyframes() -> None:
    views = (View(0.0, 0.2, 0.5, 1.0), View(0.5, 0.6, 0.5, 2.0, 10.0), View(1.0, 0.6, 0.5, 1.0))
    assert view_at(views, 0.0) == views[0]
    assert view_at(views, 0.5).cx == pytest.approx(0.6)
    middle = view_at(views, 0.25)
    assert middle.cx == pytest.approx(0.4) and middle.zoom == pytest.approx(1.5)
    assert view_at(views, 1.0).zoom == pytest.approx(1.0)
    assert smoothstep(0.0) == 0.0 and smoothstep(1.0) == 1.0 and smoothstep(0.5) == 0.5
    assert smoothstep(0.1) < 0.1  # slow start


def test_view_centre_lands_in_the_middle_of_the_frame() -> None:
    photo = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(photo, (250, 120), 6, (255, 255, 255), -1)
    frame = render_view(photo, View(0.0, 250 / 400, 120 / 300, 2.0), 160, 120)
    ys, xs = np.nonzero(frame[:, :, 0] > 128)
    assert abs(xs.mean() - 79.5) < 1.5 and abs(ys.mean() - 59.5) < 1.5


def test_rolled_view_stays_inside_the_photo() -> None:
    """A border of 0 around a white photo: no black (reflected or outside) pixel may show,
    even when the view asks for the corner with a roll."""
    photo = np.full((300, 400, 3), 255, np.uint8)
    for view in (View(0.0, 0.0, 0.0, 1.0, 15.0), View(0.0, 1.0, 1.0, 1.0, -20.0),
                 View(0.0, 0.5, 0.5, 1.0, 30.0)):
        frame = render_view(photo, view, 160, 120)
        assert frame.min() >= 250, view


def test_past_the_end_is_empty_and_bad_options_are_named(photos) -> None:
    clip = SampleClip(two_shot_options(4), photos)
    assert clip.process(4).empty and clip.process(-1).empty
    with pytest.raises(ValueError, match="frames"):
        SampleClipOptions(frames=0)
    with pytest.raises(TypeError, match="width"):
        SampleClipOptions(width=64.5)
    with pytest.raises(ValueError, match="sum to 1"):
        SampleClipOptions(shots=DEFAULT_SHOTS[:1])
    with pytest.raises(ValueError, match="rise from 0 to 1"):
        Shot("a", 1.0, (View(0.0, 0.5, 0.5, 1.0), View(0.5, 0.5, 0.5, 1.0)))
    with pytest.raises(ValueError, match="zoom"):
        View(0.0, 0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"no photo for shots \['b'\]"):
        SampleClip(two_shot_options(), {"a": photos["a"]})
    with pytest.raises(ValueError, match="uint8"):
        SampleClip(two_shot_options(), {"a": photos["a"], "b": photos["b"].astype(float)})


def test_write_folder_then_read_back(photos, tmp_path) -> None:
    clip = SampleClip(two_shot_options(6), photos)
    paths = clip.write_folder(tmp_path / "clip")
    assert [p.name for p in paths] == sorted(p.name for p in (tmp_path / "clip").iterdir())
    assert len(paths) == 6
    back = cv2.cvtColor(cv2.imread(str(paths[3])), cv2.COLOR_BGR2RGB)
    assert np.abs(back.astype(int) - clip.process(3).rgb.astype(int)).mean() < 3.0  # JPEG


def test_load_photos_names_an_unreadable_file(tmp_path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="bad.jpg"):
        load_photos({"x": bad})
