"""Accuracy of our hand tracker vs MediaPipe's Python pipeline (mp.solutions.hands 0.10.14),
both run in this one invocation on identical pixels.

    python bench/eval_hand_tracking.py [--sections photos,sequences,tiled,negatives]
        [--frames 90] [--sources 12] [--out bench/results/eval_hand_tracking.md]

Photos (static_image_mode for both): FreiHAND + OneHand10K with GT, in_the_wild counted.
Sequences (video mode for both): the GT photos panned, zoomed, rotated and shaken on a 640x480
canvas, plus two photos approaching each other; GT moved alike. Tiled: small hands pasted
into 1920x1080 frames, bus.jpg, zidane.jpg. Negatives: hand-free images (false positives).
Needs the peers venv: bash bench/setup_peers.sh.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make `import bench.x` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import eval_scenes, metrics, report, sequences  # noqa: E402
from bench.runners import ROOT, pipeline_options, run_ours, run_peer  # noqa: E402
from bench.tally import SequenceTally, Tally  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "hands"
GT_SETS: Dict[str, Tuple[str, str]] = {  # folder -> (GT file, handedness of every hand)
    "freihand": ("test_freihand.json", "right"),  # FreiHAND shows right hands only
    "onehand10k": ("test_onehand10k.json", ""),  # unlabelled; ambiguous from 2D keypoints
}
METHODS = ("ours", "mediapipe")
#: Our pipeline with MediaPipe's detector-input sampling and search schedule (a video row).
MP_SAMPLING = "ours, MediaPipe's sampling + schedule"
NODE_SCHEDULE = "ours, search between frames (the node)"
SECTIONS = ("photos", "sequences", "tiled", "negatives")


def read_rgb(path: Path) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_set(data: Path, name: str) -> List[Tuple[str, np.ndarray, List[metrics.GtHand]]]:
    """(file name, RGB, GT hands) of every image of a GT set."""
    gt_file, handedness = GT_SETS[name]
    hands = metrics.load_coco_hands(data / name / gt_file, handedness)
    return [(file, read_rgb(data / name / file), hands[file]) for file in sorted(hands)]


def run_both(frames: Sequence[np.ndarray], static: bool, stack: bool = True) -> dict:
    """{method: [FrameResult]} for our pipeline and MediaPipe on the same frames."""
    return {"ours": run_ours(frames, static),
            "mediapipe": run_peer(frames, static, stack=stack)}


def photos_section(data: Path) -> str:
    """Per-set accuracy on the GT photos plus hand counts on in_the_wild."""
    rows = []
    for name in GT_SETS:
        items = load_set(data, name)
        results = run_both([rgb for _, rgb, _ in items], static=True, stack=False)
        for method in METHODS:
            tally = Tally()
            for (_, _, gts), result in zip(items, results[method]):
                tally.add(result, gts)
            rows.append([name, method, len(items), tally.gt_hands] + tally.cells())
    wild = sorted((data / "in_the_wild").glob("*.jpg"))
    results = run_both([read_rgb(p) for p in wild], static=True, stack=False)
    wild_rows = [[p.name] + [len(results[m][i].hands) for m in METHODS]
                 for i, p in enumerate(wild)]
    return "\n\n".join([
        "## Photos (static image mode)",
        report.table(["set", "method", "images", "GT hands", "recall %", "false pos.",
                      "PCK@0.2 %", "mean px err", "handedness %"], rows),
        "PCK@0.2: labelled keypoints within 0.2 x the GT box's longer side; a missed hand counts "
        "all its keypoints wrong. Mean px error over found hands. Handedness only where the GT "
        "says (FreiHAND: right hands).",
        "### in_the_wild (no GT): hands found", report.table(["image"] + list(METHODS), wild_rows)])


def mediapipe_sampling_options():
    """Our video-mode options with MediaPipe's detector input (``palm_detector.resampling =
    "mediapipe"``) and its search schedule (the detector on every frame with fewer than
    max_hands tracked: ``redetect_interval_frames = 1``; no tiled sweep)."""
    options = pipeline_options(False)
    detector = dataclasses.replace(options.palm_detector, resampling="mediapipe")
    tiles = dataclasses.replace(options.tiled_detection, interval_frames=0)
    return dataclasses.replace(options, redetect_interval_frames=1, palm_detector=detector,
                               tiled_detection=tiles)


def sequence_scenes(data: Path, kinds: Sequence[str], n_frames: int, n_sources: int
                    ) -> List[Tuple[str, List[sequences.Layer]]]:
    """(kind, layers) of every sequence: each GT photo per kind, plus two-photo approaches."""
    photos = [item for name in GT_SETS for item in load_set(data, name)]
    photos = photos[::max(1, len(photos) // n_sources)][:n_sources]
    scenes = []
    for kind in kinds:
        for _, rgb, gts in photos:
            size = (rgb.shape[1], rgb.shape[0])
            scenes.append((kind, [sequences.Layer(rgb, gts, sequences.motion(kind, n_frames, size))]))
    for a, b in zip(photos[0::2], photos[1::2]):
        sizes = [(a[1].shape[1], a[1].shape[0]), (b[1].shape[1], b[1].shape[0])]
        mats = sequences.approach(n_frames, sizes)
        scenes.append(("two_hands", [sequences.Layer(a[1], a[2], mats[0]),
                                     sequences.Layer(b[1], b[2], mats[1])]))
    return scenes


def sequences_section(data: Path, kinds: Sequence[str], n_frames: int, n_sources: int) -> str:
    """Video-mode accuracy and stability per motion kind."""
    tallies: Dict[Tuple[str, str], SequenceTally] = {}
    for kind, layers in sequence_scenes(data, kinds, n_frames, n_sources):
        rendered = list(sequences.frames(layers))
        frames, gt_frames = [f for f, _ in rendered], [g for _, g in rendered]
        results = run_both(frames, static=False)
        results[MP_SAMPLING] = run_ours(frames, False, mediapipe_sampling_options())
        results[NODE_SCHEDULE] = run_ours(frames, False, pipeline_options(
            False, search_between_frames=True), search_steps=1)
        for method in (*METHODS, MP_SAMPLING, NODE_SCHEDULE):
            tally = tallies.setdefault((kind, method), SequenceTally())
            tally.add_sequence(results[method], gt_frames)
    rows = [[kind, method, tally.frames] + tally.cells()[:4] + tally.temporal_cells()
            for (kind, method), tally in tallies.items()]
    return "\n\n".join([
        f"## Moving sequences (video mode, {n_frames} frames each, 640x480)",
        report.table(["motion", "method", "frames", "recall %", "false pos.", "PCK@0.2 %",
                      "mean px err", "jitter px/f²", "GT accel px/f²", "residual jitter px/f²",
                      "ID switches", "handedness flips", "detector runs", "mean ms/frame"], rows),
        "jitter: mean keypoint acceleration |x[t+1] - 2x[t] + x[t-1]| of the prediction; GT "
        "accel: the same of the GT on the same frames (the true motion's share); residual: "
        "acceleration of the error (prediction - GT), i.e. jitter with the true motion removed. "
        "MediaPipe has no track ids: ids are linked frame to frame by the harness (closest "
        "keypoints). MediaPipe does not report when its palm detector runs (n/a); its graph runs "
        "it on every frame where fewer than max_num_hands=2 hands are tracked. \"ours, "
        "MediaPipe's sampling + schedule\": palm_detector.resampling=mediapipe (bilinear on "
        "MediaPipe's grid instead of our INTER_AREA shrink to the detector's 192x192) and "
        "redetect_interval_frames=1 (MediaPipe's search on every frame with fewer than 2 hands; "
        "ours: every 10th), without our tiled sweep (ours: over 2x3 tiles at most every 30th "
        "frame while fewer than 2 hands are tracked). \"ours, search between frames (the "
        "node)\": search_between_frames=true, as hand_tracker_node runs it: while a hand is "
        "tracked, the search for a further one runs one detector pass between frames (one "
        "search_step() after each frame here) instead of inside a frame."])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--kinds", default=",".join(sequences.KINDS))
    parser.add_argument("--frames", type=int, default=90, help="frames per sequence")
    parser.add_argument("--sources", type=int, default=12, help="GT photos used for sequences")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_hand_tracking.md")
    args = parser.parse_args(argv)
    chosen = [s for s in args.sections.split(",") if s]
    for name in chosen:
        if name not in SECTIONS:
            parser.error(f"--sections: {name!r} is not one of {SECTIONS}")
    start, parts = time.perf_counter(), []
    if "photos" in chosen:
        parts.append(photos_section(args.data))
    if "sequences" in chosen:
        parts.append(sequences_section(args.data, args.kinds.split(","), args.frames, args.sources))
    if "tiled" in chosen:
        parts.append(eval_scenes.tiled_section(args.data, load_set, run_ours, run_peer))
    if "negatives" in chosen:
        parts.append(eval_scenes.negatives_section(run_ours, run_peer))
    parts.append(f"Wall time: {time.perf_counter() - start:.0f} s.")
    command = "python bench/eval_hand_tracking.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(report.write(args.out, "Hand tracking accuracy: ours vs MediaPipe 0.10.14",
                       parts, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
