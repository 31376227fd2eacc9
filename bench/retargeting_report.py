"""Markdown report of bench/bench_retargeting.py: the tables and how to read them."""
from __future__ import annotations

from typing import Dict, List, Optional

from bench.retargeting_metrics import FLIP_DEG

NOTES = """
## How to read this

* Same inputs for all: per hand the same link pairs (the config's weight-1 `vector_pairs`; ours
  also has its weight-0.3 PIP pairs and `huber_delta` from `config/retargeting/`), the same
  scaling, the same target vectors (human keypoints mapped by our palm frame). Warm-started, no
  output filter, except the rows naming one (synthetic only, lag vs the true pose).
* tip-vector err: |robot wrist→fingertip − scaling × human wrist→fingertip|, mean over tips (mm).
  On the real sequence it is mostly what the robot cannot reach (Inspire/Ability have 6 DoF).
  vs noise-free: the same against the sequence before its 2 mm jitter (following the jitter
  lowers the first number, not this one). tip err vs truth: fingertip distance to the FK of the
  true joints (synthetic only).
* ours reg=…: `regularization` (weight of |q − warm start|², m²/rad²; shipped 1e-4) raised, first
  side only: less jerk on the jittered input, more lag error on clean input (synthetic rows).
* limit viol.: frames with any URDF joint, mimic joints included (with their own limits), outside
  its limits by > 1e-6 rad, and the largest excess.
* RMS jerk: third difference of all joints × 30³ (rad/s³); the peers damp joint velocity
  (their `normal_delta`), which lowers jerk on noisy input and costs accuracy on clean input.
* solves/s: the solve loop only, one core shared with other work on this machine (±30 %).
* flips: frame-to-frame rotation steps > 60° on the real sequence, whose true rotation moves by a
  few degrees per frame; 0, 5, 9 is the peers' construction (`frame_from_059`).
* left hands: the right-hand sequence mirrored (camera x negated) on the dexi-rs left URDFs. Where
  those are mirror images of the right ones (URDF mismatch 0) ours is identical on both sides; the
  Allegro, Inspire and LEAP left models are not (thumbs placed differently; LEAP's finger row is
  12 mm off along the palm normal and its PIP/DIP servo links lie beside the finger on the other
  side), so the same motion has different reachable errors there, for the peers too. URDF mismatch: largest
  distance between the right robot's keypoints and the best-reflected left ones at q = 0, all
  joints clipped into their limits.
"""




def side_rows(results: Dict[str, dict], mismatch: Dict[str, float]) -> List[str]:
    """Table lines: real-sequence tip-vector error right / left per hand and system (both sides
    benchmarked only), and how far the left URDF is from the mirrored right one."""
    hands = [s[:-len("_right")] for s in results
             if s.endswith("_right") and f"{s[:-len('_right')]}_left" in results]
    if not hands:
        return []
    right, left = results[f"{hands[0]}_right"], results[f"{hands[0]}_left"]
    systems = [name for name in right if "real" in right[name] and "real" in left.get(name, {})]
    lines = ["", "## Left vs right (real sequence; left = the same motion mirrored)", "",
             "| hand | URDF mismatch [mm] | " + " | ".join(f"{s} right / left [mm]"
                                                            for s in systems) + " |",
             "|---|---|" + "---|" * len(systems)]
    for hand in hands:
        cells = [f"{results[f'{hand}_right'][s]['real']['err']:.2f} / "
                 f"{results[f'{hand}_left'][s]['real']['err']:.2f}" for s in systems]
        lines.append(f"| {hand} | {1e3 * mismatch[hand]:.1f} | " + " | ".join(cells) + " |")
    return lines


def report(results: Dict[str, dict], flips: Dict[str, float], header: str,
           mismatch: Optional[Dict[str, float]] = None) -> str:
    lines = [header, "", "## Real sequence (detector world keypoints, eased motion, 2 mm jitter)",
             "", "| hand | system | tip-vector err mean / p95 [mm] | vs noise-free [mm] | "
             "limit viol. [% frames] / max [rad] | RMS jerk [rad/s³] | solves/s (1 core) |",
             "|---|---|---|---|---|---|---|"]
    for stem, rows in results.items():
        for system, seqs in rows.items():
            if "real" in seqs:
                m = seqs["real"]
                lines.append(f"| {stem} | {system} | {m['err']:.2f} / {m['err_p95']:.1f} | "
                             f"{m.get('err_clean', float('nan')):.2f} | "
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
    lines += side_rows(results, mismatch or {})
    lines += ["", f"## Wrist-frame flips on the real sequence (step > {FLIP_DEG:.0f}°)", "",
              "| construction | flips [% of frames] |", "|---|---|"]
    lines += [f"| {name} | {100 * rate:.2f} |" for name, rate in flips.items()]
    return "\n".join(lines) + "\n" + NOTES
