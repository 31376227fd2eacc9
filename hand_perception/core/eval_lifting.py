"""Evaluate metric 3D lifting on rendered hand scenes with known geometry.

Run ``python -m hand_perception.core.eval_lifting`` for a table of the mean per-joint 3D error (mm)
at several distances, for: depth lifting on a clean depth image (with depth noise), depth lifting
with holes and an occluding box in front of two fingers, and monocular lifting. Every scene has
2D keypoint noise (default 2 px) and world-shape noise (default 3 mm). See
:mod:`hand_perception.core.synthetic` for the renderer.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from hand_perception.core.lifting import HandLifter, LiftingOptions
from hand_perception.core.options import require_range
from hand_perception.core.synthetic import random_hand_scene

_LOG = logging.getLogger(__name__)
MODES = ("depth_clean", "depth_holes_occluder", "monocular")


@dataclass
class LiftingEvalOptions:
    """Scenes to render: ``trials`` per distance (m); noise levels; hole pixel fraction."""

    distances_m: Sequence[float] = (0.3, 0.5, 0.8, 1.2)
    trials: int = 20
    kp_noise_px: float = 2.0
    world_noise_m: float = 0.003
    hole_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.distances_m:
            raise ValueError("distances_m must not be empty")
        for d in self.distances_m:
            require_range("distances_m", d, 0.2, 3.0)
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials={self.trials!r} must be an integer >= 1")
        require_range("kp_noise_px", self.kp_noise_px, 0.0, 20.0)
        require_range("world_noise_m", self.world_noise_m, 0.0, 0.05)
        require_range("hole_fraction", self.hole_fraction, 0.0, 0.9)


@dataclass
class LiftingEvalResult:
    """``errors_mm[mode][distance]``: mean per-joint 3D error (mm) over all trials and joints;
    ``failures[mode][distance]``: trials where the lifter ran in another mode or failed."""

    errors_mm: Dict[str, Dict[float, float]] = field(default_factory=dict)
    failures: Dict[str, Dict[float, int]] = field(default_factory=dict)


def _scene_errors(lifter: HandLifter, distance: float, rng: np.random.Generator,
                  opts: LiftingEvalOptions) -> Dict[str, Optional[np.ndarray]]:
    """Per-joint errors (m) of each mode on one random pose (None where the mode failed)."""
    out: Dict[str, Optional[np.ndarray]] = {}
    state = rng.bit_generator.state
    for mode in MODES:
        rng.bit_generator.state = state  # same hand and noise for every mode
        holes = mode == "depth_holes_occluder"
        scene = random_hand_scene(distance, rng, kp_noise_px=opts.kp_noise_px,
                                  world_noise_m=opts.world_noise_m,
                                  hole_fraction=opts.hole_fraction if holes else 0.0,
                                  occluder=holes)
        depth = None if mode == "monocular" else scene.depth
        res = lifter.process(scene.keypoints_2d, scene.world_keypoints, scene.K, depth)
        wanted = "monocular" if mode == "monocular" else "depth"
        ok = res.mode == wanted and res.valid.all()
        out[mode] = np.linalg.norm(res.points_camera - scene.points_camera, axis=1) if ok else None
    return out


def evaluate(opts: Optional[LiftingEvalOptions] = None,
             lifter_options: Optional[LiftingOptions] = None) -> LiftingEvalResult:
    """Run all modes on ``opts.trials`` random scenes per distance."""
    opts = opts if opts is not None else LiftingEvalOptions()
    lifter = HandLifter(lifter_options)
    rng = np.random.default_rng(opts.seed)
    result = LiftingEvalResult({m: {} for m in MODES}, {m: {} for m in MODES})
    for distance in opts.distances_m:
        errs: Dict[str, List[np.ndarray]] = {m: [] for m in MODES}
        for _ in range(opts.trials):
            for mode, err in _scene_errors(lifter, distance, rng, opts).items():
                if err is not None:
                    errs[mode].append(err)
            rng.random()  # advance: the next pose differs from this one
        for mode in MODES:
            result.errors_mm[mode][distance] = (
                float(np.mean(errs[mode]) * 1000.0) if errs[mode] else float("nan"))
            result.failures[mode][distance] = opts.trials - len(errs[mode])
    return result


def format_table(result: LiftingEvalResult) -> str:
    """Markdown table: one row per distance, mean per-joint error (mm) per mode."""
    distances = sorted(next(iter(result.errors_mm.values())))
    header = " | ".join(f"{m} (mm)" for m in MODES)
    lines = [f"| distance (m) | {header} | monocular (% of z) |",
             "|---" * (len(MODES) + 2) + "|"]
    for d in distances:
        cells = [f"{result.errors_mm[m][d]:.1f}" + (f" ({result.failures[m][d]} failed)"
                                                      if result.failures[m][d] else "")
                 for m in MODES]
        pct = result.errors_mm["monocular"][d] / (10.0 * d)
        lines.append(f"| {d:.2f} | " + " | ".join(cells) + f" | {pct:.1f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point: print the table to stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--distances", type=float, nargs="+", default=[0.3, 0.5, 0.8, 1.2])
    parser.add_argument("--kp-noise-px", type=float, default=2.0)
    parser.add_argument("--world-noise-m", type=float, default=0.003)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    opts = LiftingEvalOptions(distances_m=tuple(args.distances), trials=args.trials,
                              kp_noise_px=args.kp_noise_px, world_noise_m=args.world_noise_m,
                              seed=args.seed)
    sys.stdout.write(format_table(evaluate(opts)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
