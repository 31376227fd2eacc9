"""Run MediaPipe's Python hand pipeline (``mp.solutions.hands``) on frames; write JSONL.

Runs with the peers venv's interpreter (bench/setup_peers.sh), never the main venv:

    .venv-peers/bin/python bench/peers/mediapipe_runner.py --frames F.npy --mode video --out R.jsonl
    .venv-peers/bin/python bench/peers/mediapipe_runner.py --images a.jpg b.jpg --mode static ...

Input: ``--frames`` ``.npy`` files, stacks ``(N, H, W, 3)`` or single ``(H, W, 3)`` uint8 RGB
frames (in order), and/or
``--images`` files (read with OpenCV, BGR -> RGB). One JSON object per frame, as
``hand-perception detect`` writes them: ``{"image", "frame", "stamp_s", "latency_ms", "hands":
[{"track_id", "handedness", "handedness_score", "score", "keypoints_2d"}]}``.

MediaPipe's handedness assumes a mirrored (selfie) image; the frames here are not mirrored, so
its "Left" is the person's right hand and is written "right". MediaPipe has no track ids: the
runner links each frame's hands to the previous frame's greedily (closest mean keypoint
distance below half the hand size), which is what a user of the solution has to do.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

FLIP = {"Left": "right", "Right": "left"}


def hand_size(keypoints: np.ndarray) -> float:
    """Diagonal of the keypoints' bounding box, px."""
    return float(np.linalg.norm(keypoints.max(axis=0) - keypoints.min(axis=0)))


class IdLinker:
    """Greedy frame-to-frame association giving MediaPipe's hands persistent ids."""

    def __init__(self) -> None:
        self.previous = []  # (id, keypoints)
        self.next_id = 0

    def link(self, hands: list) -> list:
        pairs = sorted(
            (float(np.linalg.norm(kp - prev, axis=1).mean()) / max(hand_size(prev), 1.0), i, tid)
            for i, kp in enumerate(hands) for tid, prev in self.previous)
        ids, used = [None] * len(hands), set()
        for cost, i, tid in pairs:
            if cost < 0.5 and ids[i] is None and tid not in used:
                ids[i] = tid
                used.add(tid)
        for i in range(len(hands)):
            if ids[i] is None:
                ids[i], self.next_id = self.next_id, self.next_id + 1
        self.previous = list(zip(ids, hands))
        return ids


def to_hands(result, width: int, height: int, linker: IdLinker) -> list:
    """MediaPipe result -> list of hand dicts in the detect JSONL schema."""
    if not result.multi_hand_landmarks:
        linker.link([])
        return []
    keypoints = [np.array([[p.x * width, p.y * height] for p in lm.landmark], np.float32)
                 for lm in result.multi_hand_landmarks]
    ids = linker.link(keypoints)
    hands = []
    for kp, tid, cls in zip(keypoints, ids, result.multi_handedness):
        label = cls.classification[0]
        hands.append({"track_id": int(tid), "handedness": FLIP[label.label],
                      "handedness_score": float(label.score),
                      # the Python solution exposes no presence score; it only returns hands
                      # above min_tracking_confidence, so 1.0 means "kept"
                      "score": 1.0, "keypoints_2d": kp.round(2).tolist()})
    return hands


def frame_source(args):
    """Yield (source name, RGB frame)."""
    for path in args.frames or []:
        stack = np.load(path, mmap_mode="r")
        if stack.ndim == 3:  # one (H, W, 3) frame
            stack = stack[None]
        for i in range(stack.shape[0]):
            yield f"{path}[{i}]", np.ascontiguousarray(stack[i])
    for path in args.images or []:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read image {path}")
        yield path, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", nargs="*", help=".npy files: (N, H, W, 3) or (H, W, 3) uint8 RGB")
    parser.add_argument("--images", nargs="*")
    parser.add_argument("--mode", choices=("static", "video"), default="static")
    parser.add_argument("--max-hands", type=int, default=2)
    parser.add_argument("--min-detection", type=float, default=0.5)
    parser.add_argument("--min-tracking", type=float, default=0.5)
    parser.add_argument("--model-complexity", type=int, default=1, help="1 = the 'full' models")
    parser.add_argument("--warmup", type=int, default=0, help="untimed passes over the first frame")
    parser.add_argument("--fps", type=float, default=30.0, help="stamp spacing of --frames")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import mediapipe as mp  # the peer venv only

    hands_solution = mp.solutions.hands.Hands(
        static_image_mode=args.mode == "static", max_num_hands=args.max_hands,
        model_complexity=args.model_complexity, min_detection_confidence=args.min_detection,
        min_tracking_confidence=args.min_tracking)
    linker = IdLinker()
    with hands_solution, open(args.out, "w") as out:
        for index, (source, rgb) in enumerate(frame_source(args)):
            if index == 0:
                for _ in range(args.warmup):
                    hands_solution.process(rgb)
            if args.mode == "static":
                linker = IdLinker()
            start = time.perf_counter()
            result = hands_solution.process(rgb)
            latency_ms = (time.perf_counter() - start) * 1e3
            hands = to_hands(result, rgb.shape[1], rgb.shape[0], linker)
            out.write(json.dumps({"frame": index, "image": source, "stamp_s": index / args.fps,
                                  "latency_ms": latency_ms, "detector_ran": None,
                                  "hands": hands}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
