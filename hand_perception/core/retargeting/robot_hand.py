"""Kinematics of a dexterous robot hand from its URDF, through pinocchio.

The solver works on the *independent* joints only: URDF mimic joints are dependent
(``q_mimic = multiplier * q_primary + offset``) and their own limits are folded into the primary
joint's bounds, so a box-bounded solve can never push a mimic joint past its limit. Locked joints
(e.g. the Shadow hand's two wrist joints) are removed with ``pinocchio.buildReducedModel``.
All positions and Jacobians are expressed in the configured wrist link's frame, in metres.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

try:
    import pinocchio as pin
except ImportError as exc:  # pragma: no cover - exercised only without pinocchio
    raise ImportError("hand_perception.core.retargeting needs pinocchio: "
                      "pip install 'pin==4.1.0'") from exc

LOG = logging.getLogger(__name__)


def _mimic_table(path: str) -> Dict[str, Tuple[str, float, float]]:
    """``{mimic joint: (primary joint, multiplier, offset)}`` as parsed by pinocchio itself."""
    mimic_model = pin.buildModelFromUrdf(path, mimic=True)
    primary_by_q = {j.idx_q: name for name, j in zip(mimic_model.names, mimic_model.joints)
                    if j.shortname() != "JointModelMimic" and j.nq > 0}
    table = {}
    for name, joint in zip(mimic_model.names, mimic_model.joints):
        if joint.shortname() == "JointModelMimic":
            mimic = joint.extract()
            table[name] = (primary_by_q[joint.idx_q], float(mimic.scaling), float(mimic.offset))
    return table


class RobotHand:
    """A robot hand's kinematic model with mimic joints enforced as dependent.

    Args:
        urdf_path: path of the URDF file.
        wrist_link: frame every output is expressed in; must be rigidly attached to the root.
        locked_joints: joint name -> fixed value (rad or m), removed from the optimisation.
    """

    def __init__(self, urdf_path: Union[str, Path], wrist_link: str,
                 locked_joints: Mapping[str, float] = ()) -> None:
        path = str(urdf_path)
        model = pin.buildModelFromUrdf(path)
        locked = dict(locked_joints or {})
        unknown = sorted(n for n in locked if not model.existJointName(n))
        if unknown:
            raise ValueError(f"locked_joints {unknown} are not joints of {path}")
        if locked:
            q_ref = pin.neutral(model)
            for name, value in locked.items():
                q_ref[model.joints[model.getJointId(name)].idx_q] = float(value)
            model = pin.buildReducedModel(model, [model.getJointId(n) for n in locked], q_ref)
        if model.nq != model.nv:
            raise ValueError(f"{path}: only 1-DoF revolute/prismatic joints are supported "
                             f"(nq={model.nq}, nv={model.nv}); lock continuous joints")
        self.model = model
        self.data = model.createData()
        # Live views of every frame's placement inside ``data.oMf`` (pinocchio updates the
        # placements in place): gathering k link origins is then one ``np.array`` call instead
        # of k indexing round trips through the bindings (~2 µs each, the FK itself is ~1 µs).
        placements = self.data.oMf.tolist()
        self._origin_views = [p.translation for p in placements]
        self._rotation_views = [p.rotation for p in placements]
        self.urdf_path = path
        self._build_joint_map(_mimic_table(path), locked)
        self.wrist_link = wrist_link
        self._wrist_id = self.frame_id(wrist_link, "wrist_link")
        if model.frames[self._wrist_id].parentJoint != 0:
            raise ValueError(f"wrist_link={wrist_link!r} moves with joint "
                             f"{model.names[model.frames[self._wrist_id].parentJoint]!r}; pick a "
                             f"link fixed to the root or lock that joint")
        self._set_wrist_transform()

    def _build_joint_map(self, mimic: Dict[str, Tuple[str, float, float]],
                         locked: Mapping[str, float]) -> None:
        """Build ``q_full = A @ q + b`` and the independent joints' bounds (mimic limits folded)."""
        model = self.model
        names = [n for n in model.names[1:]]
        mimic = {k: v for k, v in mimic.items() if k in names and v[0] not in locked}
        self.full_joint_names: List[str] = names
        self.joint_names: List[str] = [n for n in names if n not in mimic]
        self.mimic = mimic
        col = {n: i for i, n in enumerate(self.joint_names)}
        a = np.zeros((model.nq, len(self.joint_names)))
        b = np.zeros(model.nq)
        lower = np.empty(len(self.joint_names))
        upper = np.empty(len(self.joint_names))
        for name in names:
            idx = model.joints[model.getJointId(name)].idx_q
            if name in col:
                a[idx, col[name]] = 1.0
                lower[col[name]] = model.lowerPositionLimit[idx]
                upper[col[name]] = model.upperPositionLimit[idx]
        for name, (primary, mult, offset) in mimic.items():
            idx = model.joints[model.getJointId(name)].idx_q
            a[idx, col[primary]] = mult
            b[idx] = offset
            lo, hi = sorted(((model.lowerPositionLimit[idx] - offset) / mult,
                             (model.upperPositionLimit[idx] - offset) / mult))
            lower[col[primary]] = max(lower[col[primary]], lo)
            upper[col[primary]] = min(upper[col[primary]], hi)
        if np.any(lower > upper):
            bad = [self.joint_names[i] for i in np.flatnonzero(lower > upper)]
            raise ValueError(f"{self.urdf_path}: joints {bad} have no value that keeps their "
                             f"mimic joints inside their own limits")
        self._a, self._b = a, b
        # Without mimic joints A is a column selection: index instead of a matrix product.
        self._select = (np.argmax(a, axis=0) if not mimic and (a.sum(axis=0) == 1).all()
                        and (a.max(axis=0) == 1).all() else None)
        self.lower, self.upper = lower, upper

    def _set_wrist_transform(self) -> None:
        pin.framesForwardKinematics(self.model, self.data, self.full_q(self.neutral()))
        placement = self.data.oMf[self._wrist_id]
        self._wrist_rot_t = placement.rotation.T.copy()
        self._wrist_pos = placement.translation.copy()

    @property
    def num_joints(self) -> int:
        """Number of independent (optimised) joints."""
        return len(self.joint_names)

    def neutral(self) -> np.ndarray:
        """Mid-range of the independent joints, float64 (n,)."""
        return 0.5 * (self.lower + self.upper)

    def clip(self, q: np.ndarray) -> np.ndarray:
        """``q`` (n,) clipped into the (mimic-aware) joint bounds."""
        return np.minimum(np.maximum(q, self.lower), self.upper)

    def full_q(self, q: np.ndarray) -> np.ndarray:
        """Independent joints (n,) -> every model joint incl. mimic ones, in model order."""
        return self._a @ q + self._b

    def full_limits(self) -> Tuple[np.ndarray, np.ndarray]:
        """The URDF's own (lower, upper) limits of every model joint, in ``full_joint_names`` order."""
        return self.model.lowerPositionLimit.copy(), self.model.upperPositionLimit.copy()

    def frame_id(self, name: str, what: str = "link") -> int:
        """pinocchio frame id of link ``name``; ``ValueError`` naming it if absent."""
        if not self.model.existFrame(name):
            links = sorted({f.name for f in self.model.frames if f.type == pin.FrameType.BODY})
            raise ValueError(f"{what}={name!r} is not a link of {self.urdf_path}; links: {links}")
        return self.model.getFrameId(name)

    def origin_views(self, frame_ids: Sequence[int]) -> List[np.ndarray]:
        """Live float64 (3,) views of the origins of ``frame_ids`` in ``data.oMf`` (model root
        frame, m): valid after any FK on ``self.data``; ``np.array(views)`` reads them all."""
        return [self._origin_views[f] for f in frame_ids]

    def positions(self, q: np.ndarray, frame_ids: Sequence[int],
                  offsets: Optional[np.ndarray] = None) -> np.ndarray:
        """Origins of ``frame_ids`` at joints ``q`` (n,): float64 (k, 3) m, wrist-link frame.

        offsets: float64 (k, 3) m, a point per frame in that frame's own axes (None = origins).
        """
        pin.framesForwardKinematics(self.model, self.data, self.full_q(q))
        world = np.array([self._origin_views[f] for f in frame_ids]).reshape(-1, 3)
        if offsets is not None:
            rotations = np.array([self._rotation_views[f] for f in frame_ids])
            world = world + np.einsum("kij,kj->ki", rotations, offsets)
        return (world - self._wrist_pos) @ self._wrist_rot_t.T
