"""``Retargeter``: human keypoints (21, 3) -> one robot hand's joint angles and wrist pose."""
from __future__ import annotations

import dataclasses
import logging
from typing import Dict, List, Optional, Tuple

import numpy as np

from hand_perception.core.filters import OneEuroOptions
from hand_perception.core.keypoints import BONES, FINGERS, FINGERTIPS, NUM_KEYPOINTS, WRIST
from hand_perception.core.retargeting.config import RetargetingOptions, transform_from_spec
from hand_perception.core.retargeting.resources import resolve_urdf
from hand_perception.core.retargeting.robot_hand import RobotHand
from hand_perception.core.retargeting.smoothing import JointSmoother
from hand_perception.core.retargeting.solver import BoundedLM, FixedPairs, Problem, \
    SolveResult, dexpilot_terms
from hand_perception.core.retargeting.wrist_frame import WristFrameEstimator, \
    validate_keypoints

LOG = logging.getLogger(__name__)
_PALM = (0, 5, 9, 13, 17)
#: Cold-start seeds: fractions of each joint's range, tried in this order (neutral first).
_SEED_FRACTIONS = (0.5, 0.2, 0.8, 0.35, 0.65, 0.05, 0.95)
#: Cost (m²) below which a cost jump is noise, not a lost track (about 0.3 mm per vector).
_RECOVERY_FLOOR = 1e-6


@dataclasses.dataclass
class RetargetingResult:
    """qpos: float64 (n,) independent joints (rad/m), ``joint_names`` order; full_qpos/
    full_joint_names: every URDF joint incl. mimic ones; wrist_pose: float64 (4, 4), the wrist
    link's pose in the robot arm's base frame (m); fingertips: float64 (f, 3) robot fingertip
    positions in the wrist-link frame; valid False (and empty arrays) when no frame was found."""

    qpos: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    joint_names: List[str] = dataclasses.field(default_factory=list)
    full_qpos: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    full_joint_names: List[str] = dataclasses.field(default_factory=list)
    wrist_pose: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4)))
    fingertips: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))
    cost: float = 0.0
    iterations: int = 0
    wrist_frame_degenerate: bool = False
    valid: bool = False
    latency_s: float = 0.0  # lag the output smoothing adds (largest over joints), seconds


def palm_rotation(points: np.ndarray, side: str) -> np.ndarray:
    """Palm frame (3, 3) of complete keypoints (21, 3), same convention as the human side."""
    return WristFrameEstimator().process(points, side).rotation


class Retargeter:
    """Warm-started, bounded retargeting of one hand side onto one robot hand."""

    def __init__(self, options: RetargetingOptions) -> None:
        self.options = options
        urdf = resolve_urdf(options.urdf, options.base_dir or None)
        self.hand = RobotHand(urdf, options.wrist_link, options.locked_joints)
        links = sorted(set(options.keypoint_links.values()) | set(options.fingertip_links))
        for link in links:
            self.hand.frame_id(link, "keypoint_links/fingertip_links entry")
        self._kp_keys = sorted(options.keypoint_links)
        self._kp_ids = [self.hand.frame_id(options.keypoint_links[k]) for k in self._kp_keys]
        offsets = options.palm_offsets
        self._kp_offsets = np.array([offsets.get(k, [0.0] * 3) for k in self._kp_keys],
                                    dtype=float) if offsets else None
        self._tip_ids = [self.hand.frame_id(n) for n in options.fingertip_links]
        used = sorted({k for pair in self._objective_pairs() for k in pair})
        # The solver only evaluates the links its objective uses (Jacobians are the hot path).
        self._link_index = {k: i for i, k in enumerate(used)}
        self._solver = BoundedLM(self.hand, [self.hand.frame_id(options.keypoint_links[k])
                                             for k in used], options.max_iterations,
                                 options.tolerance, options.relative_tolerance,
                                 options.huber_delta)
        # Vector/position pairs and weights are the same every frame: their incidence is built
        # once (DexPilot's weights follow the pinches, its terms are rebuilt per frame).
        self._fixed_pairs = None if options.objective == "dexpilot" else FixedPairs(
            self._solver, self._objective_pairs(), self._link_index,
            options.vector_weights if options.objective == "vector" else ())
        self.geometric_rotation = palm_rotation(self.robot_keypoints(self.hand.neutral()),
                                                options.side)
        configured = options.wrist_rotation()
        self.wrist_rotation = self.geometric_rotation if configured is None else configured
        self.arm_from_camera = transform_from_spec("arm_from_camera", options.arm_from_camera)
        self.scaling = float(options.scaling)
        self._frame = WristFrameEstimator()
        self._smoother = JointSmoother(
            options.smoothing_filter, options.smoothing_alpha,
            OneEuroOptions(min_cutoff=options.one_euro_min_cutoff, beta=options.one_euro_beta,
                           d_cutoff=options.one_euro_d_cutoff, max_gap_s=1e9),
            options.frame_rate_hz)
        self._output_ids = self._kp_ids[:1] + self._tip_ids  # keypoint 0 sorts first
        self._q_prev: Optional[np.ndarray] = None
        self._q_prev2: Optional[np.ndarray] = None
        self._cost_prev = 0.0
        self._stamps: List[float] = []

    def reset(self) -> None:
        """Drop warm start, smoothing and wrist-frame continuity (new person or track)."""
        self._frame.reset()
        self._smoother.reset()
        self._q_prev = None
        self._q_prev2 = None
        self._stamps = []

    def robot_keypoints(self, q: np.ndarray) -> np.ndarray:
        """Robot 'keypoints' at joints ``q`` (n,): float64 (21, 3) m in the wrist-link frame.

        Keypoints without a robot link are filled in plausibly (a missing MCP continues the row
        of knuckles, a missing finger copies its neighbour, a missing joint is interpolated) so
        synthetic data from robot FK is complete; they are never used as targets.
        """
        points = np.full((NUM_KEYPOINTS, 3), np.nan)
        points[self._kp_keys] = self.hand.positions(q, self._kp_ids, self._kp_offsets)
        for fingers in (("index", "middle", "ring", "pinky"), ("pinky", "ring", "middle", "index")):
            for prev2, prev, name in zip(fingers, fingers[1:], fingers[2:]):
                chain, c1, c2 = FINGERS[name], FINGERS[prev], FINGERS[prev2]
                if np.isnan(points[chain[0]]).any() and not np.isnan(points[[c1[0], c2[0]]]).any():
                    shift = points[c1[0]] - points[c2[0]]
                    for k, k1 in zip(chain, c1):
                        points[k] = points[k1] + shift
        for chain in FINGERS.values():
            full = (WRIST,) + chain
            for i in range(1, len(full) - 1):
                if np.isnan(points[full[i]]).any():
                    points[full[i]] = 0.5 * (points[full[i - 1]] + points[full[i + 1]])
        if np.isnan(points).any():
            raise ValueError(f"keypoint_links={self.options.keypoint_links} leave keypoints "
                             f"{np.flatnonzero(np.isnan(points).any(axis=1)).tolist()} undefined")
        return points

    def robot_bone_lengths(self) -> Dict[Tuple[int, int], float]:
        """Lengths (m) of the human bones whose robot counterpart is rigid (pose-independent)."""
        hand = self.hand
        poses = [hand.positions(q, self._kp_ids, self._kp_offsets)
                 for q in (hand.lower, hand.neutral(), hand.upper)]
        index = {k: i for i, k in enumerate(self._kp_keys)}
        lengths = {}
        for a, b in BONES:
            if a in index and b in index:
                values = [np.linalg.norm(p[index[b]] - p[index[a]]) for p in poses]
                if max(values) - min(values) < 1e-6:  # a link pair bridging a joint varies
                    lengths[(a, b)] = float(values[0])
        return lengths

    def set_scaling(self, scaling: float) -> None:
        """Robot/human size ratio applied to human vectors (see ``HandSizeCalibrator``)."""
        if not np.isfinite(scaling) or not 1e-3 <= scaling <= 1e3:
            raise ValueError(f"scaling={scaling!r} must be finite and in [1e-3, 1e3]")
        self.scaling = float(scaling)

    def to_robot_frame(self, keypoints: np.ndarray, rotation: np.ndarray, origin: np.ndarray
                       ) -> np.ndarray:
        """Human keypoints (21, 3) -> the robot wrist-link frame (unscaled), float64 (21, 3)."""
        local = (keypoints - origin) @ rotation
        return local @ self.wrist_rotation.T

    def _objective_pairs(self) -> List[Tuple[int, int]]:
        """Keypoint pairs the objective can use (DexPilot's pinch pairs included)."""
        opt = self.options
        if opt.objective == "vector":
            return [(int(a), int(b)) for a, b in opt.vector_pairs]
        if opt.objective == "position":
            return [(WRIST, k) for k in opt.position_keypoints]
        tips = [t for t in FINGERTIPS if t in opt.keypoint_links]
        fingers = [t for t in tips if t != 4]
        if 4 not in tips:
            return [(WRIST, t) for t in tips]
        return ([(WRIST, t) for t in tips] + [(4, t) for t in fingers]
                + [(a, b) for i, a in enumerate(fingers) for b in fingers[i + 1:]])

    def _problem(self, human: np.ndarray) -> Problem:
        """The solver's pairs for human keypoints (21, 3) m in the robot wrist-link frame."""
        if self._fixed_pairs is not None:
            return self._fixed_pairs.problem(human, self.scaling)
        opt = self.options
        tips = [t for t in FINGERTIPS if t in opt.keypoint_links]
        return self._solver.problem(dexpilot_terms(
            tips, self._link_index, human, self.scaling, opt.pinch_threshold, opt.pinch_distance,
            opt.pinch_weight, opt.separation_distance, opt.separation_weight))

    def process(self, keypoints: np.ndarray, stamp_s: Optional[float] = None
                ) -> RetargetingResult:
        """Retarget keypoints (21, 3) m (camera or hand-centred world frame, MediaPipe order).

        ``stamp_s`` (s, increasing) times the sample for the warm start and the One-Euro filter;
        without it frames are taken ``1/frame_rate_hz`` apart. Raises ``ValueError`` on a wrong
        shape, non-finite values or a stamp not after the last one (state unchanged). The wrist
        pose is that of the keypoints' frame mapped through ``arm_from_camera``.
        """
        points = validate_keypoints(keypoints)
        stamp = self._check_stamp(stamp_s)
        frame = self._frame.process_valid(points, self.options.side)
        if not frame.valid:
            return RetargetingResult()
        human = self.to_robot_frame(points, frame.rotation, frame.origin)
        solved = self._solve(self._problem(human), stamp)
        q_out, latency = self._smoother.process(solved.q, stamp)
        return self._result(q_out, frame, solved, latency)

    def _check_stamp(self, stamp_s: Optional[float]) -> float:
        stamp = self._smoother.next_stamp(stamp_s)
        if not np.isfinite(stamp):
            raise ValueError(f"stamp_s={stamp_s!r} is not finite")
        if self._stamps and stamp <= self._stamps[-1]:
            raise ValueError(f"stamp_s={stamp_s!r} is not after the last one {self._stamps[-1]!r}")
        return stamp

    def _solve(self, problem: Problem, stamp: float) -> SolveResult:
        """Warm-started solve; after a reset, or when the cost jumps, the best of the seeds.

        A jump (``recovery_cost_ratio`` × the last cost) means the warm start fell into another
        local minimum of a finger chain (seen on thumbs with 4 joints and 2 matched points): the
        cold-start seeds are tried as well and the lowest cost wins.
        """
        opt = self.options
        if self._q_prev is None:  # cold start: nothing to stay close to
            solved = self._best_of_seeds(problem, None, 0.0)
        else:
            q0 = self._predict(stamp)
            solved = self._solver.solve(q0, problem, q0, opt.regularization)
            if opt.recovery_cost_ratio > 0.0 and solved.cost > opt.recovery_cost_ratio * max(
                    self._cost_prev, _RECOVERY_FLOOR):
                seeded = self._best_of_seeds(problem, q0, opt.regularization)
                solved = seeded if seeded.cost < solved.cost else solved
        self._q_prev2, self._q_prev = self._q_prev, solved.q
        self._cost_prev = solved.cost
        self._stamps = (self._stamps + [stamp])[-2:]
        return solved

    def _best_of_seeds(self, problem: Problem, q_ref: Optional[np.ndarray], reg: float
                       ) -> SolveResult:
        hand = self.hand
        best = None
        for fraction in _SEED_FRACTIONS[:self.options.cold_start_seeds]:
            seed = hand.lower + fraction * (hand.upper - hand.lower)
            solved = self._solver.solve(seed, problem, seed if q_ref is None else q_ref, reg)
            if best is None or solved.cost < best.cost:
                best = solved
        return best

    def _predict(self, stamp: float) -> np.ndarray:
        """Warm start (n,): the last solution, moved on at its last velocity (constant_velocity).

        Under fast motion the last solution can lie in another basin of the (non-convex) finger
        objective than the new optimum; starting where the joints are heading keeps the solver in
        the right one (LEAP lost track at fast motion without it) and saves iterations.
        """
        if self.options.warm_start == "previous" or self._q_prev2 is None:
            return self._q_prev
        before, last = self._stamps[-2], self._stamps[-1]
        ratio = min(max((stamp - last) / max(last - before, 1e-9), 0.0), 2.0)
        return self.hand.clip(self._q_prev + ratio * (self._q_prev - self._q_prev2))

    def _result(self, q: np.ndarray, frame, solved: SolveResult, latency: float
                ) -> RetargetingResult:
        rot = frame.rotation @ self.wrist_rotation.T
        pose = np.eye(4)
        pose[:3, :3] = rot
        points = self.hand.positions(q, self._output_ids)
        pose[:3, 3] = frame.origin - rot @ points[0]
        return RetargetingResult(
            qpos=q.copy(), joint_names=list(self.hand.joint_names),
            full_qpos=self.hand.full_q(q), full_joint_names=list(self.hand.full_joint_names),
            wrist_pose=self.arm_from_camera @ pose,
            fingertips=points[1:], cost=solved.cost, iterations=solved.iterations,
            wrist_frame_degenerate=frame.degenerate, valid=True, latency_s=latency)
