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

Left hands get the real sequence mirrored (camera x negated, ``mirror_to_left``) and their own
dexi-rs left URDFs, so ours should score the same on both sides wherever the two URDFs are mirror
images (``urdf_mirror_mismatch`` says where they are not).

Run ``bash bench/setup_retargeting_peers.sh`` first; see bench/README_retargeting.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

if __package__ in (None, ""):  # run as a script: make `import bench.x` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.retargeting_metrics import (  # noqa: E402
    flip_rate, frame_from_059, limit_violations, rms_jerk, vector_error)
from bench.retargeting_report import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "bench" / "peers" / "retargeting"
PEER_PYTHON = ROOT / ".venv-retarget-peers" / "bin" / "python"
PEERS = ("dex_retargeting", "dexi_rs")
FPS = 30.0


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


def mirror_to_left(keypoints: np.ndarray) -> np.ndarray:
    """Right-hand keypoints (..., 21, 3) -> a left hand's: x negated (any frame's mirror works:
    the wrist frame takes the handedness from the keypoints and the side)."""
    return np.asarray(keypoints) * np.array([-1.0, 1.0, 1.0])


def urdf_mirror_mismatch(right, left) -> float:
    """Largest distance (m) between ``right``'s robot keypoints and ``left``'s reflected across the
    wrist-link plane (x, y or z = 0) that fits best, both at q = 0 clipped into the limits.

    0 when the two URDFs are mirror images (same joint conventions); the keypoints the two
    configs both map are compared.
    """
    keys = sorted(set(right.options.keypoint_links) & set(left.options.keypoint_links))
    points = [r.robot_keypoints(r.hand.clip(np.zeros(r.hand.num_joints)))[keys]
              for r in (right, left)]
    return min(float(np.linalg.norm(points[0] - points[1] * np.where(np.arange(3) == axis,
                                                                      -1.0, 1.0), axis=1).max())
               for axis in range(3))


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
                 truth: Dict[str, np.ndarray], clean: Optional[Dict[str, np.ndarray]] = None,
                 overrides: Optional[Dict[str, Any]] = None) -> None:
        """``truth``: true model joints (T, nq) per sequence; ``clean``: its keypoints (T, 21, 3)
        before the jitter, whose tip vectors are the 'noise-free' targets; ``overrides``: our
        options changed from the shipped config (the peers' pairs stay the config's)."""
        from hand_perception.core.retargeting.resources import config_dir
        self.stem, self.path = stem, config_dir() / f"{stem}.yaml"
        self.overrides = dict(overrides or {})
        self.retargeter = self.ours()
        opt, hand = self.retargeter.options, self.retargeter.hand
        weights = opt.vector_weights or [1.0] * len(opt.vector_pairs)
        self.pairs = [tuple(p) for p, w in zip(opt.vector_pairs, weights) if w == 1.0]
        self.tips = [k for k in (4, 8, 12, 16, 20) if k in opt.keypoint_links]
        self.ids = [hand.frame_id(opt.keypoint_links[k]) for k in [0] + self.tips]
        self.sequences, self.truth = sequences, truth
        self.human = {k: human_vectors(self.retargeter, v) for k, v in sequences.items()}
        self.clean = {k: human_vectors(self.retargeter, v) for k, v in (clean or {}).items()}
        self.lower, self.upper = hand.full_limits()

    def ours(self, extra: Optional[Dict[str, Any]] = None):
        """A fresh ``Retargeter`` of the config with the overrides and ``extra`` options."""
        from hand_perception.core.retargeting import Retargeter, load_options
        return Retargeter(load_options(self.path, {**self.overrides, **(extra or {})}))

    def peer_arrays(self) -> Dict[str, np.ndarray]:
        """The peers' ``ref_value`` per sequence: pair vectors (T, m, 3), robot root frame."""
        rot_t = self.retargeter.hand._wrist_rot_t
        first, second = zip(*self.pairs)
        return {f"{self.stem}/{k}": (h[:, list(second)] - h[:, list(first)]) @ rot_t
                for k, h in self.human.items()}

    def _tip_error(self, robot: np.ndarray, human: np.ndarray) -> np.ndarray:
        """Per-frame error (T,) mm of robot tip vectors (T, f, 3) vs human keypoints' (T, 21, 3)."""
        target = self.retargeter.scaling * (human[:, self.tips] - human[:, :1])
        return vector_error(robot, target) * 1e3

    def metrics(self, name: str, full_q: np.ndarray, rate: float) -> dict:
        """Fingertip-vector error (mm), limit violations, jerk, solves/s on one sequence."""
        points = fk_points(self.retargeter.hand, full_q, self.ids)
        robot = points[:, 1:] - points[:, :1]
        err = self._tip_error(robot, self.human[name])
        frac, worst = limit_violations(full_q, self.lower, self.upper)
        out = {"err": float(err.mean()), "err_p95": float(np.percentile(err, 95)),
               "viol": 100.0 * frac, "viol_max": worst, "jerk": rms_jerk(full_q, FPS),
               "rate": rate}
        if name in self.clean:
            out["err_clean"] = float(self._tip_error(robot, self.clean[name]).mean())
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


def peer_jobs(bench: HandBench, repeats: int, lag: bool = True) -> List[dict]:
    """Peer runs per sequence, plus dexi-rs with its shipped low-pass (synthetic) if ``lag``."""
    fixed = [v for _, v in sorted(bench.retargeter.options.locked_joints.items())]
    config = str(PEER_DIR / f"{bench.stem}.yml")
    # dex-retargeting (~100 solves/s) is timed once: a second pass is most of the bench's time
    jobs = [{"peer": p, "config": config, "sequence": f"{bench.stem}/{s}", "alpha": 1.0,
             "fixed_qpos": fixed, "name": s, "repeats": 1 if p == "dex_retargeting" else repeats}
            for s in bench.sequences for p in PEERS]
    if not lag:
        return jobs
    jobs.append({"peer": "dexi_rs", "config": config, "sequence": f"{bench.stem}/synthetic",
                 "alpha": 0.2, "fixed_qpos": fixed, "name": "synthetic", "lag": True,
                 "repeats": repeats})
    return jobs


@dataclasses.dataclass
class Settings:
    """How each hand is run: synthetic sequence length, peers or not, timed passes, extra rows
    of ours (one per ``damping`` regularization; the output filters and the peers' lag row if
    ``filters``) and ``overrides`` of our options (e.g. ``{"huber_delta": 0.02}``)."""

    synthetic_frames: int = 600
    with_peers: bool = True
    repeats: int = 1
    damping: Sequence[float] = ()
    filters: bool = True
    overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)


def ours_rows(bench: HandBench, settings: Settings) -> dict:
    """Ours on every sequence, its ``damping`` rows (every sequence, one timed pass) and its
    output filters (synthetic only)."""
    rows: dict = {"ours": {name: bench.metrics(name, *run_ours(bench.retargeter, keypoints,
                                                               settings.repeats))
                           for name, keypoints in bench.sequences.items()}}
    for reg in settings.damping:
        damped = bench.ours({"regularization": reg})
        rows[f"ours reg={reg:g}"] = {name: bench.metrics(name, *run_ours(damped, keypoints))
                                     for name, keypoints in bench.sequences.items()}
    syn = bench.sequences["synthetic"]
    for label, extra in (("ours exp a=0.5", {"smoothing_alpha": 0.5}),
                         ("ours One-Euro", {"smoothing_filter": "one_euro"})):
        if settings.filters:
            rows[label] = {"synthetic": bench.metrics("synthetic", *run_ours(
                bench.ours(extra), syn, settings.repeats))}
    return rows


def bench_hand(stem: str, real: np.ndarray, clean: np.ndarray, settings: Settings) -> dict:
    """Every system on ``stem``'s sequences: {system: {sequence: metrics}}.

    real: jittered keypoints (T, 21, 3), clean: the same before the jitter (T, 21, 3).
    """
    syn, truth = synthetic(stem, settings.synthetic_frames)
    bench = HandBench(stem, {"real": real, "synthetic": syn}, {"synthetic": truth},
                      {"real": clean}, settings.overrides)
    rows = ours_rows(bench, settings)
    if settings.with_peers:
        jobs = peer_jobs(bench, settings.repeats, settings.filters)
        for job, out in zip(jobs, run_peers(jobs, bench.peer_arrays())):
            label = "dexi_rs a=0.2" if job.get("lag") else job["peer"]
            full_q = peer_full_q(bench.retargeter.hand, out["names"], out["qpos"])
            rate = len(full_q) / max(out["seconds"], 1e-9)
            rows.setdefault(label, {})[job["name"]] = bench.metrics(job["name"], full_q, rate)
    return rows


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``["huber_delta=0.02", ...]`` -> ``{"huber_delta": 0.02}`` (values read as YAML)."""
    import yaml
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def mirror_mismatches(hands: Sequence[str]) -> Dict[str, float]:
    """``urdf_mirror_mismatch`` (m) of each hand's shipped left and right configs."""
    from hand_perception.core.retargeting import Retargeter, load_options, shipped_config
    return {hand: urdf_mirror_mismatch(*(Retargeter(load_options(shipped_config(hand, side)))
                                         for side in ("right", "left"))) for hand in hands}


def flip_rows(real: np.ndarray) -> Dict[str, float]:
    from hand_perception.core.retargeting import WristFrameEstimator
    ours = WristFrameEstimator()
    rot_ours = np.array([ours.process(kp, "right").rotation for kp in real])
    rot_059 = np.array([frame_from_059(kp) for kp in real])
    return {"ours (palm plane 0,5,9,13,17 + handedness)": flip_rate(rot_ours),
            "landmarks 0,5,9 (dex-retargeting's construction)": flip_rate(rot_059)}


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``main``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", nargs="*", default=["allegro", "leap", "shadow", "inspire",
                                                       "ability"])
    parser.add_argument("--side", default="both", choices=("left", "right", "both"),
                        help="left hands get the right-hand sequence mirrored")
    parser.add_argument("--damping", nargs="*", type=float, default=[3e-4, 1e-3],
                        help="extra rows of ours with these regularization weights: the jerk / "
                             "accuracy trade-off")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one of our options on every hand (repeatable), e.g. "
                             "huber_delta=0.02")
    parser.add_argument("--frames", type=int, default=2000, help="real sequence length")
    parser.add_argument("--seed", type=int, default=0,
                        help="real sequence: shape order, sway and jitter")
    parser.add_argument("--synthetic-frames", type=int, default=600)
    parser.add_argument("--cpu", type=int, default=0, help="the one core everything runs on")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed passes per system and sequence; the fastest counts "
                             "(dex-retargeting: one; with --side both the left side gets one "
                             "pass and no filter, lag or --damping rows)")
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared/data/hands")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir())
                        / "hand_perception_bench" / "retargeting_shapes.npy")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/retargeting.md")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.no_peers and not PEER_PYTHON.is_file():
        parser.error(f"{PEER_PYTHON} missing: run bash bench/setup_retargeting_peers.sh")
    try:
        overrides = parse_overrides(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    shapes = detect_shapes(args.images, args.cache)  # before pinning: the detector is heavy
    os.sched_setaffinity(0, {args.cpu})  # peers inherit it: every solver on the same core
    real = real_clip(shapes, args.frames, args.seed)
    clean = real_clip(shapes, args.frames, args.seed, noise_m=0.0)  # the same, no jitter
    sides = ("right", "left") if args.side == "both" else (args.side,)
    first = Settings(args.synthetic_frames, not args.no_peers, args.repeats, args.damping,
                     True, overrides)
    later = dataclasses.replace(first, repeats=1, damping=(), filters=False)  # accuracy only
    results = {}
    for side in sides:
        mirror = (lambda k: k) if side == "right" else mirror_to_left
        for hand in args.hands:
            stem = f"{hand}_{side}"
            print(f"benchmarking {stem} ...", flush=True)
            results[stem] = bench_hand(stem, mirror(real), mirror(clean),
                                       first if side == sides[0] else later)
    command = " ".join(["python bench/bench_retargeting.py"] + list(argv or sys.argv[1:]))
    passes = f"dex-retargeting{' and the left side' if len(sides) > 1 else ''}: one"
    header = (f"# Retargeting benchmark\n\n`{command}` — {len(shapes)} real hand shapes, real "
              f"sequence {args.frames} frames (seed {args.seed}), synthetic "
              f"{args.synthetic_frames} frames, {FPS:.0f} fps, side {args.side}, everything on "
              f"CPU {args.cpu}, best of {args.repeats} timed passes ({passes}); measured "
              f"{time.strftime('%Y-%m-%d %H:%M')}.")
    text = report(results, flip_rows(real), header, mirror_mismatches(args.hands))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
