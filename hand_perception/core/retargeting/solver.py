"""Objectives and the bounded Levenberg-Marquardt solver of the retargeting core.

Every objective is a set of weighted *link-pair vectors*: the vector between two robot link
origins should equal a target vector (metres, wrist-link frame). Vector retargeting matches
scaled human bone/finger vectors, position retargeting matches wrist->keypoint vectors (the wrist
link is fixed, so this is positions), DexPilot adds thumb->finger vectors whose target shrinks to a
small pinch distance when the human pinches, and finger->finger vectors whose target becomes a
minimum separation when two fingers pinch the thumb together (so they do not collide).

The solver is a projected Levenberg-Marquardt on the independent joints with analytic Jacobians
(:class:`~hand_perception.core.retargeting.kinematics.PointJacobians`): variables sitting on a
bound whose gradient pushes outward are frozen, the step is solved on the rest and then clipped
into the box, so every returned solution is inside the (mimic-aware) joint limits by construction.
Pairs are applied as a weighted incidence matrix ``D`` (m, k): residuals ``D P - T`` and their
Jacobian ``D J`` are two small matrix products instead of per-pair indexing.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np
from scipy.linalg import lapack

from hand_perception.core.retargeting.kinematics import PointJacobians
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


def _solve_spd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x with ``matrix @ x = rhs`` for a symmetric positive definite matrix (LAPACK posv)."""
    _, x, info = lapack.dposv(matrix, rhs)
    if info != 0:  # not positive definite (should not happen with the damping): least squares
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]
    return x


class BoundedLM:
    """Projected Levenberg-Marquardt over a :class:`RobotHand`'s independent joints."""

    def __init__(self, hand: RobotHand, frame_ids: Sequence[int], max_iterations: int = 30,
                 tolerance: float = 1e-9, relative_tolerance: float = 1e-3,
                 huber_delta: float = 0.0) -> None:
        self.hand = hand
        self.huber_delta = huber_delta
        self.frame_ids = list(frame_ids)
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self.relative_tolerance = relative_tolerance
        self.kinematics = PointJacobians(hand, self.frame_ids)
        # Initial damping: slightly above pure Gauss-Newton, which overshoots on the large
        # residuals of unreachable (real) poses and then needs rejected evaluations.
        self._mu0 = 1e-2
        self._diag = np.arange(hand.num_joints)

    def problem(self, terms: PairTerms) -> Tuple[np.ndarray, np.ndarray]:
        """Weighted incidence ``D`` (m, k) and root-frame weighted targets ``T`` (m, 3)."""
        sw = np.sqrt(terms.weights)
        rows = np.arange(len(sw))
        incidence = np.zeros((len(sw), len(self.frame_ids)))
        incidence[rows, terms.b] += sw
        incidence[rows, terms.a] -= sw
        # wrist frame -> root frame: v_root = R v_wrist (row vectors: v @ R^T)
        targets = (terms.targets * sw[:, None]) @ self.hand._wrist_rot_t
        return incidence, targets

    def _evaluate(self, q: np.ndarray, problem: Tuple[np.ndarray, np.ndarray],
                  q_ref: np.ndarray, reg: float) -> Tuple[float, np.ndarray, np.ndarray]:
        """Cost, gradient (n,) and Gauss-Newton Hessian (n, n) at ``q``."""
        incidence, targets = problem
        points, jac = self.kinematics.evaluate(q)
        res = incidence @ points - targets
        jr = (incidence @ jac.reshape(len(points), -1)).reshape(len(res), 3, q.size)
        delta = q - q_ref
        if self.huber_delta > 0.0:
            fit, res, jr = self._huber(res, jr)
        else:
            fit = float((res * res).sum())
        res, jr = res.reshape(-1), jr.reshape(-1, q.size)
        cost = fit + float(reg * (delta @ delta))
        grad = jr.T @ res + reg * delta
        hess = jr.T @ jr
        hess[self._diag, self._diag] += reg
        return cost, grad, hess

    def _huber(self, res: np.ndarray, jr: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
        """Huber cost of the pair residuals (m, 3) and IRLS-reweighted residuals/Jacobian.

        A pair off by more than ``huber_delta`` (m) counts linearly, so a target the robot cannot
        reach (a human pinch on a hand whose thumb does not oppose) stops dragging the others.
        """
        delta = self.huber_delta
        norms = np.sqrt((res * res).sum(axis=1))
        far = norms > delta
        if not far.any():
            return float((norms * norms).sum()), res, jr
        cost = float(np.where(far, 2.0 * delta * norms - delta * delta, norms * norms).sum())
        scale = np.sqrt(np.where(far, delta / np.maximum(norms, 1e-12), 1.0))
        return cost, res * scale[:, None], jr * scale[:, None, None]

    def _step(self, q: np.ndarray, grad: np.ndarray, hess: np.ndarray, mu: float
              ) -> np.ndarray:
        """Damped Gauss-Newton step (n,) that stays in the box; zero when everything is blocked.

        Variables on a bound whose gradient pushes outward are held. A variable the step would
        carry past a bound is clamped to it and the rest re-solved with that move fixed (a few
        rounds), instead of clipping afterwards: a clipped step is often uphill, and unreachable
        human poses put many joints on their limits.
        """
        lower, upper = self.hand.lower, self.hand.upper
        fixed = ((q <= lower) & (grad > 0.0)) | ((q >= upper) & (grad < 0.0))
        step = np.zeros_like(q)
        damped = hess.copy()
        # Marquardt scaling plus a small absolute floor (J^T J is ~1e-3 m²/rad² here).
        damped[self._diag, self._diag] = hess[self._diag, self._diag] * (1.0 + mu) + 1e-3 * mu
        for _ in range(4):
            if fixed.all():
                break
            if not fixed.any():
                step = -_solve_spd(damped, grad)
            else:
                free = np.flatnonzero(~fixed)
                rhs = grad[free] + damped[free][:, fixed] @ step[fixed]
                step[free] = -_solve_spd(damped[free][:, free], rhs)
            trial = q + step
            over = ~fixed & ((trial < lower) | (trial > upper))
            if not over.any():
                break
            step[over] = np.minimum(np.maximum(trial[over], lower[over]), upper[over]) - q[over]
            fixed |= over
        return np.minimum(np.maximum(q + step, lower), upper) - q

    def solve(self, q0: np.ndarray, terms: PairTerms, q_ref: np.ndarray, reg: float
              ) -> SolveResult:
        """Minimise the pair cost + ``reg * |q - q_ref|²`` from ``q0``; always within bounds."""
        problem = self.problem(terms)
        q = self.hand.clip(np.asarray(q0, dtype=float))
        cost, grad, hess = self._evaluate(q, problem, q_ref, reg)
        mu = self._mu0
        iterations = 0
        for iterations in range(1, self.max_iterations + 1):
            step = self._step(q, grad, hess, mu)
            if np.abs(step).max() < 1e-7:
                break
            # Quadratic-model decrease of the cost (grad and hess are half the cost's derivatives)
            # when it is negligible another FK+Jacobian is not worth it.
            predicted = -(2.0 * grad @ step + step @ hess @ step)
            if predicted <= 0.0:  # clipping spoilt the step: damp harder (towards the gradient)
                mu *= 8.0
                if mu > 1e6:
                    break
                continue
            if predicted < max(self.tolerance, self.relative_tolerance * cost):
                break
            q_new = q + step
            new_cost, new_grad, new_hess = self._evaluate(q_new, problem, q_ref, reg)
            if new_cost <= cost:
                q, cost, grad, hess = q_new, new_cost, new_grad, new_hess
                mu = max(mu / 3.0, 1e-9)
            else:
                mu *= 8.0
                if mu > 1e6:
                    break
        return SolveResult(q=q, cost=cost, iterations=iterations)


def pair_terms(pairs: Sequence[Tuple[int, int]], link_index: dict, human: np.ndarray,
               scaling: float, weights: Sequence[float] = ()) -> PairTerms:
    """Vector terms: robot link vector a->b ≈ ``scaling`` × human vector (keypoints a->b)."""
    a = np.array([link_index[p] for p, _ in pairs], dtype=int)
    b = np.array([link_index[q] for _, q in pairs], dtype=int)
    first = np.array([p for p, _ in pairs], dtype=int)
    second = np.array([q for _, q in pairs], dtype=int)
    targets = scaling * (human[second] - human[first])
    w = np.asarray(weights, dtype=float) if len(weights) else np.ones(len(pairs))
    return PairTerms(a=a, b=b, targets=targets, weights=w)


def _concat(*parts: PairTerms) -> PairTerms:
    return PairTerms(a=np.concatenate([p.a for p in parts]),
                     b=np.concatenate([p.b for p in parts]),
                     targets=np.concatenate([p.targets for p in parts]),
                     weights=np.concatenate([p.weights for p in parts]))


def _switch(dist: np.ndarray, threshold: float) -> np.ndarray:
    """1 far apart, 0 touching; linear between ``threshold`` and 1.5× it (no target jumps)."""
    return np.clip((dist - threshold) / (0.5 * threshold), 0.0, 1.0)


def dexpilot_terms(tips: List[int], link_index: dict, human: np.ndarray, scaling: float,
                   threshold: float, pinch_distance: float, pinch_weight: float,
                   separation_distance: float = 0.02, separation_weight: float = 10.0
                   ) -> PairTerms:
    """DexPilot terms (Handa et al. 2020), targets in metres, wrist-link frame.

    Wrist->tip vectors; thumb->finger vectors whose target shrinks to ``pinch_distance`` (weight
    ``pinch_weight``) when the human pinches (distance below ``threshold``); finger->finger
    vectors whose target becomes a ``separation_distance`` apart along the human direction (weight
    ``separation_weight``) when both fingers pinch the thumb, so they do not collide.
    """
    base = pair_terms([(0, t) for t in tips], link_index, human, scaling)
    thumb = 4
    fingers = [t for t in tips if t != thumb]
    if thumb not in tips or not fingers:
        return base
    pinch = pair_terms([(thumb, t) for t in fingers], link_index, human, scaling)
    human_vec = human[fingers] - human[thumb]
    dist = np.linalg.norm(human_vec, axis=1)
    blend = _switch(dist, threshold)
    unit = human_vec / np.maximum(dist, 1e-9)[:, None]
    pinch.targets = blend[:, None] * pinch.targets + (1.0 - blend[:, None]) * pinch_distance * unit
    pinch.weights = blend + (1.0 - blend) * pinch_weight
    if len(fingers) < 2:
        return _concat(base, pinch)
    return _concat(base, pinch, _separation_terms(fingers, blend, link_index, human, scaling,
                                                  separation_distance, separation_weight))


def _separation_terms(fingers: List[int], pinch_blend: np.ndarray, link_index: dict,
                      human: np.ndarray, scaling: float, distance: float, weight: float
                      ) -> PairTerms:
    """Finger->finger vectors: scaled human vector, or ``distance`` apart when both pinch."""
    first, second = np.triu_indices(len(fingers), 1)
    pairs = [(fingers[i], fingers[j]) for i, j in zip(first, second)]
    terms = pair_terms(pairs, link_index, human, scaling)
    # 0 when both fingers pinch the thumb, 1 when at least one is clear of it.
    both = np.maximum(pinch_blend[first], pinch_blend[second])
    vec = terms.targets
    unit = vec / np.maximum(np.linalg.norm(vec, axis=1), 1e-9)[:, None]
    terms.targets = both[:, None] * vec + (1.0 - both[:, None]) * distance * unit
    terms.weights = both + (1.0 - both) * weight
    return terms
