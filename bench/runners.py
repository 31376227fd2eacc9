"""Run our HandPipeline (this venv) and MediaPipe's Python pipeline (the peers venv, as a
subprocess: bench/peers/mediapipe_runner.py) on the same frames; one result format for both.

Frames go to the peer as ``.npy`` files so both sides see identical pixels (no second JPEG
decode with another OpenCV build).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = Path(os.environ.get("PEERS_VENV", ROOT / ".venv-peers")) / "bin" / "python"
PEER_RUNNER = ROOT / "bench" / "peers" / "mediapipe_runner.py"
FPS = 30.0


@dataclass
class FrameResult:
    """One frame's hands as dicts (``track_id``, ``handedness``, ``score``, ``keypoints_2d``
    ``(21, 2)`` float px), the process() latency and whether the palm detector ran (``None``
    when the method does not say)."""

    hands: List[dict] = field(default_factory=list)
    latency_ms: float = float("nan")
    detector_ran: Optional[bool] = None
    timings_ms: Dict[str, float] = field(default_factory=dict)

    @property
    def keypoints(self) -> List[np.ndarray]:
        return [h["keypoints_2d"] for h in self.hands]


def pipeline_options(static: bool, **overrides):
    """Our default options (config/hand_pipeline.yaml) with ``static_image_mode`` and any
    top-level overrides (e.g. ``tiled_detection=...``)."""
    from hand_perception.core.hand_pipeline import load_pipeline_options

    options = load_pipeline_options()
    return dataclasses.replace(options, static_image_mode=static, **overrides)


def _our_hands(result) -> List[dict]:
    return [{"track_id": int(h.track_id), "handedness": h.handedness,
             "handedness_score": float(h.handedness_score), "score": float(h.score),
             "keypoints_2d": np.asarray(h.keypoints_2d, np.float64)} for h in result.hands]


def run_ours(frames: Iterable[np.ndarray], static: bool, options=None,
             search_steps: int = 0) -> List[FrameResult]:
    """Our pipeline over ``frames`` (RGB uint8): photos (``static``: reset before each image,
    detector every time) or one video stream at ``FPS``. ``search_steps`` > 0: up to that many
    ``search_step()`` calls after each frame, untimed (hand_tracker_node's idle time between
    images; the options need ``search_between_frames``)."""
    from hand_perception.core.hand_pipeline import HandPipeline

    pipeline = HandPipeline(options if options is not None else pipeline_options(static))
    results = []
    for index, rgb in enumerate(frames):
        if static:
            pipeline.reset()
        start = time.perf_counter()
        out = pipeline.process(rgb, index / FPS)
        latency = (time.perf_counter() - start) * 1e3
        for _ in range(search_steps):
            pipeline.search_step()
        results.append(FrameResult(_our_hands(out), latency, bool(out.detector_ran),
                                   dict(out.timings_ms)))
    return results


def _read_jsonl(path: Path) -> List[FrameResult]:
    results = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        for hand in record["hands"]:
            hand["keypoints_2d"] = np.asarray(hand["keypoints_2d"], np.float64)
        results.append(FrameResult(record["hands"], float(record["latency_ms"]),
                                   record.get("detector_ran")))
    return results


def run_peer(frames: Sequence[np.ndarray], static: bool, max_hands: int = 2,
             warmup: int = 0, stack: bool = True) -> List[FrameResult]:
    """MediaPipe (``mp.solutions.hands``, model_complexity=1) over ``frames`` in its own
    process: ``static_image_mode`` for photos, video mode for a sequence. ``stack=False`` sends
    one file per frame (photos of different sizes)."""
    if not PEER_PYTHON.is_file():
        raise FileNotFoundError(f"{PEER_PYTHON} missing: run bash bench/setup_peers.sh")
    with tempfile.TemporaryDirectory(prefix="hand_bench_") as tmp:
        out = Path(tmp) / "peer.jsonl"
        args = [str(PEER_PYTHON), str(PEER_RUNNER), "--mode", "static" if static else "video",
                "--max-hands", str(max_hands), "--warmup", str(warmup), "--out", str(out)]
        if stack:
            path = Path(tmp) / "frames.npy"
            np.save(path, np.stack(frames))
            args += ["--frames", str(path)]
        else:
            paths = []
            for i, frame in enumerate(frames):
                paths.append(str(Path(tmp) / f"frame{i:05d}.npy"))
                np.save(paths[-1], frame)
            args += ["--frames", *paths]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"MediaPipe runner failed ({done.returncode}): {done.stderr[-2000:]}")
        return _read_jsonl(out)
