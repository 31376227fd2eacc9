"""Regenerate the README's pictures from a real run of ``hand-perception demo``.

    .venv/bin/python docs/make_pictures.py

Runs the demo on its default sample clip into a temporary folder, then writes into docs/:

* ``demo_frames.png``: two annotated frames of the demo's video side by side (the pointing
  hand of zidane.jpg, the two hands of bus.jpg);
* ``demo_latency.png``: the demo's per-stage latency plot (the numbers are this machine's).

Both are kept under 200 KB (frames quantised to a 256-colour palette) so they can be committed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
MAX_BYTES = 200_000
#: frames of the default 120-frame clip: zoomed in on the pointing hand; the bus shot
FRAMES = (62, 104)
TILE = (400, 300)


def run_demo(out: Path) -> None:
    command = [sys.executable, "-m", "hand_perception.cli", "demo", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the demo failed:\n{result.stdout}\n{result.stderr}")
    print(result.stdout)


def video_frames(path: Path, wanted) -> list:
    import av

    frames = {}
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
    missing = sorted(set(wanted) - set(frames))
    if missing:
        raise SystemExit(f"{path} has no frames {missing}")
    return [frames[i] for i in wanted]


def save_small_png(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    image = Image.fromarray(rgb).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE)
    image.save(path, optimize=True)
    check_size(path)


def check_size(path: Path) -> None:
    size = path.stat().st_size
    print(f"wrote {path.relative_to(ROOT)} ({size / 1000:.0f} KB)")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes, over {MAX_BYTES}")


def main() -> int:
    import cv2

    with tempfile.TemporaryDirectory(prefix="hand_perception_pictures_") as tmp:
        out = Path(tmp) / "demo"
        run_demo(out)
        tiles = [cv2.resize(f, TILE, interpolation=cv2.INTER_AREA)
                 for f in video_frames(out / "annotated.mp4", FRAMES)]
        gap = np.full((TILE[1], 6, 3), 255, np.uint8)
        save_small_png(np.hstack([tiles[0], gap, tiles[1]]), DOCS / "demo_frames.png")
        shutil.copyfile(out / "latency.png", DOCS / "demo_latency.png")
        check_size(DOCS / "demo_latency.png")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
