"""Batched retargeting of many frames at once with torch (offline datasets): CPU or GPU.

Same model, objectives and limits as the single-frame :class:`Retargeter` (built from the same
:class:`RetargetingOptions`): the wrist frame is the same least-squares palm plane signed by the
handedness cue, the pair terms (vector / position / DexPilot with pinch and finger separation)
come from the same functions, the joints live in the same mimic-aware box, and the solver is the
same projected Levenberg-Marquardt, run on every frame (× every cold-start seed) in lock-step:
blocked variables get an identity row so one batched Cholesky solve serves all frames.

Frames are independent (no warm start across frames, no smoothing): every frame is solved from the
``cold_start_seeds`` starts (as the single-frame path after a reset) or from ``initial_q``, and the
lowest cost wins. Typical use::

    batched = BatchedRetargeter(load_options(shipped_config("allegro", "right")), device="cuda")
    result = batched.process(keypoints)  # (N, 21, 3) m -> result.qpos (N, n) rad
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("the batched retargeting path needs torch: pip install 'torch==2.13.0'") \
        from exc

from hand_perception.core.retargeting.batched_fk import TorchKinematics
from hand_perception.core.retargeting.batched_terms import BatchedTerms, batched_wrist_frames
from hand_perception.core.retargeting.config import RetargetingOptions
from hand_perception.core.retargeting.kinematics import kinematic_tree
from hand_perception.core.retargeting.retargeter import _SEED_FRACTIONS, Retargeter


@dataclasses.dataclass
class BatchedResult:
    """Per frame (N frames): qpos float64 (N, n) rad/m, ``joint_names`` order; full_qpos (N, nq)
    every URDF joint incl. mimic ones; fingertips (N, f, 3) m, wrist-link frame; wrist_pose
    (N, 4, 4) in the arm base frame; cost (N,) m²; valid bool (N,) (False: degenerate palm and no
    earlier valid frame; its row is the neutral pose)."""

    qpos: np.ndarray
    joint_names: list
    full_qpos: np.ndarray
    full_joint_names: list
    fingertips: np.ndarray
    wrist_pose: np.ndarray
    cost: np.ndarray
    valid: np.ndarray


class BatchedRetargeter:
    """Retargets (N, 21, 3) keypoint arrays in batches of ``chunk_size`` frames.

    Args:
        options: the hand config (as for :class:`Retargeter`).
        device: torch device ("cpu", "cuda", "cuda:1", ...).
        dtype: torch.float64 (default on CPU) or torch.float32 (default on CUDA).
        max_iterations: LM iterations per batch (all frames step together).
        chunk_size: frames per batch (memory: ~k·J·3·seeds numbers per frame).
        seeds: cold-start seeds per frame (default: the options' ``cold_start_seeds``, as the
            single-frame path after a reset). The batch runs until its slowest row converges, so
            1 seed is several times faster.
        neighbour_passes: for sequences: after the seeded solve, re-solve every frame from its
            predecessor's solution and keep the lower cost, this many times (a tracking-like warm
            start that rescues frames whose seeds fell into a wrong finger basin).
    """

    def __init__(self, options: RetargetingOptions, device: str = "cpu",
                 dtype: Optional[torch.dtype] = None, max_iterations: int = 40,
                 chunk_size: int = 16384, seeds: Optional[int] = None,
                 neighbour_passes: int = 0) -> None:
        if max_iterations < 1 or chunk_size < 1 or neighbour_passes < 0:
            raise ValueError(f"max_iterations={max_iterations} and chunk_size={chunk_size} "
                             f"must be >= 1, neighbour_passes={neighbour_passes} >= 0")
        self.seeds = options.cold_start_seeds if seeds is None else int(seeds)
        if not 1 <= self.seeds <= len(_SEED_FRACTIONS):
            raise ValueError(f"seeds={seeds} must be in [1, {len(_SEED_FRACTIONS)}]")
        self.neighbour_passes = neighbour_passes
        self.device = torch.device(device)
        self.dtype = dtype or (torch.float32 if self.device.type == "cuda" else torch.float64)
        self.single = Retargeter(options)  # model, pairs and wrist rotation, shared definitions
        self.options = options
        hand = self.single.hand
        ids = self.single._solver.frame_ids + self.single._output_ids
        self.kinematics = TorchKinematics(kinematic_tree(hand, ids), self.device, self.dtype)
        self._num_solver = len(self.single._solver.frame_ids)
        self.terms = BatchedTerms(self.single, self.device, self.dtype)
        self.max_iterations = max_iterations
        self.chunk_size = chunk_size
        self._lower = self._tensor(hand.lower)
        self._upper = self._tensor(hand.upper)

    def _tensor(self, value) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), device=self.device, dtype=self.dtype)

    def process(self, keypoints: np.ndarray, initial_q: Optional[np.ndarray] = None
                ) -> BatchedResult:
        """Retarget keypoints float (N, 21, 3) m (MediaPipe order, any frame per row).

        ``initial_q`` (N, n): start each frame there instead of the cold-start seeds (e.g. a
        previous pass). Raises ``ValueError`` on a wrong shape or non-finite values.
        """
        points = np.asarray(keypoints, dtype=np.float64)
        if points.ndim != 3 or points.shape[1:] != (21, 3):
            raise ValueError(f"keypoints must have shape (N, 21, 3), got {points.shape}")
        if not np.isfinite(points).all():
            bad = np.flatnonzero(~np.isfinite(points).all(axis=(1, 2)))
            raise ValueError(f"keypoints has non-finite values in frame(s) {bad[:10].tolist()}")
        hand = self.single.hand
        if initial_q is not None and np.shape(initial_q) != (len(points), hand.num_joints):
            raise ValueError(f"initial_q must have shape {(len(points), hand.num_joints)}, "
                             f"got {np.shape(initial_q)}")
        size = self.chunk_size
        parts = [self._process_chunk(points[s:s + size],
                                     None if initial_q is None else initial_q[s:s + size])
                 for s in range(0, len(points), size)]
        return self._collect(parts)

    @torch.no_grad()
    def _process_chunk(self, points: np.ndarray, initial_q: Optional[np.ndarray]) -> dict:
        kp = self._tensor(points)
        rotation, origin, valid = batched_wrist_frames(kp, self.options.side)
        incidence, targets = self.terms.build(kp, rotation, origin)
        seeds = self._seeds(len(points), initial_q)  # (S, N, n)
        count = seeds.shape[0]
        q, cost = self._solve(seeds.reshape(-1, seeds.shape[-1]),
                              incidence.repeat(count, 1, 1), targets.repeat(count, 1, 1))
        cost = cost.reshape(count, -1)
        best = cost.argmin(dim=0)
        frames = torch.arange(len(points), device=self.device)
        q, cost = q.reshape(count, len(points), -1)[best, frames], cost[best, frames]
        for _ in range(self.neighbour_passes):
            previous = torch.cat([q[:1], q[:-1]])
            q_next, cost_next = self._solve(previous, incidence, targets)
            better = cost_next < cost
            q = torch.where(better[:, None], q_next, q)
            cost = torch.where(better, cost_next, cost)
        q = torch.where(valid[:, None], q, self._tensor(self.single.hand.neutral()))
        return {"q": q, "cost": cost, "valid": valid, "rotation": rotation, "origin": origin}

    def _seeds(self, frames: int, initial_q: Optional[np.ndarray]) -> torch.Tensor:
        if initial_q is not None:
            return torch.clamp(self._tensor(initial_q), self._lower, self._upper)[None]
        fractions = _SEED_FRACTIONS[:self.seeds]
        span = self._upper - self._lower
        return torch.stack([(self._lower + f * span).expand(frames, -1) for f in fractions])

    def _residual(self, q: torch.Tensor, incidence: torch.Tensor, targets: torch.Tensor):
        """Residuals (B, 3m), their Jacobian (B, 3m, n) and the cost (B,), Huber-reweighted
        (IRLS) as in the single-frame solver when ``huber_delta`` > 0."""
        points, jac = self.kinematics.evaluate(q)
        points, jac = points[:, :self._num_solver], jac[:, :self._num_solver]
        res = incidence @ points - targets  # (B, m, 3)
        jr = (incidence @ jac.flatten(2)).reshape(q.shape[0], -1, 3, q.shape[1])
        delta = self.options.huber_delta
        norms = res.norm(dim=-1)
        if delta > 0.0:
            far = norms > delta
            cost = torch.where(far, 2.0 * delta * norms - delta * delta, norms * norms).sum(1)
            scale = torch.where(far, delta / norms.clamp_min(1e-12), torch.ones_like(norms))
            res, jr = res * scale.sqrt()[..., None], jr * scale.sqrt()[..., None, None]
        else:
            cost = (norms * norms).sum(1)
        return res.flatten(1), jr.reshape(q.shape[0], -1, q.shape[1]), cost

    def _solve(self, q: torch.Tensor, incidence: torch.Tensor, targets: torch.Tensor):
        """Projected LM on every row of ``q`` (B, n) at once; returns (q, cost (B,)).

        Rows leave the working set when they converge (the single-frame stopping rule: the
        model's predicted decrease below ``tolerance`` or ``relative_tolerance`` × the cost, a
        tiny step, or the damping at its cap), so the batch shrinks as it goes.
        """
        q = torch.clamp(q, self._lower, self._upper)
        res, jr, cost = self._residual(q, incidence, targets)
        mu = torch.full_like(cost, 1e-2)
        active = torch.arange(len(q), device=self.device)
        for _ in range(self.max_iterations):
            q_a, cost_a, mu_a = q[active], cost[active], mu[active]
            step, predicted = self._step(q_a, res, jr, mu_a)
            done = ((predicted < torch.clamp_min(self.options.relative_tolerance * cost_a,
                                                 self.options.tolerance))
                    & (predicted > 0)) | (step.abs().amax(1) < 1e-7) | (mu_a >= 1e6)
            keep = ~done
            active, q_a, cost_a, mu_a = active[keep], q_a[keep], cost_a[keep], mu_a[keep]
            step, res, jr = step[keep], res[keep], jr[keep]
            if active.numel() == 0:
                break
            q_new = q_a + step
            res_new, jr_new, cost_new = self._residual(q_new, incidence[active], targets[active])
            accept = cost_new <= cost_a
            q[active] = torch.where(accept[:, None], q_new, q_a)
            cost[active] = torch.where(accept, cost_new, cost_a)
            mu[active] = torch.where(accept, (mu_a / 3.0).clamp_min(1e-9), mu_a * 8.0)
            res = torch.where(accept[:, None], res_new, res)
            jr = torch.where(accept[:, None, None], jr_new, jr)
        return q, cost

    def _step(self, q: torch.Tensor, res: torch.Tensor, jr: torch.Tensor, mu: torch.Tensor):
        """Damped Gauss-Newton steps (B, n) kept in the box, and their predicted decrease (B,).

        As the single-frame solver: outward-blocked variables are held, a variable the step
        would carry past a bound is clamped there and the rest re-solved with that move fixed;
        fixed rows become identity rows so one batched Cholesky solve serves every frame.
        """
        grad = (jr.transpose(1, 2) @ res[..., None])[..., 0]
        hess = jr.transpose(1, 2) @ jr
        lower, upper = self._lower, self._upper
        fixed = ((q <= lower) & (grad > 0)) | ((q >= upper) & (grad < 0))
        diag = hess.diagonal(dim1=1, dim2=2)
        damped = hess + torch.diag_embed(diag * mu[:, None] + 1e-3 * mu[:, None])
        step = torch.zeros_like(q)
        for _ in range(4):
            free = (~fixed).to(self.dtype)
            system = damped * (free[:, :, None] * free[:, None, :]) + torch.diag_embed(1 - free)
            held = step * (1 - free)
            rhs = -(grad + (damped @ held[..., None])[..., 0]) * free + held
            chol, _ = torch.linalg.cholesky_ex(system)
            step = torch.cholesky_solve(rhs[..., None], chol)[..., 0]
            trial = q + step
            over = ~fixed & ((trial < lower) | (trial > upper))
            if not bool(over.any()):
                break
            step = torch.where(over, torch.clamp(trial, lower, upper) - q, step)
            fixed = fixed | over
        step = torch.clamp(q + step, lower, upper) - q
        # grad and hess are half the cost's derivatives (cost = |r|²), as in the single-frame LM
        curvature = (step * (hess @ step[..., None])[..., 0]).sum(1)
        predicted = -(2.0 * (grad * step).sum(1) + curvature)
        return step, predicted

    def _collect(self, parts: list) -> BatchedResult:
        single, hand = self.single, self.single.hand
        q = torch.cat([p["q"] for p in parts])
        rotation = torch.cat([p["rotation"] for p in parts])
        origin = torch.cat([p["origin"] for p in parts])
        out = self.kinematics.points(q)[:, self._num_solver:]  # wrist keypoint + tips, root frame
        rot_t = self._tensor(hand._wrist_rot_t)
        local = (out - self._tensor(hand._wrist_pos)) @ rot_t.T
        pose_rot = rotation @ self._tensor(single.wrist_rotation).T
        pose = torch.zeros(len(q), 4, 4, device=self.device, dtype=self.dtype)
        pose[:, :3, :3], pose[:, 3, 3] = pose_rot, 1.0
        pose[:, :3, 3] = origin - (pose_rot @ local[:, 0, :, None])[..., 0]
        pose = self._tensor(single.arm_from_camera) @ pose
        qn = q.double().cpu().numpy()
        return BatchedResult(
            qpos=qn, joint_names=list(hand.joint_names),
            full_qpos=qn @ hand._a.T + hand._b, full_joint_names=list(hand.full_joint_names),
            fingertips=local[:, 1:].double().cpu().numpy(),
            wrist_pose=pose.double().cpu().numpy(),
            cost=torch.cat([p["cost"] for p in parts]).double().cpu().numpy(),
            valid=torch.cat([p["valid"] for p in parts]).cpu().numpy())
