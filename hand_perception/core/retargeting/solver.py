"""Objectives and the bounded Levenberg-Marquardt solver of the retargeting core.

Every objective is a set of weighted *link-pair vectors*: the vector between two robot link
origins should equal a target vector (metres, wrist-link frame). Vector retargeting matches
scaled human bone/finger vectors, position retargeting matches wrist->keypoint vectors (the wrist
link is fixed, so this is positions), DexPilot adds thumb->finger vectors whose target shrinks to a
small pinch distance when the human pinches.

The solver is a projected Levenberg-Marquardt on the independent joints with analytic pinocchio
Jacobians: variables sitting on a bound whose gradient pushes outward are frozen, the step is
solved on the rest and then clipped into the box, so every returned solution is inside the
(mimic-aware) joint limits by construction.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np

from hand_perception.core.retargeting.robot_hand import RobotHand


@dataclasses.dataclass
class PairTerms:
    """Link-pair residual terms: ``P[b] - P[a] ≈ targets`` with ``weights``.

    a, b: int (m,) indices into ``frame_ids``; targets: float64 (m, 3) m; weights: float64 (m,).
    """

    a: np.ndarray
    b: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


@dataclasses.dataclass
class SolveResult:
    """q: float64 (n,) rad/m within bounds; cost: weighted squared error (m²); iterations done."""

    q: np.ndarray
    cost: float
    iterations: int


class BoundedLM:
    """Projected Levenberg-Marquardt over a :class:`RobotHand`'s independent joints."""

    def __init__(self, hand: RobotHand, frame_ids: Sequence[int], max_iterations: int = 30,
                 tolerance: float = 1e-9) -> None:
        self.hand = hand
        self.frame_ids = list(frame_ids)
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self._mu0 = 1e-3

    def _evaluate(self, q: np.ndarray, terms: PairTerms, q_ref: np.ndarray, reg: float
                  ) -> Tuple[float, np.ndarray, np.ndarray]:
        """Cost, gradient (n,) and Gauss-Newton Hessian (n, n) at ``q``."""
        points, jac = self.hand.positions_and_jacobians(q, self.frame_ids)
        sw = np.sqrt(terms.weights)[:, None]
        res = (points[terms.b] - points[terms.a] - terms.targets) * sw
        jr = (jac[terms.b] - jac[terms.a]) * sw[:, :, None]
        jr = jr.reshape(-1, q.size)
        res = res.reshape(-1)
        delta = q - q_ref
        cost = float(res @ res + reg * (delta @ delta))
        grad = jr.T @ res + reg * delta
        hess = jr.T @ jr
        hess.flat[::q.size + 1] += reg
        return cost, grad, hess

    def solve(self, q0: np.ndarray, terms: PairTerms, q_ref: np.ndarray, reg: float
              ) -> SolveResult:
        """Minimise the pair cost + ``reg * |q - q_ref|²`` from ``q0``; always within bounds."""
        lower, upper = self.hand.lower, self.hand.upper
        q = self.hand.clip(np.asarray(q0, dtype=float))
        cost, grad, hess = self._evaluate(q, terms, q_ref, reg)
        mu = self._mu0
        iterations = 0
        for iterations in range(1, self.max_iterations + 1):
            free = ~(((q <= lower) & (grad > 0.0)) | ((q >= upper) & (grad < 0.0)))
            if not free.any():
                break
            h = hess.copy() if free.all() else hess[np.ix_(free, free)]
            # Marquardt scaling plus a small absolute floor (J^T J is ~1e-3 m²/rad² here).
            h.flat[::h.shape[0] + 1] *= 1.0 + mu
            h.flat[::h.shape[0] + 1] += 1e-3 * mu
            step = np.zeros_like(q)
            step[free] = -np.linalg.solve(h, grad[free])
            q_new = np.minimum(np.maximum(q + step, lower), upper)
            step = q_new - q
            # Quadratic-model decrease: when it is negligible another FK+Jacobian is not worth it.
            predicted = -(grad @ step + 0.5 * step @ hess @ step)
            if np.abs(step).max() < 1e-7:
                break
            if predicted <= 0.0:  # clipping spoilt the step: damp harder (towards the gradient)
                mu *= 8.0
                if mu > 1e6:
                    break
                continue
            if predicted < max(self.tolerance, 1e-3 * cost):
                break
            new_cost, new_grad, new_hess = self._evaluate(q_new, terms, q_ref, reg)
            if new_cost <= cost:
                q, cost, grad, hess = q_new, new_cost, new_grad, new_hess
                mu = max(mu / 3.0, 1e-9)
            else:
                mu *= 8.0
                if mu > 1e6:
                    break
        return SolveResult(q=q, cost=cost, iterations=iterations)


def pair_terms(pairs: Sequence[Tuple[int, int]], link_index: dict, human: np.ndarray,
               scaling: float) -> PairTerms:
    """Vector terms: robot link vector a->b ≈ ``scaling`` × human vector (keypoints a->b)."""
    a = np.array([link_index[p] for p, _ in pairs], dtype=int)
    b = np.array([link_index[q] for _, q in pairs], dtype=int)
    first = np.array([p for p, _ in pairs], dtype=int)
    second = np.array([q for _, q in pairs], dtype=int)
    targets = scaling * (human[second] - human[first])
    return PairTerms(a=a, b=b, targets=targets, weights=np.ones(len(pairs)))


def dexpilot_terms(tips: List[int], link_index: dict, human: np.ndarray, scaling: float,
                   threshold: float, pinch_distance: float, pinch_weight: float) -> PairTerms:
    """Wrist->tip vectors plus thumb->finger vectors that shrink to ``pinch_distance`` on a pinch.

    The switch is blended linearly between ``threshold`` and 1.5× it (human distance, metres)
    so the target does not jump when the human hovers at the threshold.
    """
    base = pair_terms([(0, t) for t in tips], link_index, human, scaling)
    thumb = 4
    fingers = [t for t in tips if t != thumb]
    if thumb not in tips or not fingers:
        return base
    pinch = pair_terms([(thumb, t) for t in fingers], link_index, human, scaling)
    human_vec = human[fingers] - human[thumb]
    dist = np.linalg.norm(human_vec, axis=1)
    blend = np.clip((dist - threshold) / (0.5 * threshold), 0.0, 1.0)[:, None]
    unit = human_vec / np.maximum(dist, 1e-9)[:, None]
    pinch.targets = blend * pinch.targets + (1.0 - blend) * pinch_distance * unit
    pinch.weights = blend[:, 0] + (1.0 - blend[:, 0]) * pinch_weight
    return PairTerms(a=np.concatenate([base.a, pinch.a]), b=np.concatenate([base.b, pinch.b]),
                     targets=np.concatenate([base.targets, pinch.targets]),
                     weights=np.concatenate([base.weights, pinch.weights]))
