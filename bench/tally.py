"""Accumulators turning per-frame predictions + GT into the evaluation's table rows."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from bench import metrics
from bench.metrics import GtHand
from bench.report import ratio
from bench.runners import FrameResult


@dataclass
class Tally:
    """Detection, PCK@0.2, pixel error and handedness over photos or frames."""

    gt_hands: int = 0
    found: int = 0
    false_positives: int = 0
    pck_ok: int = 0
    pck_total: int = 0
    errors: List[float] = field(default_factory=list)
    hand_ok: int = 0
    hand_known: int = 0

    def add(self, result: FrameResult, gts: Sequence[GtHand]) -> List[tuple]:
        """Score one image; returns the (pred, gt) index pairs."""
        pairs = metrics.match_hands(result.keypoints, gts)
        self.gt_hands += len(gts)
        self.found += len(pairs)
        self.false_positives += len(result.hands) - len(pairs)
        self.pck_total += sum(int(g.visible.sum()) for g in gts)  # a miss: all wrong
        for p, g in pairs:
            ok, _ = metrics.pck_counts(result.keypoints[p], gts[g])
            self.pck_ok += ok
            self.errors += metrics.keypoint_errors(result.keypoints[p], gts[g]).tolist()
            correct = metrics.handedness_correct(result.hands[p]["handedness"], gts[g])
            if correct is not None:
                self.hand_known += 1
                self.hand_ok += int(correct)
        return pairs

    def cells(self) -> list:
        """recall %, false positives, PCK@0.2 %, mean px error, handedness %."""
        hand = 100 * ratio(self.hand_ok, self.hand_known) if self.hand_known else None
        return [100 * ratio(self.found, self.gt_hands), self.false_positives,
                100 * ratio(self.pck_ok, self.pck_total), metrics.summarise_errors(self.errors),
                hand]


@dataclass
class SequenceTally(Tally):
    """A Tally plus the temporal metrics of video sequences."""

    frames: int = 0
    detector_runs: Optional[int] = 0
    pred_accel: List[np.ndarray] = field(default_factory=list)
    gt_accel: List[np.ndarray] = field(default_factory=list)
    residual_accel: List[np.ndarray] = field(default_factory=list)
    id_switches: int = 0
    flips: int = 0
    latencies: List[float] = field(default_factory=list)

    def add_sequence(self, results: Sequence[FrameResult],
                     gt_frames: Sequence[Sequence[GtHand]]) -> None:
        """Score one sequence; GT hand j is the same hand in every frame."""
        n_gt = len(gt_frames[0])
        pred = np.full((len(results), n_gt, metrics.NUM_KEYPOINTS, 2), np.nan)
        gt = np.full_like(pred, np.nan)
        ids: Dict[int, list] = {j: [] for j in range(n_gt)}
        labels: Dict[int, list] = {j: [] for j in range(n_gt)}
        for t, (result, gts) in enumerate(zip(results, gt_frames)):
            matched = {g: p for p, g in self.add(result, gts)}
            for j in range(n_gt):
                p = matched.get(j)
                ids[j].append(None if p is None else result.hands[p]["track_id"])
                labels[j].append(None if p is None else result.hands[p]["handedness"])
                if p is not None:
                    mask = gts[j].visible
                    pred[t, j, mask] = result.keypoints[p][mask]
                    gt[t, j, mask] = gts[j].keypoints[mask]
        for j in range(n_gt):
            self.pred_accel.append(metrics.acceleration_norms(pred[:, j]))
            self.gt_accel.append(metrics.acceleration_norms(gt[:, j]))
            self.residual_accel.append(metrics.acceleration_norms(pred[:, j] - gt[:, j]))
            self.id_switches += metrics.count_id_switches(ids[j])
            self.flips += metrics.count_label_flips(labels[j])
        self.frames += len(results)
        runs = [r.detector_ran for r in results]
        self.detector_runs = None if self.detector_runs is None or None in runs \
            else self.detector_runs + sum(runs)
        self.latencies += [r.latency_ms for r in results]

    def temporal_cells(self) -> list:
        """jitter px/f^2 (pred, GT, residual), ID switches, flips, detector runs, mean ms."""
        def mean(chunks):
            joined = np.concatenate(chunks) if chunks else np.zeros(0)
            return float(joined.mean()) if joined.size else float("nan")
        runs = None if self.detector_runs is None else f"{self.detector_runs}/{self.frames}"
        return [mean(self.pred_accel), mean(self.gt_accel), mean(self.residual_accel),
                self.id_switches, self.flips, runs, float(np.mean(self.latencies))]
