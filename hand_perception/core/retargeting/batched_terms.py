"""Batched (torch) wrist frames and pair terms: the per-frame definitions of ``wrist_frame.py``
and ``solver.py`` applied to N frames at once."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from hand_perception.core.keypoints import FINGERTIPS, RIGHT
from hand_perception.core.retargeting.retargeter import Retargeter
from hand_perception.core.retargeting.wrist_frame import WristFrameOptions

_PALM = [0, 5, 9, 13, 17]
_MCPS = [5, 9, 13, 17]


def _last_index(flags: torch.Tensor) -> torch.Tensor:
    """For each row, the index of the last row <= it whose flag is set (-1 if none)."""
    index = torch.arange(len(flags), device=flags.device)
    return torch.cummax(torch.where(flags, index, torch.full_like(index, -1)), dim=0).values


def _handedness(kp: torch.Tensor, side: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """Summed MCP cross products (N, 3), signed for ``side``, and their normalised size (N,)."""
    vectors = kp[:, _MCPS] - kp[:, :1]
    first, second = np.triu_indices(len(_MCPS), 1)
    crosses = torch.linalg.cross(vectors[:, first], vectors[:, second], dim=-1)
    total = crosses.sum(1)
    lengths = vectors.norm(dim=-1)
    scale = (lengths[:, first] * lengths[:, second]).sum(1)
    sign = 1.0 if side == RIGHT else -1.0
    return sign * total, total.norm(dim=-1) / scale.clamp_min(1e-12)


def batched_wrist_frames(kp: torch.Tensor, side: str,
                         options: WristFrameOptions = WristFrameOptions()
                         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Palm frames of keypoints (N, 21, 3): rotation (N, 3, 3), origin (N, 3), valid (N,).

    A frame whose palm is degenerate reuses the last good one, as the single-frame estimator
    does; the handedness cue, when too weak, is replaced by the last strong one (the single-frame
    estimator uses the previous frame's normal: the same frame in a continuous sequence).
    """
    palm = kp[:, _PALM]
    centred = palm - palm.mean(dim=1, keepdim=True)
    evals, evecs = torch.linalg.eigh(centred.transpose(1, 2) @ centred)
    sing = evals.clamp_min(0.0).sqrt()  # ascending
    planar = (sing[:, 2] > 1e-9) & (sing[:, 1] >= options.min_planarity * sing[:, 2])
    normal = evecs[:, :, 0]
    cue, sine = _handedness(kp, side)
    strong = _last_index(sine >= options.min_handedness_sine)
    reference = torch.where((strong >= 0)[:, None], cue[strong.clamp_min(0)], cue)
    normal = torch.where(((normal * reference).sum(-1) < 0)[:, None], -normal, normal)
    forward = kp[:, _MCPS].mean(1) - kp[:, 0]
    x_axis = forward - (forward * normal).sum(-1, keepdim=True) * normal
    length = x_axis.norm(dim=-1)
    x_axis = x_axis / length.clamp_min(1e-12)[:, None]
    rotation = torch.stack([x_axis, torch.linalg.cross(normal, x_axis, dim=-1), normal], dim=2)
    good = planar & (length >= 1e-9)
    last = _last_index(good)
    rotation = rotation[last.clamp_min(0)]
    return rotation, kp[:, 0].clone(), last >= 0


class BatchedTerms:
    """The :class:`Retargeter`'s pair objective for N frames: weighted incidence and targets."""

    def __init__(self, single: Retargeter, device: torch.device, dtype: torch.dtype) -> None:
        self.single, self.options = single, single.options
        pairs = single._objective_pairs()
        index = single._link_index
        self._first = torch.as_tensor([a for a, _ in pairs], device=device)
        self._second = torch.as_tensor([b for _, b in pairs], device=device)
        incidence = np.zeros((len(pairs), len(index)))
        for row, (a, b) in enumerate(pairs):
            incidence[row, index[b]] += 1.0
            incidence[row, index[a]] -= 1.0
        opt = self.options
        weights = (opt.vector_weights if opt.objective == "vector" and opt.vector_weights
                   else [1.0] * len(pairs))

        def tensor(value):
            return torch.as_tensor(np.asarray(value, dtype=float), device=device, dtype=dtype)

        self._incidence, self._weights = tensor(incidence), tensor(weights)
        self._wrist_rotation_t = tensor(single.wrist_rotation.T)
        self._root_from_wrist = tensor(single.hand._wrist_rot_t)
        self._tips = [t for t in FINGERTIPS if t in opt.keypoint_links]

    def build(self, kp: torch.Tensor, rotation: torch.Tensor, origin: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Incidence (N, m, k) and root-frame targets (N, m, 3), weights folded in (sqrt)."""
        human = ((kp - origin[:, None]) @ rotation) @ self._wrist_rotation_t
        targets = self.single.scaling * (human[:, self._second] - human[:, self._first])
        weights = self._weights.expand(len(kp), -1)
        if self.options.objective == "dexpilot":
            targets, weights = self._dexpilot(targets)
        sw = weights.sqrt()
        targets = (targets * sw[..., None]) @ self._root_from_wrist
        return self._incidence * sw[..., None], targets

    def _dexpilot(self, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pinch and separation switches of ``solver.dexpilot_terms`` on every frame."""
        opt = self.options
        tips = self._tips
        fingers = len([t for t in tips if t != 4])
        weights = torch.ones(targets.shape[:2], device=targets.device, dtype=targets.dtype)
        if 4 not in tips or not fingers:
            return targets, weights
        base = len(tips)
        pinch = slice(base, base + fingers)  # scaled thumb->finger vectors, as the human's
        dist = targets[:, pinch].norm(dim=-1) / self.single.scaling
        blend = ((dist - opt.pinch_threshold) / (0.5 * opt.pinch_threshold)).clamp(0.0, 1.0)
        unit = targets[:, pinch] / targets[:, pinch].norm(dim=-1, keepdim=True).clamp_min(1e-12)
        targets[:, pinch] = (blend[..., None] * targets[:, pinch]
                             + (1 - blend[..., None]) * opt.pinch_distance * unit)
        weights[:, pinch] = blend + (1 - blend) * opt.pinch_weight
        first, second = np.triu_indices(fingers, 1)
        if len(first):
            sep = slice(base + fingers, base + fingers + len(first))
            both = torch.maximum(blend[:, first], blend[:, second])
            vec = targets[:, sep]
            unit = vec / vec.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            targets[:, sep] = (both[..., None] * vec
                               + (1 - both[..., None]) * opt.separation_distance * unit)
            weights[:, sep] = both + (1 - both) * opt.separation_weight
        return targets, weights
