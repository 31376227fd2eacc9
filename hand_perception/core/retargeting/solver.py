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


_ONES3 = np.ones(3)
Problem = Tuple[np.ndarray, np.ndarray]
"""A solve's pairs: weighted incidence ``D`` float64 (m, k) and root-frame weighted targets
``T`` (m, 3) m; the residuals are ``D P - T`` for link origins ``P`` (k, 3)."""


def _solve_spd(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x with ``matrix @ x = rhs`` for a symmetric positive definite matrix (LAPACK posv)."""
    _, x, info = lapack.dposv(matrix, rhs)
    if info != 0:  # not positive definite (should not happen with the damping): least squares
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]
    return x


class BoundedLM:
    """Projected Levenberg-Marquardt over a :class:`RobotHand`'s independent joints.

    Single-frame hot path (a few hundred µs per solve): with ~10 tiny arrays per iteration, the
    time goes into the number of numpy calls, not into arithmetic, so the code below keeps that
    number low (masks and identity rows instead of gathering sub-matrices; no Jacobian for a
    rejected step).
    """

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
        self._eye = np.eye(hand.num_joints)
        self._zeros = np.zeros(hand.num_joints)  # read-only start of a step

    def problem(self, terms: PairTerms) -> Problem:
        """Weighted incidence ``D`` (m, k) and root-frame weighted targets ``T`` (m, 3)."""
        sw = np.sqrt(terms.weights)
        rows = np.arange(len(sw))
        incidence = np.zeros((len(sw), len(self.frame_ids)))
        incidence[rows, terms.b] += sw
        incidence[rows, terms.a] -= sw
        # wrist frame -> root frame: v_root = R v_wrist (row vectors: v @ R^T)
        targets = (terms.targets * sw[:, None]) @ self.hand._wrist_rot_t
        return incidence, targets

    def _cost(self, q: np.ndarray, problem: Problem, q_ref: np.ndarray, reg: float
              ) -> Tuple[float, tuple]:
        """Cost at ``q`` and what :meth:`_derivatives` needs there (valid until the next FK).

        A rejected step only needs the cost: the Jacobian is built for accepted steps only.
        """
        incidence, targets = problem
        points = self.kinematics.update(q)
        res = incidence @ points - targets  # (m, 3)
        squared = (res * res) @ _ONES3  # (m,) squared pair errors, m²
        delta = q - q_ref
        scale = None
        if self.huber_delta > 0.0 and max(squared.tolist()) > self.huber_delta ** 2:
            fit, scale = self._huber(squared)
        else:
            fit = float(squared.sum())
        return fit + reg * float(delta @ delta), (points, res, scale, delta)

    def _derivatives(self, state: tuple, incidence: np.ndarray, reg: float
                     ) -> Tuple[np.ndarray, np.ndarray]:
        """Gradient (n,) and Gauss-Newton Hessian (n, n) (half the cost's) at the last
        :meth:`_cost`'s ``q``, Huber pairs IRLS-reweighted."""
        points, res, scale, delta = state
        jac = self.kinematics.jacobian(points)
        jr = incidence @ jac.reshape(len(points), -1)  # (m, 3 n): pair rows, xyz-major columns
        if scale is not None:
            res, jr = res * scale, jr * scale
        jr = jr.reshape(-1, delta.size)  # (3 m, n)
        grad = jr.T @ res.reshape(-1) + reg * delta
        hess = jr.T @ jr + reg * self._eye
        return grad, hess

    def _huber(self, squared: np.ndarray) -> Tuple[float, np.ndarray]:
        """Huber cost of pairs with squared errors ``squared`` (m,) m², some beyond
        ``huber_delta``, and the IRLS row scale (m, 1) of their residuals and Jacobians.

        A pair off by more than ``huber_delta`` (m) counts linearly, so a target the robot cannot
        reach (a human pinch on a hand whose thumb does not oppose) stops dragging the others.
        """
        norms = np.sqrt(squared)
        clipped = np.minimum(norms, self.huber_delta)
        # c (2|r| - c) with c = min(|r|, delta): |r|² inside, 2 delta |r| - delta² beyond
        cost = float(clipped @ (2.0 * norms - clipped))
        return cost, np.sqrt(clipped / np.maximum(norms, 1e-300))[:, None]  # 1 inside

    def _step(self, q: np.ndarray, grad: np.ndarray, hess: np.ndarray, mu: float
              ) -> np.ndarray:
        """Damped Gauss-Newton target ``q + step`` (n,) inside the box (= ``q`` if all blocked).

        Variables on a bound whose gradient pushes outward are held. A variable the step would
        carry past a bound is clamped to it and the rest re-solved with that move fixed (a few
        rounds), instead of clipping afterwards: a clipped step is often uphill, and unreachable
        human poses put many joints on their limits.
        """
        lower, upper = self.hand.lower, self.hand.upper
        fixed = ((q <= lower) & (grad > 0.0)) | ((q >= upper) & (grad < 0.0))
        # Marquardt scaling plus a small absolute floor (J^T J is ~1e-3 m²/rad² here).
        damped = hess + (mu * self._eye) * (hess + 1e-3)
        step = self._zeros
        for _ in range(4):
            count = np.count_nonzero(fixed)
            if count == len(q):
                break
            step = (-_solve_spd(damped, grad) if count == 0
                    else self._solve_held(damped, grad, fixed, step))
            trial = q + step
            clipped = np.minimum(np.maximum(trial, lower), upper)
            over = (clipped != trial) & ~fixed
            if not np.count_nonzero(over):
                return clipped
            step = np.where(over, clipped - q, step)
            fixed |= over
        return np.minimum(np.maximum(q + step, lower), upper)

    def _solve_held(self, damped: np.ndarray, grad: np.ndarray, fixed: np.ndarray,
                    step: np.ndarray) -> np.ndarray:
        """Step (n,) minimising the damped model with the ``fixed`` entries held at ``step``'s.

        Held variables get identity rows and columns (their move goes to the right-hand side):
        one SPD solve of the full size instead of gathering the free sub-matrix.
        """
        free = ~fixed
        held = np.where(fixed, step, 0.0)
        system = np.where(free[:, None] & free, damped, self._eye)
        return _solve_spd(system, held - (grad + damped @ held) * free)

    def solve(self, q0: np.ndarray, problem: Problem, q_ref: np.ndarray, reg: float
              ) -> SolveResult:
        """Minimise the pair cost + ``reg * |q - q_ref|²`` from ``q0``; always within bounds.

        problem: from :meth:`problem` or :meth:`FixedPairs.problem`.
        """
        q = self.hand.clip(np.asarray(q0, dtype=float))
        cost, state = self._cost(q, problem, q_ref, reg)
        grad, hess = self._derivatives(state, problem[0], reg)
        mu = self._mu0
        iterations = 0
        for iterations in range(1, self.max_iterations + 1):
            q_new = self._step(q, grad, hess, mu)
            step = q_new - q
            if step @ step < 1e-14:  # |step| < 1e-7 rad: converged (or everything blocked)
                break
            # Quadratic-model decrease of the cost (grad and hess are half the cost's derivatives)
            # when it is negligible another FK+Jacobian is not worth it.
            predicted = -(2.0 * float(grad @ step) + float(step @ (hess @ step)))
            if predicted <= 0.0:  # clipping spoilt the step: damp harder (towards the gradient)
                mu *= 8.0
                if mu > 1e6:
                    break
                continue
            if predicted < max(self.tolerance, self.relative_tolerance * cost):
                break
            new_cost, state = self._cost(q_new, problem, q_ref, reg)
            if new_cost <= cost:
                q, cost = q_new, new_cost
                grad, hess = self._derivatives(state, problem[0], reg)
                mu = max(mu / 3.0, 1e-9)
            else:
                mu *= 8.0
                if mu > 1e6:
                    break
        return SolveResult(q=q, cost=cost, iterations=iterations)


class FixedPairs:
    """Pairs whose links and weights do not change between frames (vector/position objectives):
    the incidence ``D`` is built once and the targets are two small matrix products per frame.

    pairs: (human a, human b) keypoint pairs; link_index: keypoint -> row of the solver's links.
    """

    def __init__(self, solver: BoundedLM, pairs: Sequence[Tuple[int, int]], link_index: dict,
                 weights: Sequence[float] = (), num_keypoints: int = 21) -> None:
        terms = pair_terms(pairs, link_index, np.zeros((num_keypoints, 3)), 1.0, weights)
        self.incidence, _ = solver.problem(terms)
        # (m, K): sqrt(w) (human[b] - human[a]) for every pair at once
        sw = np.sqrt(terms.weights)
        rows = np.arange(len(sw))
        self._difference = np.zeros((len(sw), num_keypoints))
        self._difference[rows, [b for _, b in pairs]] += sw
        self._difference[rows, [a for a, _ in pairs]] -= sw
        self._rot_t = solver.hand._wrist_rot_t

    def problem(self, human: np.ndarray, scaling: float) -> Problem:
        """The solver's problem for human keypoints (K, 3) m in the wrist-link frame."""
        return self.incidence, (scaling * (self._difference @ human)) @ self._rot_t


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
