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


def _timed_pass(retargeter: Retargeter, keypoints: np.ndarray) -> tuple:
    """Results of one warm-started pass (after a reset) and its solves/s (first frame untimed)."""
    retargeter.reset()
    retargeter.process(keypoints[0])
    start = time.perf_counter()
    results = [retargeter.process(k) for k in keypoints[1:]]
    return results, (len(keypoints) - 1) / (time.perf_counter() - start)


def _tip_error(results: list, truth: list) -> np.ndarray:
    """Mean fingertip distance (m) per frame between results and ground-truth tips."""
    return np.array([np.linalg.norm(r.fingertips - t, axis=1).mean()
                     for r, t in zip(results, truth)])


def run_one(path: Path, frames: int, objective: str, alpha: float, repeats: int = 3) -> dict:
    """Measure one config: solves/s (best of ``repeats`` passes: the machine is shared),
    fingertip errors (m) without smoothing, with the exponential filter and with One-Euro."""
    overrides = {"scaling": 1.0, "objective": objective}
    retargeter = Retargeter(load_options(path, overrides))
    traj = smooth_trajectory(retargeter, frames)
    keypoints = camera_keypoints(retargeter, traj)
    truth = [retargeter.hand.positions(q, retargeter._tip_ids) for q in traj][1:]
    passes = [_timed_pass(retargeter, keypoints) for _ in range(max(1, repeats))]
    results, rate = passes[0][0], max(p[1] for p in passes)
    lags = {}
    for name, extra in (("exp", {"smoothing_alpha": alpha}),
                        ("one_euro", {"smoothing_filter": "one_euro"})):
        smoothed = Retargeter(load_options(path, dict(overrides, **extra)))
        out = _timed_pass(smoothed, keypoints)[0]
        lags[name] = _tip_error(out, truth)
        lags[name + "_latency"] = float(np.mean([r.latency_s for r in out]))
    return {"name": path.stem, "rate": rate, "err": _tip_error(results, truth), "lag": lags,
            "iters": np.mean([r.iterations for r in results]), "dof": retargeter.hand.num_joints}


def run_batched(path: Path, frames: int, device: str, seeds: Optional[int] = None,
                neighbour_passes: int = 0) -> str:
    """One line: batched (torch) frames/s and fingertip error vs the ground truth."""
    import torch
    from hand_perception.core.retargeting.batched import BatchedRetargeter
    options = load_options(path, {"scaling": 1.0})
    retargeter = Retargeter(options)
    traj = smooth_trajectory(retargeter, frames)
    keypoints = camera_keypoints(retargeter, traj)
    truth = np.array([retargeter.hand.positions(q, retargeter._tip_ids) for q in traj])
    batched = BatchedRetargeter(options, device=device, seeds=seeds,
                                neighbour_passes=neighbour_passes)
    batched.process(keypoints[:64])  # warm-up (allocations, kernels)
    if batched.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = batched.process(keypoints)
    rate = frames / (time.perf_counter() - start)
    err = np.linalg.norm(result.fingertips - truth, axis=-1).mean(axis=-1)
    return (f"{path.stem:16s} {rate:9.0f} frames/s ({batched.dtype}, {device}, "
            f"{batched.seeds} seeds, {neighbour_passes} neighbour passes, "
            f"{torch.get_num_threads()} threads)  tip err mean/p99 {1e3 * err.mean():.3f} / "
            f"{1e3 * np.percentile(err, 99):.3f} mm")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--objective", default="vector", choices=("vector", "dexpilot",
                                                                     "position"))
    parser.add_argument("--alpha", type=float, default=0.5, help="low-pass alpha for the lag")
    parser.add_argument("--hands", nargs="*", default=[], help="config stems, default all")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best is kept)")
    parser.add_argument("--batched", type=int, default=0, metavar="N",
                        help="instead: the batched torch path on N independent frames")
    parser.add_argument("--device", default="cpu", help="torch device for --batched")
    parser.add_argument("--seeds", type=int, default=None, help="--batched: seeds per frame")
    parser.add_argument("--neighbour-passes", type=int, default=0,
                        help="--batched: passes re-solving each frame from its predecessor")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.batched:
        import torch
        torch.set_num_threads(1)
        rows = [run_batched(p, args.batched, args.device, args.seeds, args.neighbour_passes)
                for p in shipped_configs()
                if not args.hands or p.stem in args.hands]
        sys.stdout.write("\n".join(rows) + "\n")
        return 0
    lines: List[str] = [f"{'config':16s} {'dof':>3s} {'solves/s':>9s} {'iters':>5s} "
                        f"{'tip err mean/p99 [mm]':>22s} {'+lag exp a=' + str(args.alpha):>14s} "
                        f"{'+lag 1euro [mm]':>15s} {'1euro latency':>13s}"]
    for path in shipped_configs():
        if args.hands and path.stem not in args.hands:
            continue
        m = run_one(path, args.frames, args.objective, args.alpha, args.repeats)
        err, lag = m["err"].mean(), m["lag"]
        lines.append(f"{m['name']:16s} {m['dof']:3d} {m['rate']:9.0f} {m['iters']:5.1f} "
                     f"{1e3 * err:10.3f} / {1e3 * np.percentile(m['err'], 99):7.3f} "
                     f"{1e3 * (lag['exp'].mean() - err):14.2f} "
                     f"{1e3 * (lag['one_euro'].mean() - err):15.2f} "
                     f"{1e3 * lag['one_euro_latency']:10.0f} ms")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
