"""The retargeting wrist frame must not flip on near-colinear landmarks 0, 5, 9."""
import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="retargeting needs pinocchio: pip install 'pin==4.1.0'")

from hand_perception.core.retargeting.wrist_frame import (  # noqa: E402
    WristFrameEstimator, WristFrameOptions)


def _flat_hand(side="right"):
    """A flat hand, x to the knuckles, thumb on +y (right) / -y (left), 0, 5, 9 colinear.

    With +y on the thumb side the right hand's palm faces -z (y = z × x points to the pinky).
    """
    kp = np.zeros((21, 3))
    y = {5: 0.0, 9: 0.0, 13: -0.02, 17: -0.04}  # index MCP on the wrist->middle line
    for base, off in y.items():
        for j in range(4):
            kp[base + j] = [0.09 + 0.025 * j, off * (1 + 0.1 * j), 0.0]
    kp[1:5] = [[0.03, 0.03, 0.0], [0.05, 0.04, 0.0], [0.07, 0.05, 0.0], [0.09, 0.06, 0.0]]
    if side == "left":
        kp[:, 1] *= -1
    return kp


@pytest.mark.parametrize("side", ["right", "left"])
def test_no_flip_on_near_colinear_keypoints(side):
    rng = np.random.default_rng(0)
    estimator = WristFrameEstimator()
    base = _flat_hand(side)
    true_z = np.array([0.0, 0.0, -1.0])  # mirroring y for the left hand keeps the palm normal
    for _ in range(500):
        noisy = base + rng.normal(0.0, 0.002, base.shape)
        result = estimator.process(noisy, side)
        assert result.valid
        assert result.rotation[:, 2] @ true_z > 0.9
        assert np.allclose(result.rotation.T @ result.rotation, np.eye(3), atol=1e-9)
        assert np.linalg.det(result.rotation) == pytest.approx(1.0)


def test_degenerate_palm_reuses_previous_frame():
    estimator = WristFrameEstimator(WristFrameOptions(min_planarity=0.05))
    good = estimator.process(_flat_hand(), "right")
    line = np.zeros((21, 3))
    line[:, 0] = np.linspace(0.0, 0.2, 21)
    reused = estimator.process(line, "right")
    assert reused.valid and reused.degenerate
    assert np.allclose(reused.rotation, good.rotation)
    assert not WristFrameEstimator().process(line, "right").valid


@pytest.mark.parametrize("kwargs", [{"min_planarity": -1.0}, {"min_handedness_sine": 2.0}])
def test_options_validated(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        WristFrameOptions(**kwargs)


def test_bad_side_and_keypoints():
    with pytest.raises(ValueError, match="side"):
        WristFrameEstimator().process(_flat_hand(), "middle")
    bad = _flat_hand()
    bad[7, 1] = np.inf
    with pytest.raises(ValueError, match="keypoint"):
        WristFrameEstimator().process(bad, "right")
