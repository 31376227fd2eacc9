"""Side-by-side retargeting benchmark: ours vs dex-retargeting==0.5.0 and dexi-rs==0.4.1.

Every system gets the same human keypoint sequences and, per hand, the same link pairs, scaling
and target vectors (our palm frame maps the human vectors into the robot; the peers get those
vectors as their ``ref_value``), so the columns compare the solvers. The peers' own wrist frame
(landmarks 0, 5, 9) is compared with ours separately (flip rate). Sequences:

* real: world keypoints of the shared photos (our PalmDetector + HandLandmarker, run once and
  cached), put in their palm frame, eased from shape to shape (1 s each, 30 fps) under a slowly
  swaying global rotation, plus 2 mm Gaussian jitter per keypoint and frame;
* synthetic: robot FK of 0.3-1 Hz joint sinusoids (``bench_solve``), scaled to human size: the
  ground-truth joints are known.

Run ``bash bench/setup_retargeting_peers.sh`` first; see bench/README_retargeting.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "bench" / "peers" / "retargeting"
PEER_PYTHON = ROOT / ".venv-retarget-peers" / "bin" / "python"
PEERS = ("dex_retargeting", "dexi_rs")
FPS = 30.0
FLIP_DEG = 60.0
NOTES = """
## How to read this

* Same inputs for all: per hand the same link pairs (the config's weight-1 `vector_pairs`; ours
  also has its weight-0.3 PIP pairs and `huber_delta` from `config/retargeting/`), the same
  scaling, the same target vectors (human keypoints mapped by our palm frame). Warm-started, no
  output filter, except the rows naming one (synthetic only, lag vs the true pose).
* tip-vector err: |robot wrist→fingertip − scaling × human wrist→fingertip|, mean over tips (mm).
  On the real sequence it is mostly what the robot cannot reach (Inspire/Ability have 6 DoF).
  tip err vs truth: fingertip distance to the FK of the true joints (synthetic only).
* limit viol.: frames with any URDF joint, mimic joints included (with their own limits), outside
  its limits by > 1e-6 rad, and the largest excess.
* RMS jerk: third difference of all joints × 30³ (rad/s³); the peers damp joint velocity
  (their `normal_delta`), which lowers jerk on noisy input and costs accuracy on clean input.
* solves/s: the solve loop only, one core shared with other work on this machine (±30 %).
* flips: frame-to-frame rotation steps > 60° on the real sequence, whose true rotation moves by a
  few degrees per frame; 0, 5, 9 is the peers' construction (`frame_from_059`).
"""


# ---------------------------------------------------------------- metrics (plain numpy) ------
def vector_error(robot: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean norm (T,) of robot (T, f, 3) minus target (T, f, 3) vectors (m)."""
    return np.linalg.norm(np.asarray(robot) - np.asarray(target), axis=-1).mean(axis=-1)


def limit_violations(q: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float = 1e-6
                     ) -> Tuple[float, float]:
    """(fraction of frames with any joint outside [lower, upper] by > tol, largest excess)."""
    excess = np.maximum(np.maximum(lower - q, q - upper), 0.0)
    worst = excess.max(axis=1)
    return float((worst > tol).mean()), float(worst.max())


def rms_jerk(q: np.ndarray, fps: float) -> float:
    """RMS third derivative (rad/s³) of a joint trajectory (T, n) sampled at ``fps``."""
    third = np.diff(np.asarray(q, dtype=float), n=3, axis=0) * fps ** 3
    return float(np.sqrt((third ** 2).mean())) if third.size else 0.0


def rotation_angles_deg(rotations: np.ndarray) -> np.ndarray:
    """Angles (T-1,) in degrees between consecutive rotations (T, 3, 3)."""
    rel = np.einsum("tji,tjk->tik", rotations[:-1], rotations[1:])
    cos = (np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def flip_rate(rotations: np.ndarray, threshold_deg: float = FLIP_DEG) -> float:
    """Fraction of frame-to-frame steps whose rotation jumps by more than ``threshold_deg``."""
    return float((rotation_angles_deg(rotations) > threshold_deg).mean())


def frame_from_059(points: np.ndarray) -> np.ndarray:
    """The peers' wrist frame (3, 3) from landmarks 0, 5, 9 of a right hand (21, 3).

    Plane through the three landmarks (SVD), x from the middle knuckle towards the wrist
    projected into it, the normal's sign chosen so that z = x × normal points from the middle
    towards the index knuckle: with 0, 5, 9 nearly on a line the plane, and so the frame, flips.
    """
    tri = points[[0, 5, 9]]
    normal = np.linalg.svd(tri - tri.mean(axis=0))[2][2]
    x_axis = tri[0] - tri[2]
    x_axis = x_axis - (x_axis @ normal) * normal
    x_axis /= np.linalg.norm(x_axis)
    z_axis = np.cross(x_axis, normal)
    if z_axis @ (tri[1] - tri[2]) < 0.0:
        normal, z_axis = -normal, -z_axis
    return np.column_stack([x_axis, normal, z_axis])


# ---------------------------------------------------------------- sequences ------------------
def detect_shapes(image_root: Path, cache: Path) -> np.ndarray:
    """World keypoints (K, 21, 3) m of every confident hand in the photos, as right hands."""
    if cache.is_file():
        return np.load(cache)
    import cv2
    from hand_perception.core.models.hand_landmarker import HandLandmarker
    from hand_perception.core.models.palm_detector import PalmDetector
    from hand_perception.core.models.roi import roi_from_palm
    detector, landmarker, shapes = PalmDetector(), HandLandmarker(), []
    for path in sorted(image_root.glob("*/*.jpg")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        rois = [roi_from_palm(d.box, d.keypoints) for d in detector.process(rgb).detections]
        found = landmarker.process(rgb, rois)
        for world, presence, label in zip(found.world_keypoints, found.presence, found.labels()):
            if presence > 0.5:  # a left hand mirrored across x has a right hand's geometry
                shapes.append(world * ([-1.0, 1.0, 1.0] if label == "left" else 1.0))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, np.asarray(shapes, dtype=np.float64))
    return np.load(cache)


def _rotation_xyz(angles: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [k for k in range(3) if k != axis]
        step = np.eye(3)
        step[i, i], step[i, j], step[j, i], step[j, j] = c, -s, s, c
        out = out @ step
    return out


def real_clip(shapes: np.ndarray, frames: int, seed: int = 0, noise_m: float = 0.002,
              segment: int = 30) -> np.ndarray:
    """Keypoints (frames, 21, 3): eased shape-to-shape motion, swaying rotation, jitter."""
    from hand_perception.core.retargeting import WristFrameEstimator
    rng = np.random.default_rng(seed)
    local = np.array([(s - s[0]) @ WristFrameEstimator().process(s, "right").rotation
                      for s in shapes])
    order = np.concatenate([rng.permutation(len(local)) for _ in range(frames // segment // max(
        len(local), 1) + 2)])
    phase, freq = rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.05, 0.2, 3)
    out = np.empty((frames, 21, 3))
    for t in range(frames):
        k, u = divmod(t, segment)
        ease = 0.5 - 0.5 * np.cos(np.pi * u / segment)
        shape = (1 - ease) * local[order[k]] + ease * local[order[k + 1]]
        rot = _rotation_xyz(0.5 * np.sin(2 * np.pi * freq * t / FPS + phase))
        out[t] = shape @ rot.T + [0.02, -0.05, 0.45]
    return out + rng.normal(0.0, noise_m, out.shape)


# ---------------------------------------------------------------- running --------------------
def fk_points(hand, full_q: np.ndarray, frame_ids: Sequence[int]) -> np.ndarray:
    """Link origins (T, k, 3) in the wrist-link frame for model configurations (T, nq)."""
    import pinocchio as pin
    out = np.empty((len(full_q), len(frame_ids), 3))
    for t, q in enumerate(full_q):
        pin.framesForwardKinematics(hand.model, hand.data, q)
        out[t] = [hand.data.oMf[f].translation for f in frame_ids]
    return (out - hand._wrist_pos) @ hand._wrist_rot_t.T


def human_vectors(retargeter, keypoints: np.ndarray) -> np.ndarray:
    """Human keypoints (T, 21, 3) in the robot wrist-link frame (unscaled), our palm frame."""
    from hand_perception.core.retargeting import WristFrameEstimator
    frames, out = WristFrameEstimator(), np.empty(keypoints.shape)
    for t, kp in enumerate(keypoints):
        frame = frames.process(kp, retargeter.options.side)
        out[t] = retargeter.to_robot_frame(kp, frame.rotation, frame.origin)
    return out


def run_ours(retargeter, keypoints: np.ndarray, repeats: int = 1) -> Tuple[np.ndarray, float]:
    """Warm-started passes from a reset: full joints (T, nq) and the best solves/s of
    ``repeats`` passes (this process is on one core; the peers get the same number)."""
    rates = []
    for _ in range(max(1, repeats)):
        retargeter.reset()
        start = time.perf_counter()
        results = [retargeter.process(kp) for kp in keypoints]
        rates.append(len(keypoints) / (time.perf_counter() - start))
    return np.array([r.full_qpos for r in results]), max(rates)


def peer_full_q(hand, names: Sequence[str], qpos: np.ndarray) -> np.ndarray:
    """A peer's joints (T, dof) in its ``names`` order -> our model's (T, nq) order."""
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(qpos), len(hand.full_joint_names)))
    for col, name in enumerate(hand.full_joint_names):
        if name in index:
            out[:, col] = qpos[:, index[name]]
        else:  # a mimic joint the peer left out: from its primary
            primary, mult, offset = hand.mimic[name]
            out[:, col] = mult * qpos[:, index[primary]] + offset
    return out


def run_peers(jobs: List[dict], arrays: Dict[str, np.ndarray]) -> List[dict]:
    """Runs the jobs in the peer venv (same CPU affinity); returns their outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **arrays)
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        subprocess.run([str(PEER_PYTHON), str(PEER_DIR / "peer_worker.py"),
                        str(Path(tmp) / "jobs.json"), str(Path(tmp) / "in.npz"),
                        str(Path(tmp) / "out.npz")], check=True)
        data = np.load(Path(tmp) / "out.npz")
        return [{"qpos": data[f"{i}_qpos"], "seconds": float(data[f"{i}_seconds"]),
                 "names": [str(n) for n in data[f"{i}_names"]]} for i in range(len(jobs))]


class HandBench:
    """One hand config: sequences, target vectors and metrics shared by all systems."""

    def __init__(self, stem: str, sequences: Dict[str, np.ndarray],
                 truth: Dict[str, np.ndarray]) -> None:
        from hand_perception.core.retargeting import Retargeter, load_options
        from hand_perception.core.retargeting.resources import config_dir
        self.stem, self.path = stem, config_dir() / f"{stem}.yaml"
        self.retargeter = Retargeter(load_options(self.path))
        opt, hand = self.retargeter.options, self.retargeter.hand
        weights = opt.vector_weights or [1.0] * len(opt.vector_pairs)
        self.pairs = [tuple(p) for p, w in zip(opt.vector_pairs, weights) if w == 1.0]
        self.tips = [k for k in (4, 8, 12, 16, 20) if k in opt.keypoint_links]
        self.ids = [hand.frame_id(opt.keypoint_links[k]) for k in [0] + self.tips]
        self.sequences, self.truth = sequences, truth
        self.human = {k: human_vectors(self.retargeter, v) for k, v in sequences.items()}
        self.lower, self.upper = hand.full_limits()

    def peer_arrays(self) -> Dict[str, np.ndarray]:
        """The peers' ``ref_value`` per sequence: pair vectors (T, m, 3), robot root frame."""
        rot_t = self.retargeter.hand._wrist_rot_t
        first, second = zip(*self.pairs)
        return {f"{self.stem}/{k}": (h[:, list(second)] - h[:, list(first)]) @ rot_t
                for k, h in self.human.items()}

    def metrics(self, name: str, full_q: np.ndarray, rate: float) -> dict:
        """Fingertip-vector error (mm), limit violations, jerk, solves/s on one sequence."""
        points = fk_points(self.retargeter.hand, full_q, self.ids)
        robot = points[:, 1:] - points[:, :1]
        human = self.human[name]
        target = self.retargeter.scaling * (human[:, self.tips] - human[:, :1])
        err = vector_error(robot, target) * 1e3
        frac, worst = limit_violations(full_q, self.lower, self.upper)
        out = {"err": float(err.mean()), "err_p95": float(np.percentile(err, 95)),
               "viol": 100.0 * frac, "viol_max": worst, "jerk": rms_jerk(full_q, FPS),
               "rate": rate}
        if name in self.truth:
            gt = fk_points(self.retargeter.hand, self.truth[name], self.ids)
            tip = np.linalg.norm(points[:, 1:] - gt[:, 1:], axis=-1).mean(axis=-1) * 1e3
            out["gt"], out["gt_p99"] = float(tip.mean()), float(np.percentile(tip, 99))
        return out


# ---------------------------------------------------------------- the run --------------------
def synthetic(stem: str, frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """Human-size keypoints (T, 21, 3) from robot FK and the true model joints (T, nq)."""
    from hand_perception.core.retargeting import Retargeter, load_options
    from hand_perception.core.retargeting.bench_solve import camera_keypoints, smooth_trajectory
    from hand_perception.core.retargeting.resources import config_dir
    retargeter = Retargeter(load_options(config_dir() / f"{stem}.yaml"))
    traj = smooth_trajectory(retargeter, frames, FPS, seed=11)
    keypoints = camera_keypoints(retargeter, traj, FPS) / retargeter.scaling
    return keypoints, np.array([retargeter.hand.full_q(q) for q in traj])


def peer_jobs(bench: HandBench, repeats: int) -> List[dict]:
    fixed = [v for _, v in sorted(bench.retargeter.options.locked_joints.items())]
    config = str(PEER_DIR / f"{bench.stem}.yml")
    jobs = [{"peer": p, "config": config, "sequence": f"{bench.stem}/{s}", "alpha": 1.0,
             "fixed_qpos": fixed, "name": s, "repeats": repeats}
            for s in bench.sequences for p in PEERS]
    jobs.append({"peer": "dexi_rs", "config": config, "sequence": f"{bench.stem}/synthetic",
                 "alpha": 0.2, "fixed_qpos": fixed, "name": "synthetic", "lag": True,
                 "repeats": repeats})
    return jobs


def bench_hand(stem: str, real: np.ndarray, frames: int, with_peers: bool, repeats: int = 1
               ) -> dict:
    """Every system on ``stem``'s sequences: {system: {sequence: metrics}} plus lag rows."""
    from hand_perception.core.retargeting import Retargeter, load_options
    syn, truth = synthetic(stem, frames)
    bench = HandBench(stem, {"real": real, "synthetic": syn}, {"synthetic": truth})
    rows: dict = {"ours": {}}
    for name, keypoints in bench.sequences.items():
        rows["ours"][name] = bench.metrics(name, *run_ours(bench.retargeter, keypoints,
                                                           repeats))
    for label, extra in (("ours exp a=0.5", {"smoothing_alpha": 0.5}),
                         ("ours One-Euro", {"smoothing_filter": "one_euro"})):
        filtered = Retargeter(load_options(bench.path, extra))
        rows[label] = {"synthetic": bench.metrics("synthetic", *run_ours(filtered, syn,
                                                                         repeats))}
    if with_peers:
        jobs = peer_jobs(bench, repeats)
        for job, out in zip(jobs, run_peers(jobs, bench.peer_arrays())):
            label = "dexi_rs a=0.2" if job.get("lag") else job["peer"]
            full_q = peer_full_q(bench.retargeter.hand, out["names"], out["qpos"])
            rate = len(full_q) / max(out["seconds"], 1e-9)
            rows.setdefault(label, {})[job["name"]] = bench.metrics(job["name"], full_q, rate)
    return rows


def flip_rows(real: np.ndarray) -> Dict[str, float]:
    from hand_perception.core.retargeting import WristFrameEstimator
    ours = WristFrameEstimator()
    rot_ours = np.array([ours.process(kp, "right").rotation for kp in real])
    rot_059 = np.array([frame_from_059(kp) for kp in real])
    return {"ours (palm plane 0,5,9,13,17 + handedness)": flip_rate(rot_ours),
            "landmarks 0,5,9 (dex-retargeting's construction)": flip_rate(rot_059)}


def report(results: Dict[str, dict], flips: Dict[str, float], header: str) -> str:
    lines = [header, "", "## Real sequence (detector world keypoints, eased motion, 2 mm jitter)",
             "", "| hand | system | tip-vector err mean / p95 [mm] | limit viol. [% frames] / "
             "max [rad] | RMS jerk [rad/s³] | solves/s (1 core) |", "|---|---|---|---|---|---|"]
    for stem, rows in results.items():
        for system, seqs in rows.items():
            if "real" in seqs:
                m = seqs["real"]
                lines.append(f"| {stem} | {system} | {m['err']:.1f} / {m['err_p95']:.1f} | "
                             f"{m['viol']:.1f} / {m['viol_max']:.3f} | {m['jerk']:.0f} | "
                             f"{m['rate']:.0f} |")
    lines += ["", "## Synthetic sequence (robot FK, ground-truth joints known)", "",
              "| hand | system | tip err vs truth mean / p99 [mm] | tip-vector err [mm] | "
              "limit viol. [%] / max [rad] | RMS jerk [rad/s³] | solves/s (1 core) |",
              "|---|---|---|---|---|---|---|"]
    for stem, rows in results.items():
        for system, seqs in rows.items():
            m = seqs.get("synthetic")
            if m:
                lines.append(f"| {stem} | {system} | {m['gt']:.2f} / {m['gt_p99']:.2f} | "
                             f"{m['err']:.2f} | {m['viol']:.1f} / {m['viol_max']:.3f} | "
                             f"{m['jerk']:.0f} | {m['rate']:.0f} |")
    lines += ["", f"## Wrist-frame flips on the real sequence (step > {FLIP_DEG:.0f}°)", "",
              "| construction | flips [% of frames] |", "|---|---|"]
    lines += [f"| {name} | {100 * rate:.2f} |" for name, rate in flips.items()]
    return "\n".join(lines) + "\n" + NOTES


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", nargs="*", default=["allegro", "leap", "shadow", "inspire",
                                                       "ability"])
    parser.add_argument("--side", default="right", choices=("left", "right"))
    parser.add_argument("--frames", type=int, default=2000, help="real sequence length")
    parser.add_argument("--synthetic-frames", type=int, default=600)
    parser.add_argument("--cpu", type=int, default=0, help="the one core everything runs on")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed passes per system and sequence; the fastest counts")
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared/data/hands")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir())
                        / "hand_perception_bench" / "retargeting_shapes.npy")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/retargeting.md")
    args = parser.parse_args(argv)
    with_peers = not args.no_peers
    if with_peers and not PEER_PYTHON.is_file():
        parser.error(f"{PEER_PYTHON} missing: run bash bench/setup_retargeting_peers.sh")
    shapes = detect_shapes(args.images, args.cache)  # before pinning: the detector is heavy
    os.sched_setaffinity(0, {args.cpu})  # peers inherit it: every solver on the same core
    real = real_clip(shapes, args.frames)
    results = {}
    for hand in args.hands:
        stem = f"{hand}_{args.side}"
        print(f"benchmarking {stem} ...", flush=True)
        results[stem] = bench_hand(stem, real if args.side == "right" else
                                   real * [-1.0, 1.0, 1.0], args.synthetic_frames, with_peers,
                                   args.repeats)
    command = " ".join(["python bench/bench_retargeting.py"] + list(argv or sys.argv[1:]))
    header = (f"# Retargeting benchmark\n\n`{command}`"
              f" — {len(shapes)} real hand shapes, real sequence {args.frames} frames, synthetic "
              f"{args.synthetic_frames} frames, {FPS:.0f} fps, side {args.side}, everything on "
              f"CPU {args.cpu}, best of {args.repeats} timed passes; measured "
              f"{time.strftime('%Y-%m-%d %H:%M')}.")
    text = report(results, flip_rows(real), header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
