"""Action chunks: the next H robot-hand commands at a fixed step, predicted from recent commands.

From the retargeted commands (joints (D,), optionally the wrist pose (4, 4), stamped with the
camera time) predict those at ``t_k = stamp + latency_compensation_s + k * dt``, k < H: the robot
is told where the hand *will* be when the command takes effect (VLA-style action chunk).

Predictor ``"constant_velocity"`` (damped):
  * velocity: the least-squares slope of each joint (and of the wrist position) against the
    actual stamps of the last ``history`` samples no older than ``history_window_s``. Fitting on
    the stamps, not on sample indices, keeps it exact under irregular or jittery frame times;
    averaging over several samples damps the retargeting noise.
  * extrapolation from the newest sample with exponential damping of time constant ``damping_s``:
    ``x(t_last + tau) = x_last + v * T * (1 - exp(-tau / T))``. Far predictions approach
    ``x_last + v * T`` instead of running away (hands do not keep moving at constant speed);
    ``damping_s = 0`` is plain constant velocity, exact on linear motion.
  * wrist orientation: the rotation vectors ``log(R_last^T R_i)`` of the history relative to the
    newest orientation are linear in time under a constant (body-frame) angular velocity, so their
    slope is omega and ``R(tau) = R_last exp(omega * g(tau))`` with the same damping ``g``: no
    component-wise quaternion extrapolation, always a proper rotation.
  * joints are clamped into the joint limits.
Predictor ``"hold"``: zero-order hold (the baseline).

Hand lost (``process(stamp, None)``): the command trajectory last sent is held at its value at
the first lost call (wrist too) until ``hold_s`` after the last observation's command time; then
the joints follow a cosine ramp over ``ramp_s`` to the safe pose (zero speed at both ends, peak
speed ``pi / 2 * |safe - hold| / ramp_s``). The wrist stays where it was. Resume: after a loss or
a track change the chunk starts where the previous chunk says the robot is and every action is
rate-limited towards the prediction (``resume_speed`` per joint, ``resume_linear_speed`` and
``resume_angular_speed`` for the wrist) until the prediction is reached without limiting.

Measured (``python -m hand_perception.core.action_chunk inspire 0``, then ``allegro 0``):
RMS joint error in degrees against the retargeted trajectory itself, 30 Hz, +-4 ms stamp jitter,
0.3-1 Hz joint sinusoids (bench_solve), latency 0, "cv" = defaults (history 4, damping 0.3 s)::

    lead [ms]            33    67   100   133   200   300
    inspire  hold      2.71  5.37  8.01 10.60 15.57 22.30
    inspire  cv        0.89  2.09  3.66  5.48  9.54 16.43
    allegro  hold      3.70  7.33 10.92 14.44 21.16 30.09
    allegro  cv        1.31  3.07  5.35  7.95 13.64 23.22

3 mm keypoint noise (inspire): 4.50 vs 4.65 at 33 ms, 6.64 vs 8.93 at 100 ms. Undamped is
slightly better beyond ~150 ms on these sinusoids; damping is kept for bounded far predictions.
"""
from __future__ import annotations

import collections
import dataclasses
import math
from typing import Deque, Optional, Sequence, Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from hand_perception.core.options import require_choice, require_int, require_range

PREDICTORS = ("constant_velocity", "hold")
STATES = ("idle", "tracking", "resuming", "holding", "ramping", "safe")


@dataclasses.dataclass
class ActionChunkOptions:
    """horizon: H actions per chunk; dt: s between actions; history: samples of the velocity fit
    (>= 2); history_window_s: older samples are not fitted; latency_compensation_s: time from the
    input stamp to the first action; predictor: one of PREDICTORS; damping_s: time constant of the
    extrapolation damping (0 = none); hold_s: hold after the last observation before the ramp;
    ramp_s: duration of the cosine ramp to the safe pose; resume_speed (rad/s or m/s per joint),
    resume_linear_speed (m/s), resume_angular_speed (rad/s): rate limits after a loss."""

    horizon: int = 10
    dt: float = 0.033
    history: int = 4
    history_window_s: float = 0.25
    latency_compensation_s: float = 0.1
    predictor: str = "constant_velocity"
    damping_s: float = 0.3
    hold_s: float = 0.3
    ramp_s: float = 1.0
    resume_speed: float = 2.0
    resume_linear_speed: float = 0.5
    resume_angular_speed: float = 2.0

    def __post_init__(self) -> None:
        require_int("horizon", self.horizon, 1, 1000)
        require_int("history", self.history, 2, 1000)
        require_range("dt", self.dt, 1e-4, 10.0)
        require_range("history_window_s", self.history_window_s, 1e-3, 60.0)
        require_range("latency_compensation_s", self.latency_compensation_s, 0.0, 10.0)
        require_choice("predictor", self.predictor, PREDICTORS)
        require_range("damping_s", self.damping_s, 0.0, 60.0)
        require_range("hold_s", self.hold_s, 0.0, 60.0)
        require_range("ramp_s", self.ramp_s, 1e-3, 60.0)
        for name in ("resume_speed", "resume_linear_speed", "resume_angular_speed"):
            require_range(name, getattr(self, name), 1e-3, 1e3)


@dataclasses.dataclass
class ActionChunkResult:
    """actions: float64 (H, D) joint commands (rad or m); wrist_poses: float64 (H, 4, 4) wrist
    poses (m, the input poses' frame) or (0, 4, 4) when unknown; times_s: float64 (H,) when each
    action applies, in the input stamps' time base; state: one of STATES. Empty: no command."""

    actions: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))
    wrist_poses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4, 4)))
    times_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    state: str = "idle"
    predictor: str = ""

    @property
    def empty(self) -> bool:
        return self.actions.shape[0] == 0


# One observation (stamp s, joints (D,), wrist pose (4, 4) or None); the hold/ramp plan.
_Sample = collections.namedtuple("_Sample", "stamp joints pose")
_Lost = collections.namedtuple("_Lost", "joints pose ramp_start")


def damped_lead(lead: np.ndarray, damping_s: float) -> np.ndarray:
    """Effective extrapolation time (s) for leads (s): ``T (1 - exp(-lead / T))``, or ``lead``
    itself when ``damping_s`` (T) is 0; negative leads give 0."""
    lead = np.maximum(np.asarray(lead, dtype=float), 0.0)
    return lead if damping_s <= 0.0 else damping_s * -np.expm1(-lead / damping_s)


def fitted_slope(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of values (K, M) against times (K,) s: (M,) per second; 0 if K < 2."""
    centred = times - times.mean()
    denominator = float(centred @ centred)
    if len(times) < 2 or denominator <= 1e-18:
        return np.zeros(values.shape[1])
    return centred @ (values - values.mean(axis=0)) / denominator


def _check_pose(pose: np.ndarray) -> np.ndarray:
    array = np.asarray(pose, dtype=float)
    if array.shape != (4, 4) or not np.isfinite(array).all():
        raise ValueError(f"wrist_pose must be a finite (4, 4) matrix, got shape {array.shape}")
    rot = array[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) or np.linalg.det(rot) < 0:
        raise ValueError("wrist_pose: the 3x3 block is not a rotation matrix")
    return array


def _interpolate_pose(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    """Pose between a and b (4, 4): linear translation, geodesic rotation."""
    out = np.eye(4)
    ra = Rotation.from_matrix(a[:3, :3])
    step = (ra.inv() * Rotation.from_matrix(b[:3, :3])).as_rotvec()
    out[:3, :3] = (ra * Rotation.from_rotvec(fraction * step)).as_matrix()
    out[:3, 3] = (1.0 - fraction) * a[:3, 3] + fraction * b[:3, 3]
    return out


def sample_chunk(chunk: ActionChunkResult, t: float) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The chunk's joints (D,) and wrist pose (4, 4) or None at time ``t`` (s), linearly
    interpolated between actions and held beyond both ends."""
    times = chunk.times_s
    index = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1))
    following = min(index + 1, len(times) - 1)
    span = times[following] - times[index]
    fraction = float(np.clip((t - times[index]) / span, 0.0, 1.0)) if span > 0 else 0.0
    joints = (1.0 - fraction) * chunk.actions[index] + fraction * chunk.actions[following]
    if chunk.wrist_poses.shape[0] == 0:
        return joints, None
    return joints, _interpolate_pose(chunk.wrist_poses[index], chunk.wrist_poses[following],
                                     fraction)


class ActionChunker:
    """Predicts action chunks for one robot hand from its retargeted commands.

    lower, upper: float (D,) joint limits (rad or m; +-inf for none). safe_pose: float (D,) the
    pose the joints ramp to when the hand is lost; None = every joint's value closest to 0 within
    its limits (the URDF zero, an open flat hand on the shipped hands).
    """

    def __init__(self, options: ActionChunkOptions, lower: np.ndarray, upper: np.ndarray,
                 safe_pose: Optional[np.ndarray] = None) -> None:
        self.options = options
        self.lower = np.asarray(lower, dtype=float).reshape(-1)
        self.upper = np.asarray(upper, dtype=float).reshape(-1)
        if self.lower.shape != self.upper.shape or np.any(self.lower > self.upper):
            raise ValueError(f"joint limits lower={self.lower} upper={self.upper} are inconsistent")
        safe = np.zeros_like(self.lower) if safe_pose is None else np.asarray(safe_pose, float)
        if safe.shape != self.lower.shape or not np.isfinite(safe).all():
            raise ValueError(f"safe_pose={safe_pose!r} must be {self.lower.size} finite values")
        if safe_pose is not None and (np.any(safe < self.lower) or np.any(safe > self.upper)):
            raise ValueError(f"safe_pose={safe.tolist()} is outside the joint limits")
        self.safe_pose = np.clip(safe, self.lower, self.upper)
        self._history: Deque[_Sample] = collections.deque(maxlen=options.history)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next observation starts a fresh chunk without rate limiting."""
        self._history.clear()
        self._last_observation: Optional[float] = None
        self._last_chunk = ActionChunkResult()
        self._lost: Optional[_Lost] = None
        self._resuming = False

    def process(self, stamp_s: float, joints: Optional[np.ndarray] = None,
                wrist_pose: Optional[np.ndarray] = None, new_track: bool = False
                ) -> ActionChunkResult:
        """Chunk after the command ``joints`` (D,) (rad/m) and ``wrist_pose`` (4, 4) (m, any fixed
        frame, or None) observed at ``stamp_s`` (s); ``joints=None`` means no hand at
        ``stamp_s`` (hold / ramp). ``new_track``: another hand drives this robot hand from now on
        (history dropped, rate-limited hand-over). ValueError (state unchanged) for bad values or
        a stamp not after the last observation's. Empty result before the first observation."""
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp_s={stamp_s!r} must be finite")
        if self._last_observation is not None and stamp <= self._last_observation:
            raise ValueError(f"stamp_s={stamp!r} is not after the last observation "
                             f"({self._last_observation!r}): out-of-order input")
        if joints is None:
            return self._lost_chunk(stamp)
        q = np.asarray(joints, dtype=float)
        if q.shape != self.lower.shape or not np.isfinite(q).all():
            raise ValueError(f"joints must be {self.lower.size} finite values, got {q.tolist()}")
        pose = None if wrist_pose is None else _check_pose(wrist_pose)
        if new_track:
            self._history.clear()
        if new_track or self._lost is not None:
            self._resuming = not self._last_chunk.empty
            self._lost = None
        self._history.append(_Sample(stamp, q, pose))
        while stamp - self._history[0].stamp > self.options.history_window_s:
            self._history.popleft()
        self._last_observation = stamp
        result = self._predicted_chunk(stamp)
        if self._resuming:
            self._resuming = self._rate_limit(result)
            result.state = "resuming" if self._resuming else "tracking"
        self._last_chunk = result
        return result

    def _times(self, stamp: float) -> np.ndarray:
        opt = self.options
        return stamp + opt.latency_compensation_s + opt.dt * np.arange(opt.horizon)

    def _predicted_chunk(self, stamp: float) -> ActionChunkResult:
        opt = self.options
        times = self._times(stamp)
        samples = list(self._history)
        stamps = np.array([s.stamp for s in samples])
        newest = samples[-1]
        moving = opt.predictor == "constant_velocity"
        lead = damped_lead(times - stamp, opt.damping_s) if moving else np.zeros(opt.horizon)
        velocity = fitted_slope(stamps, np.array([s.joints for s in samples])) if moving else 0.0
        actions = np.clip(newest.joints + lead[:, None] * velocity, self.lower, self.upper)
        poses = np.zeros((0, 4, 4))
        if newest.pose is not None:
            # Fit the wrist over the trailing samples that have a pose.
            first = max((i + 1 for i, s in enumerate(samples) if s.pose is None), default=0)
            with_pose = samples[first:]
            poses = self._predicted_wrist(stamps[first:], np.array([s.pose for s in with_pose]),
                                          lead)
        return ActionChunkResult(actions, poses, times, "tracking", opt.predictor)

    @staticmethod
    def _predicted_wrist(stamps: np.ndarray, poses: np.ndarray, lead: np.ndarray) -> np.ndarray:
        last = poses[-1]
        last_rotation = Rotation.from_matrix(last[:3, :3])
        relative = (last_rotation.inv() * Rotation.from_matrix(poses[:, :3, :3])).as_rotvec()
        omega = fitted_slope(stamps, relative)
        velocity = fitted_slope(stamps, poses[:, :3, 3])
        out = np.tile(np.eye(4), (len(lead), 1, 1))
        out[:, :3, :3] = (last_rotation * Rotation.from_rotvec(lead[:, None] * omega)).as_matrix()
        out[:, :3, 3] = last[:3, 3] + lead[:, None] * velocity
        return out

    def _lost_chunk(self, stamp: float) -> ActionChunkResult:
        if self._last_chunk.empty:
            return ActionChunkResult(state="idle")
        opt = self.options
        times = self._times(stamp)
        if self._lost is None:
            joints, pose = sample_chunk(self._last_chunk, times[0])
            last_command = self._last_observation + opt.latency_compensation_s
            self._lost = _Lost(joints, pose, max(last_command + opt.hold_s, times[0]))
        lost = self._lost
        progress = np.clip((times - lost.ramp_start) / opt.ramp_s, 0.0, 1.0)
        weight = 0.5 - 0.5 * np.cos(np.pi * progress)
        actions = lost.joints + weight[:, None] * (self.safe_pose - lost.joints)
        poses = (np.zeros((0, 4, 4)) if lost.pose is None
                 else np.repeat(lost.pose[None], opt.horizon, axis=0))
        state = "holding" if progress[0] <= 0.0 else "ramping" if progress[0] < 1.0 else "safe"
        self._last_chunk = ActionChunkResult(actions, poses, times, state, opt.predictor)
        return self._last_chunk

    def _rate_limit(self, result: ActionChunkResult) -> bool:
        """Limit ``result`` (in place) to what is reachable at the resume speeds from where the
        previous chunk has the robot at the first action's time (action k gets k * dt of motion,
        so consecutive first actions move at most speed * elapsed); True if it had to be."""
        opt = self.options
        joints, pose = sample_chunk(self._last_chunk, result.times_s[0])
        budget = opt.dt * np.arange(opt.horizon)  # s of motion allowed per action
        delta = result.actions - joints
        has_wrist = pose is not None and result.wrist_poses.shape[0] > 0
        # One step of slack: once the prediction is that close, tracking takes over unlimited.
        if np.all(np.abs(delta) <= opt.resume_speed * (budget + opt.dt)[:, None]) and (
                not has_wrist or not _limit_wrist(result.wrist_poses.copy(), pose,
                                                  opt.resume_linear_speed * (budget + opt.dt),
                                                  opt.resume_angular_speed * (budget + opt.dt))):
            return False
        limit = opt.resume_speed * budget[:, None]
        result.actions = joints + np.clip(delta, -limit, limit)
        if has_wrist:
            _limit_wrist(result.wrist_poses, pose, opt.resume_linear_speed * budget,
                         opt.resume_angular_speed * budget)
        return True


def _limit_wrist(poses: np.ndarray, start: np.ndarray, max_shift: np.ndarray,
                 max_angle: np.ndarray) -> bool:
    """Clamp poses (H, 4, 4) in place to within max_shift (H,) m and max_angle (H,) rad of
    ``start`` (4, 4); True if any was clamped."""
    shift = poses[:, :3, 3] - start[:3, 3]
    distance = np.linalg.norm(shift, axis=1)
    scale = np.minimum(1.0, max_shift / np.maximum(distance, 1e-12))
    poses[:, :3, 3] = start[:3, 3] + shift * scale[:, None]
    start_rotation = Rotation.from_matrix(start[:3, :3])
    relative = (start_rotation.inv() * Rotation.from_matrix(poses[:, :3, :3])).as_rotvec()
    angle = np.linalg.norm(relative, axis=1)
    factor = np.minimum(1.0, max_angle / np.maximum(angle, 1e-12))
    poses[:, :3, :3] = (start_rotation * Rotation.from_rotvec(relative * factor[:, None])
                        ).as_matrix()
    return bool(np.any(scale < 1.0 - 1e-9) or np.any(factor < 1.0 - 1e-9))


def prediction_errors(stamps: np.ndarray, joints: np.ndarray, options: ActionChunkOptions,
                      lower: Optional[np.ndarray] = None, upper: Optional[np.ndarray] = None
                      ) -> np.ndarray:
    """RMS error per horizon step, float64 (H,), same unit as ``joints`` (T, D) sampled at
    ``stamps`` (T,) s: each prediction against the true trajectory (linearly interpolated) at
    the time it applies; predictions past the last stamp are not scored."""
    joints = np.asarray(joints, dtype=float)
    lower = np.full(joints.shape[1], -np.inf) if lower is None else lower
    upper = np.full(joints.shape[1], np.inf) if upper is None else upper
    chunker = ActionChunker(options, lower, upper)
    squared = np.zeros(options.horizon)
    counts = np.zeros(options.horizon)
    for stamp, q in zip(stamps, joints):
        chunk = chunker.process(stamp, q)
        inside = chunk.times_s <= stamps[-1]
        truth = np.stack([np.interp(chunk.times_s[inside], stamps, joints[:, j])
                          for j in range(joints.shape[1])], axis=1)
        squared[inside] += ((chunk.actions[inside] - truth) ** 2).mean(axis=1)
        counts[inside] += 1
    return np.sqrt(squared / np.maximum(counts, 1))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m hand_perception.core.action_chunk [hand] [noise_m]``: RMS joint error (deg)
    per lead of each predictor on retargeted synthetic motion: core/retargeting/bench_solve's
    0.3-1 Hz joint sinusoids through robot FK and a moving camera, 30 Hz with +-4 ms stamp
    jitter, Gaussian keypoint noise of ``noise_m`` m, retargeted frame by frame."""
    import sys

    from hand_perception.core.retargeting import Retargeter, load_options, shipped_config
    from hand_perception.core.retargeting.bench_solve import camera_keypoints, smooth_trajectory

    args = list(sys.argv[1:] if argv is None else argv)
    hand, noise_m = (args[0] if args else "inspire"), float(args[1]) if len(args) > 1 else 0.0
    rng = np.random.default_rng(0)
    retargeter = Retargeter(load_options(shipped_config(hand, "right"), {"scaling": 1.0}))
    keypoints = camera_keypoints(retargeter, smooth_trajectory(retargeter, 600))
    keypoints = keypoints + rng.normal(0.0, noise_m, keypoints.shape)
    joints = np.array([retargeter.process(k).qpos for k in keypoints])
    stamps = np.arange(len(joints)) / 30.0 + rng.uniform(-0.004, 0.004, len(joints))
    base = dict(horizon=10, dt=1 / 30, latency_compensation_s=0.0)
    rows = {"hold": ActionChunkOptions(predictor="hold", **base),
            "cv (defaults)": ActionChunkOptions(**base),
            "cv undamped": ActionChunkOptions(damping_s=0.0, **base)}
    lines = [f"{hand}_right, keypoint noise {noise_m} m: RMS joint error [deg] at lead [ms]",
             f"{'predictor':14s}" + "".join(f"{1000 * k / 30:6.0f}" for k in range(10))]
    for name, options in rows.items():
        errors = np.degrees(prediction_errors(stamps, joints, options, retargeter.hand.lower,
                                              retargeter.hand.upper))
        lines.append(f"{name:14s}" + "".join(f"{e:6.2f}" for e in errors))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
