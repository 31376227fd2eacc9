"""Batched torch forward kinematics and link-origin Jacobians from a :class:`KinematicTree`.

The tree comes from the same pinocchio model the single-frame solver uses (mimic joints are
dependent through ``q_full = A q + b``, locked joints already removed), so both paths see one
kinematic model. Joints are processed level by level (all joints at the same depth at once), so
a batch costs about ``depth`` small batched matrix products whatever its size.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from hand_perception.core.retargeting.kinematics import KinematicTree


def _skew(axes: np.ndarray) -> np.ndarray:
    """(J, 3) -> (J, 3, 3) cross-product matrices."""
    out = np.zeros((len(axes), 3, 3))
    out[:, 0, 1], out[:, 0, 2], out[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
    out[:, 1, 0], out[:, 2, 0], out[:, 2, 1] = axes[:, 2], -axes[:, 1], axes[:, 0]
    return out


class TorchKinematics:
    """Link origins and their Jacobians for a batch of independent joint vectors.

    All tensors live on ``device`` with ``dtype``; positions in the model's root frame (m).
    """

    def __init__(self, tree: KinematicTree, device: torch.device, dtype: torch.dtype) -> None:
        def tensor(value):
            return torch.as_tensor(np.asarray(value), device=device, dtype=dtype)

        self.tree = tree
        self.device, self.dtype = device, dtype
        joints = len(tree.parent)
        self._placement_rot = tensor(tree.rotation)
        self._placement_pos = tensor(tree.translation)
        self._axis = tensor(tree.axis)
        skew = _skew(tree.axis)
        self._k1, self._k2 = tensor(skew), tensor(skew @ skew)
        self._revolute = tensor(~tree.prismatic)
        self._prismatic = tensor(tree.prismatic)
        self._any_prismatic = bool(tree.prismatic.any())
        self._a = tensor(tree.mimic_a)  # (nq, n)
        self._b = tensor(tree.mimic_b)
        qi = tree.q_index.copy()
        qi[0] = 0  # the universe has no q; its angle column is zeroed below
        self._q_of_joint = torch.as_tensor(qi, device=device)
        self._has_q = tensor(tree.q_index >= 0)
        self._levels = [torch.as_tensor(level, device=device) for level in tree.levels]
        self._parents = [torch.as_tensor(tree.parent[level], device=device)
                         for level in tree.levels]
        self._frame_joint = torch.as_tensor(tree.frame_joint, device=device)
        self._frame_pos = tensor(tree.frame_translation)
        # Only (link, joint) pairs where the joint moves the link get a Jacobian column: a hand's
        # links each hang on a short chain, so this is ~5x fewer cross products than k x J.
        frame_of_pair, joint_of_pair = np.nonzero(self._moving_mask(tree, joints))
        nq = len(tree.mimic_b)
        self._pair_frame = torch.as_tensor(frame_of_pair, device=device)
        self._pair_joint = torch.as_tensor(joint_of_pair, device=device)
        self._pair_slot = torch.as_tensor(frame_of_pair * nq + tree.q_index[joint_of_pair],
                                          device=device)
        self._pair_prismatic = torch.as_tensor(tree.prismatic[joint_of_pair], device=device)
        self._num_frames, self._nq = len(tree.frame_joint), nq

    @staticmethod
    def _moving_mask(tree: KinematicTree, joints: int) -> np.ndarray:
        mask = np.zeros((len(tree.frame_joint), joints))
        for row, joint in enumerate(tree.frame_joint):
            while joint > 0:
                mask[row, joint] = 1.0
                joint = tree.parent[joint]
        return mask

    def joint_frames(self, q: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """World rotations (B, J, 3, 3) and origins (B, J, 3) of every joint frame."""
        batch = q.shape[0]
        angle = (q @ self._a.T + self._b)[:, self._q_of_joint] * self._has_q  # (B, J)
        rev = angle * self._revolute
        sin, cos = torch.sin(rev)[..., None, None], torch.cos(rev)[..., None, None]
        eye = torch.eye(3, device=self.device, dtype=self.dtype)
        motion = eye + sin * self._k1 + (1.0 - cos) * self._k2  # Rodrigues, (B, J, 3, 3)
        slide = (angle * self._prismatic)[..., None] * self._axis if self._any_prismatic else None
        rot = eye.expand(batch, len(self._has_q), 3, 3).clone()
        pos = torch.zeros(batch, len(self._has_q), 3, device=self.device, dtype=self.dtype)
        for level, parent in zip(self._levels, self._parents):
            parent_rot = rot[:, parent]
            pre = parent_rot @ self._placement_rot[level]
            origin = pos[:, parent] + (parent_rot @ self._placement_pos[level, :, None])[..., 0]
            if slide is not None:  # prismatic joints slide along their axis (joint frame)
                origin = origin + (pre @ slide[:, level, :, None])[..., 0]
            pos[:, level] = origin
            rot[:, level] = pre @ motion[:, level]
        return rot, pos

    def points(self, q: torch.Tensor) -> torch.Tensor:
        """Link origins (B, k, 3), root frame, for joints ``q`` (B, n)."""
        rot, pos = self.joint_frames(q)
        return self._frame_points(rot, pos)

    def _frame_points(self, rot: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        joint = self._frame_joint
        return pos[:, joint] + (rot[:, joint] @ self._frame_pos[:, :, None])[..., 0]

    def evaluate(self, q: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Origins (B, k, 3) and Jacobians (B, k, 3, n) w.r.t. the independent joints."""
        rot, pos = self.joint_frames(q)
        points = self._frame_points(rot, pos)
        joint = self._pair_joint
        axis = (rot @ self._axis[:, :, None])[..., 0][:, joint]  # (B, P, 3) world axes
        lever = points[:, self._pair_frame] - pos[:, joint]
        a0, a1, a2 = axis.unbind(-1)
        l0, l1, l2 = lever.unbind(-1)
        col = torch.stack([a1 * l2 - a2 * l1, a2 * l0 - a0 * l2, a0 * l1 - a1 * l0], dim=-1)
        col = torch.where(self._pair_prismatic[None, :, None], axis, col)
        batch = q.shape[0]
        jac = torch.zeros(batch, self._num_frames * self._nq, 3, device=self.device,
                          dtype=self.dtype)
        jac[:, self._pair_slot] = col
        jac = jac.reshape(batch, self._num_frames, self._nq, 3).transpose(2, 3)
        return points, jac @ self._a
