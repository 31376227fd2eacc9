"""Solve-rate and accuracy measurement: ``python -m hand_perception.core.retargeting.bench_solve``.

For every shipped hand config: a smooth synthetic joint trajectory (sinusoids inside the limits)
is turned into keypoints by robot FK, rotated/translated into a moving "camera" frame, and
retargeted warm-started frame after frame. Prints solves/s on one core (the process is pinned to
one CPU when the OS allows), the fingertip error (mm, robot FK of the solution vs the ground
truth), and the extra fingertip error a low-pass filter adds (its lag) at 30 Hz.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from hand_perception.core.retargeting.config import load_options
from hand_perception.core.retargeting.resources import shipped_configs
from hand_perception.core.retargeting.retargeter import Retargeter


def smooth_trajectory(retargeter: Retargeter, frames: int, fps: float = 30.0,
                      seed: int = 0) -> np.ndarray:
    """Joint trajectory float64 (frames, n): 0.3-1 Hz sinusoids spanning 10-90 % of each range.

    Joints that move the palm keypoints (e.g. Shadow LFJ5) are held at mid-range, since the
    human palm frame of synthetic keypoints must match the robot's rigid-palm frame.
    """
    hand = retargeter.hand
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / fps
    freq = rng.uniform(0.3, 1.0, hand.num_joints)
    phase = rng.uniform(0, 2 * np.pi, hand.num_joints)
    unit = 0.5 + 0.4 * np.sin(2 * np.pi * freq * t + phase)
    traj = hand.lower + (hand.upper - hand.lower) * unit
    traj[:, palm_moving_joints(retargeter)] = hand.neutral()[palm_moving_joints(retargeter)]
    return traj


def palm_moving_joints(retargeter: Retargeter) -> np.ndarray:
    """Indices of independent joints that move any palm keypoint (0, 5, 9, 13, 17)."""
    hand = retargeter.hand
    base = retargeter.robot_keypoints(hand.neutral())[[0, 5, 9, 13, 17]]
    moving = []
    for j in range(hand.num_joints):
        q = hand.neutral()
        q[j] = hand.upper[j] if hand.upper[j] - q[j] > q[j] - hand.lower[j] else hand.lower[j]
        if np.abs(retargeter.robot_keypoints(q)[[0, 5, 9, 13, 17]] - base).max() > 1e-6:
            moving.append(j)
    return np.array(moving, dtype=int)


def camera_keypoints(retargeter: Retargeter, traj: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Keypoints float64 (frames, 21, 3) of ``traj`` seen from a slowly rotating camera."""
    out = np.empty((len(traj), 21, 3))
    for i, q in enumerate(traj):
        angle = 0.5 * np.sin(i / fps)
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
            [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        out[i] = retargeter.robot_keypoints(q) @ rot.T + np.array([0.05, -0.02, 0.5])
    return out


def run_one(path: Path, frames: int, objective: str, alpha: float) -> dict:
    """Measure one config: solves/s, fingertip errors (m) without and with smoothing."""
    overrides = {"scaling": 1.0, "objective": objective}
    retargeter = Retargeter(load_options(path, overrides))
    traj = smooth_trajectory(retargeter, frames)
    keypoints = camera_keypoints(retargeter, traj)
    truth = [retargeter.hand.positions(q, retargeter._tip_ids) for q in traj]
    retargeter.process(keypoints[0])
    start = time.perf_counter()
    results = [retargeter.process(k) for k in keypoints[1:]]
    rate = (frames - 1) / (time.perf_counter() - start)
    err = np.array([np.linalg.norm(r.fingertips - t, axis=1).mean()
                    for r, t in zip(results, truth[1:])])
    smoothed = Retargeter(load_options(path, dict(overrides, smoothing_alpha=alpha)))
    lag = np.array([np.linalg.norm(smoothed.process(k).fingertips - t, axis=1).mean()
                    for k, t in zip(keypoints, truth)])[1:]
    iters = np.mean([r.iterations for r in results])
    return {"name": path.stem, "rate": rate, "err": err, "lag": lag, "iters": iters,
            "dof": retargeter.hand.num_joints}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--objective", default="vector", choices=("vector", "dexpilot",
                                                                     "position"))
    parser.add_argument("--alpha", type=float, default=0.5, help="low-pass alpha for the lag")
    parser.add_argument("--hands", nargs="*", default=[], help="config stems, default all")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    lines: List[str] = [f"{'config':16s} {'dof':>3s} {'solves/s':>9s} {'iters':>5s} "
                        f"{'tip err mean/p99 [mm]':>22s} {'+lag a=' + str(args.alpha) + ' [mm]':>18s}"]
    for path in shipped_configs():
        if args.hands and path.stem not in args.hands:
            continue
        m = run_one(path, args.frames, args.objective, args.alpha)
        lines.append(f"{m['name']:16s} {m['dof']:3d} {m['rate']:9.0f} {m['iters']:5.1f} "
                     f"{1e3 * m['err'].mean():10.3f} / {1e3 * np.percentile(m['err'], 99):7.3f} "
                     f"{1e3 * (m['lag'].mean() - m['err'].mean()):14.2f}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
