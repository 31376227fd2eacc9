"""Fast link-origin kinematics for the solvers, and the tree description the batched path uses.

:class:`PointJacobians` is the single-frame hot path. Reading a frame Jacobian out of pinocchio
costs a Python round trip per link (``getFrameJacobian`` builds a 6×nv array each time), so
instead it makes one ``computeJointJacobians`` call, reads the 6×nv world Jacobian ``data.J``
once (column j = joint j's twist at the world origin, ``[v_j; w_j]``), gathers the link origins
``p`` and forms every link's linear Jacobian as ``v_j + w_j × p`` masked by "joint j moves link"
— the analytic columns of the finger chains, zero elsewhere. The origins are read through live
views of ``data.oMf`` (:meth:`RobotHand.origin_views`): one ``np.array`` call for all links.
Everything stays in the model's root frame: the solvers rotate their targets into it once per
solve instead of rotating k×3×n Jacobians every iteration (the wrist link is fixed to the root,
so differences of origins only rotate).

:class:`KinematicTree` is the same model as plain arrays (joint placements, axes, types, frame
placements, mimic map) for the torch FK in ``batched.py``.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np
import pinocchio as pin

from hand_perception.core.retargeting.robot_hand import RobotHand

_AXES = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}
# A point's linear Jacobian is [I, -skew(p)] @ [v; w] (v + w × p); row c of _TWIST_MAP holds
# the coefficients of p_c in that flattened (3, 6) matrix, _TWIST_BASE its constant part, so
# the matrices of all k links are one (k, 3) @ (3, 18) product.
_TWIST_BASE = np.hstack([np.eye(3), np.zeros((3, 3))]).reshape(-1)
# np.cross(e_c, I) has rows e_c × e_j, i.e. skew(e_c)^T = -skew(e_c).
_TWIST_MAP = np.stack([np.hstack([np.zeros((3, 3)), np.cross(np.eye(3)[c], np.eye(3))])
                       for c in range(3)]).reshape(3, -1)


def moving_mask(hand: RobotHand, frame_ids: Sequence[int]) -> np.ndarray:
    """bool (k, nv): True where model joint (velocity index) ``j`` moves frame ``frame_ids[k]``."""
    model = hand.model
    mask = np.zeros((len(frame_ids), model.nv), dtype=bool)
    for row, fid in enumerate(frame_ids):
        joint = model.frames[fid].parentJoint
        while joint > 0:
            mask[row, model.joints[joint].idx_v] = True
            joint = model.parents[joint]
    return mask


class PointJacobians:
    """Origins of a fixed set of links and their Jacobians w.r.t. the independent joints.

    Output frame: the model's root frame (metres). Not thread-safe: it uses the hand's
    ``pinocchio.Data``.
    """

    def __init__(self, hand: RobotHand, frame_ids: Sequence[int]) -> None:
        self.hand = hand
        self.frame_ids = list(frame_ids)
        self._model, self._data = hand.model, hand.data
        self._origins = hand.origin_views(self.frame_ids)
        self._a, self._b = hand._a, hand._b
        self._select = hand._select
        mask = moving_mask(hand, self.frame_ids)
        if self._select is not None:  # no mimic joints: work on the independent columns only
            mask = mask[:, self._select]
        self._mask = mask[:, None, :].astype(float)  # (k, 1, nv or n)
        # Without mimic joints q_full is a permutation of q: a gather instead of a matrix product.
        self._full_from_q = (np.argsort(self._select) if self._select is not None else None)

    def full_q(self, q: np.ndarray) -> np.ndarray:
        """Independent joints (n,) -> model configuration (nq,), mimic joints included."""
        if self._full_from_q is not None:
            return q[self._full_from_q]
        return self._a @ q + self._b

    def points(self, q: np.ndarray) -> np.ndarray:
        """Link origins float64 (k, 3) m, root frame, at independent joints ``q`` (n,)."""
        pin.framesForwardKinematics(self._model, self._data, self.full_q(q))
        return np.array(self._origins)

    def evaluate(self, q: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Origins (k, 3) and Jacobians (k, 3, n) w.r.t. independent joints, root frame."""
        points = self.update(q)
        return points, self.jacobian(points)

    def update(self, q: np.ndarray) -> np.ndarray:
        """Origins (k, 3) at ``q`` (n,); also readies :meth:`jacobian` for this ``q``."""
        pin.computeJointJacobians(self._model, self._data, self.full_q(q))
        pin.updateFramePlacements(self._model, self._data)
        return np.array(self._origins)

    def jacobian(self, points: np.ndarray) -> np.ndarray:
        """Jacobians (k, 3, n) at the ``q`` of the last :meth:`update`, whose ``points`` these
        are. Split from it so a rejected solver step costs no Jacobian."""
        jac_world = self._data.J  # (6, nv): [v; w] of each joint's twist at the world origin
        if self._select is not None:
            jac_world = jac_world.take(self._select, axis=1)
        twist_to_point = (points @ _TWIST_MAP + _TWIST_BASE).reshape(-1, 6)  # (3k, 6)
        jac = (twist_to_point @ jac_world).reshape(len(points), 3, -1) * self._mask
        if self._select is not None:
            return jac
        return jac @ self._a


@dataclasses.dataclass
class KinematicTree:
    """A hand's kinematic tree as arrays (root frame, metres, radians).

    Joints are in pinocchio order (parents before children), index 0 = the universe.
    parent: int (J,); rotation: float64 (J, 3, 3) and translation (J, 3): placement in the parent
    joint's frame; axis: (J, 3) unit; prismatic: bool (J,); q_index: int (J,) model q index (-1 for
    the universe). frame_joint: int (k,), frame_translation: (k, 3): link origins in their joint's
    frame. mimic_a (nq, n), mimic_b (nq,): q_full = A q + b. lower/upper: (n,) independent bounds.
    """

    parent: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    axis: np.ndarray
    prismatic: np.ndarray
    q_index: np.ndarray
    frame_joint: np.ndarray
    frame_translation: np.ndarray
    mimic_a: np.ndarray
    mimic_b: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    levels: List[np.ndarray]


def _joint_axis(joint) -> Tuple[np.ndarray, bool]:
    """Unit axis and prismatic flag of a 1-DoF pinocchio joint model."""
    name = joint.shortname()
    if name in ("JointModelRevoluteUnaligned", "JointModelPrismaticUnaligned"):
        axis = np.asarray(joint.extract().axis, dtype=float).reshape(3)
        return axis / np.linalg.norm(axis), name == "JointModelPrismaticUnaligned"
    for prefix, prismatic in (("JointModelR", False), ("JointModelP", True)):
        if name.startswith(prefix) and name[len(prefix):] in _AXES:
            return np.array(_AXES[name[len(prefix):]]), prismatic
    raise ValueError(f"joint type {name} is not supported by the batched kinematics")


def kinematic_tree(hand: RobotHand, frame_ids: Sequence[int]) -> KinematicTree:
    """Arrays of ``hand``'s model for FK of the link origins ``frame_ids``."""
    model = hand.model
    count = model.njoints
    rotation, translation = np.tile(np.eye(3), (count, 1, 1)), np.zeros((count, 3))
    axis, prismatic = np.zeros((count, 3)), np.zeros(count, dtype=bool)
    q_index, depth = np.full(count, -1), np.zeros(count, dtype=int)
    for j in range(1, count):
        placement = model.jointPlacements[j]
        rotation[j], translation[j] = placement.rotation, placement.translation
        axis[j], prismatic[j] = _joint_axis(model.joints[j])
        q_index[j] = model.joints[j].idx_q
        depth[j] = depth[model.parents[j]] + 1
    levels = [np.flatnonzero(depth == d) for d in range(1, int(depth.max()) + 1)]
    frames = [model.frames[f] for f in frame_ids]
    return KinematicTree(
        parent=np.array(model.parents, dtype=int), rotation=rotation, translation=translation,
        axis=axis, prismatic=prismatic, q_index=q_index,
        frame_joint=np.array([f.parentJoint for f in frames], dtype=int),
        frame_translation=np.array([f.placement.translation for f in frames]).reshape(-1, 3),
        mimic_a=hand._a.copy(), mimic_b=hand._b.copy(), lower=hand.lower.copy(),
        upper=hand.upper.copy(), levels=levels)
