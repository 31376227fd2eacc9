"""Rotation matrix <-> quaternion (x, y, z, w) in core."""
import math

import numpy as np
import pytest

from hand_perception.core.rotations import matrix_from_quaternion, quaternion_from_matrix


def test_round_trip_over_random_rotations_including_near_180_degrees():
    rng = np.random.default_rng(5)
    quats = list(rng.normal(size=(50, 4))) + [[1.0, 0.0, 0.0, 1e-9], [0.0, 1.0, 1.0, 0.0]]
    for quat in quats:
        rotation = matrix_from_quaternion(quat)
        assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(matrix_from_quaternion(quaternion_from_matrix(rotation)),
                                   rotation, atol=1e-9)


def test_quaternion_is_normalised_and_its_sign_fixed():
    half = math.sqrt(0.5)
    np.testing.assert_allclose(matrix_from_quaternion([0, 0, 2 * half, 2 * half]),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    assert quaternion_from_matrix(np.diag([1.0, -1.0, -1.0]))[3] >= 0.0


@pytest.mark.parametrize("bad", [[0, 0, 0, 0], [np.nan, 0, 0, 1], [1, 0, 0]])
def test_bad_quaternions_raise_value_error(bad):
    with pytest.raises(ValueError, match="quaternion"):
        matrix_from_quaternion(bad)
