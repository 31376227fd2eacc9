"""Scenes of the evaluation beyond the plain photos: small hands in large frames (our tiled
second detector pass vs MediaPipe) and hand-free images (false positives)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, List, Tuple

import cv2
import numpy as np

from bench import report, sequences
from bench.metrics import GtHand
from bench.runners import pipeline_options
from bench.tally import Tally

LARGE: Tuple[int, int] = (1920, 1080)
#: GT box longer side after pasting, px: 1920x1080 letterboxed to the detector's 192 px input
#: shrinks a hand 10x, so these are 5-10 px there.
SMALL_HAND_PX = (50, 100)


def samples() -> List[Tuple[str, np.ndarray]]:
    """bus.jpg and zidane.jpg as RGB (empty when set-up has not extracted them)."""
    from hand_perception.paths import sample_path

    out = []
    for name in ("bus.jpg", "zidane.jpg"):
        try:
            out.append((name, cv2.cvtColor(cv2.imread(str(sample_path(name))), cv2.COLOR_BGR2RGB)))
        except ValueError:
            pass
    return out


def small_hand_frames(data: Path, load_set: Callable) -> List[Tuple[np.ndarray, List[GtHand]]]:
    """Every GT photo pasted into a grey 1920x1080 frame at a seeded random place, its hand
    scaled to each of ``SMALL_HAND_PX``."""
    rng = np.random.default_rng(7)
    out = []
    for name in ("freihand", "onehand10k"):
        for _, rgb, gts in load_set(data, name):
            for target in SMALL_HAND_PX:
                scale = target / max(g.box_size for g in gts)
                w, h = rgb.shape[1] * scale, rgb.shape[0] * scale
                centre = (rng.uniform(w / 2, LARGE[0] - w / 2), rng.uniform(h / 2, LARGE[1] - h / 2))
                out.append(sequences.paste(rgb, gts, LARGE, scale, centre))
    return out


def tiled_section(data: Path, load_set: Callable, run_ours: Callable, run_peer: Callable) -> str:
    """Small pasted hands with GT, and hand counts on the sample photos."""
    scenes = small_hand_frames(data, load_set)
    frames = [f for f, _ in scenes]
    plain = pipeline_options(True)
    no_tiles = dataclasses.replace(
        plain, tiled_detection=dataclasses.replace(plain.tiled_detection, enabled=False))
    runs = {"ours (tiled pass)": run_ours(frames, True, plain),
            "ours (tiled pass off)": run_ours(frames, True, no_tiles),
            "mediapipe": run_peer(frames, True)}
    rows = []
    for target in SMALL_HAND_PX:
        for method, results in runs.items():
            tally = Tally()
            for (frame, gts), result in zip(scenes, results):
                if round(max(g.box_size for g in gts)) == target:
                    tally.add(result, gts)
            mean_ms = float(np.mean([r.latency_ms for r in results]))
            rows.append([f"{target} px", method, tally.gt_hands] + tally.cells()[:4] + [mean_ms])
    photos = samples()
    named = [rgb for _, rgb in photos]
    counts = {"ours (tiled pass)": run_ours(named, True, plain),
              "ours (tiled pass off)": run_ours(named, True, no_tiles),
              "mediapipe": run_peer(named, True, stack=False)}
    sample_rows = [[name] + [len(counts[m][i].hands) for m in counts]
                   for i, (name, _) in enumerate(photos)]
    return "\n\n".join([
        "## Small hands in 1920x1080 frames (static image mode)",
        report.table(["hand size", "method", "GT hands", "recall %", "false pos.", "PCK@0.2 %",
                      "mean px err", "mean ms/image"], rows),
        "Each GT photo (FreiHAND, OneHand10K) scaled so its hand box's longer side is the given "
        "size and pasted at a random place into a grey 1920x1080 frame.",
        "### Sample photos: hands found", report.table(["image"] + list(counts), sample_rows)])


def textures() -> List[Tuple[str, np.ndarray]]:
    """Hand-free images: crops of bus.jpg without people, a plain grey frame, smooth noise."""
    rng = np.random.default_rng(3)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3)).astype(np.uint8), (0, 0), 3)
    wood = (128 + 60 * np.sin(np.linspace(0, 40, 640))[None, :, None]
            + rng.normal(0, 12, (480, 640, 3))).clip(0, 255).astype(np.uint8)
    out = [("grey 640x480", np.full((480, 640, 3), 114, np.uint8)),
           ("blurred noise 640x480", noise), ("stripes+noise 640x480", wood)]
    for name, rgb in samples():
        if name == "bus.jpg":  # people start below y=380 and above y=900 at x >= 300
            out += [("bus.jpg top (no people)", np.ascontiguousarray(rgb[:380])),
                    ("bus.jpg pavement", np.ascontiguousarray(rgb[920:, 300:]))]
    return out


def negatives_section(run_ours: Callable, run_peer: Callable, n_frames: int = 60) -> str:
    """False positives on hand-free images, as photos and as 60-frame pans (video mode)."""
    images = textures()
    rows = []
    static = {"ours": run_ours([rgb for _, rgb in images], True),
              "mediapipe": run_peer([rgb for _, rgb in images], True, stack=False)}
    for i, (name, rgb) in enumerate(images):
        canvas = (640, 480)
        size = (rgb.shape[1], rgb.shape[0])
        scale = 1.3 * max(canvas[0] / size[0], canvas[1] / size[1])
        layer = sequences.Layer(rgb, [], [sequences.similarity(
            (canvas[0] / 2 + 40 * np.sin(a), canvas[1] / 2), scale, 5 * np.sin(a), size)
            for a in np.linspace(0, 2 * np.pi, n_frames)])
        video = [f for f, _ in sequences.frames([layer], canvas)]
        moving = {"ours": run_ours(video, False), "mediapipe": run_peer(video, False)}
        rows.append([name] + [len(static[m][i].hands) for m in static]
                    + [sum(len(r.hands) for r in moving[m]) for m in moving])
    return "\n\n".join([
        "## Hand-free images: false positives",
        report.table(["image", "ours (photo)", "mediapipe (photo)",
                      f"ours ({n_frames}-frame pan, hand-frames)",
                      f"mediapipe ({n_frames}-frame pan, hand-frames)"], rows)])
