"""Set-up step: fetch MediaPipe Hands' TFLite models, convert them to ONNX and verify them.

    python -m hand_perception.core.models.prepare [--out DIR] [--wheel PATH] [--force]

The models (Apache-2.0) ship inside the ``mediapipe==0.10.14`` wheel; the wheel is fetched with
``pip download`` (only at set-up time, never at run time), the two .tflite members are checked
against their known sha256, converted with ``tflite_to_onnx`` and verified by running the ONNX
model (and, when ``ai-edge-litert`` is installed, comparing with the TFLite reference). A
``manifest.json`` records the sha256 of every output so a second run is a no-op.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from hand_perception.core.models import runtime

_LOG = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "mediapipe==0.10.14"
WHEEL_PLATFORM = "manylinux_2_17_x86_64"
CONVERTER_VERSION = 2  # bump when tflite_to_onnx changes its output
MANIFEST = "manifest.json"
VERIFY_TOLERANCE = 1e-3
# name -> (member in the wheel, sha256 of the member, ONNX output names in TFLite order)
MODELS: Dict[str, tuple] = {
    "palm_detection_full": (
        "mediapipe/modules/palm_detection/palm_detection_full.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
        ("regressors", "classificators")),
    "hand_landmark_full": (
        "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
        ("landmarks", "presence", "handedness", "world_landmarks")),
}


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_files() -> List[str]:
    """Names of every file ``prepare`` writes besides the manifest."""
    return [f"{name}{ext}" for name in MODELS for ext in (".tflite", ".onnx")]


def is_up_to_date(out: Path) -> bool:
    """True when all outputs exist and match the sha256 recorded in the manifest."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("converter_version") != CONVERTER_VERSION:
        return False
    recorded = manifest.get("sha256", {})
    return all((out / name).is_file() and recorded.get(name) == sha256(out / name)
               for name in output_files())


def download_wheel(dest: Path) -> Path:
    """``pip download`` the mediapipe wheel into ``dest``; returns the wheel path."""
    # Pinning platform and Python makes every host (aarch64 robots, other Pythons) fetch the
    # same wheel; only its .tflite members are read, and they are checked by sha256.
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps",
           "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--python-version", "3.11",
           "-d", str(dest)]
    _LOG.info("downloading %s: %s", WHEEL_REQUIREMENT, " ".join(cmd))
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("mediapipe-0.10.14-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip download left no mediapipe wheel in {dest}")
    return wheels[0]


def extract_models(wheel: Path, out: Path) -> None:
    """Write the two .tflite members of ``wheel`` to ``out``, checking their sha256."""
    with zipfile.ZipFile(wheel) as archive:
        for name, (member, digest, _) in MODELS.items():
            data = archive.read(member)
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise ValueError(f"{wheel.name}:{member} has sha256 {actual}, expected {digest}")
            (out / f"{name}.tflite").write_bytes(data)
            _LOG.info("extracted %s (%d bytes)", member, len(data))


def verify(out: Path, name: str) -> Dict[str, float]:
    """Run ``name``.onnx at batch 2 and compare with TFLite when available; returns max diffs."""
    session = runtime.create_session(out / f"{name}.onnx", providers=("cpu",))
    shape = [2] + list(session.get_inputs()[0].shape[1:])
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)
    outputs = session.run(None, {"input": batch})
    if not all(np.isfinite(o).all() and o.shape[0] == 2 for o in outputs):
        raise ValueError(f"{name}.onnx produced non-finite or mis-batched outputs")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        _LOG.warning("ai-edge-litert not installed: %s.onnx checked for shapes only", name)
        return {}
    interpreter = Interpreter(model_path=str(out / f"{name}.tflite"))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch[:1])
    interpreter.invoke()
    diffs = {}
    for detail, onnx_out, label in zip(interpreter.get_output_details(), outputs,
                                       MODELS[name][2]):
        diffs[label] = float(np.abs(interpreter.get_tensor(detail["index"]) - onnx_out[:1]).max())
    if max(diffs.values()) > VERIFY_TOLERANCE:
        raise ValueError(f"{name}.onnx differs from TFLite by {diffs} (> {VERIFY_TOLERANCE})")
    return diffs


def prepare(out: Path, wheel: Optional[Path] = None, force: bool = False) -> Path:
    """Create (or confirm) the prepared models in ``out``; returns ``out``."""
    from hand_perception.core.models import tflite_to_onnx  # set-up-time dependency only

    out.mkdir(parents=True, exist_ok=True)
    if not force and is_up_to_date(out):
        _LOG.info("models in %s are up to date (sha256 match %s); nothing to do", out, MANIFEST)
        return out
    with tempfile.TemporaryDirectory(prefix="hand_perception_") as tmp:
        extract_models(wheel or download_wheel(Path(tmp)), out)
    for name, (_, _, output_names) in MODELS.items():
        tflite_to_onnx.convert_file(out / f"{name}.tflite", out / f"{name}.onnx", output_names)
        _LOG.info("verified %s.onnx: max abs diff vs TFLite %s", name, verify(out, name))
    manifest = {"source": WHEEL_REQUIREMENT, "converter_version": CONVERTER_VERSION,
                "sha256": {f: sha256(out / f) for f in output_files()}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _LOG.info("wrote %s", out / MANIFEST)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output directory (default: ${runtime.MODEL_DIR_ENV} or "
                             "<sys.prefix>/share/hand_perception/models)")
    parser.add_argument("--wheel", type=Path, default=None,
                        help="use this mediapipe-0.10.14 wheel instead of downloading it")
    parser.add_argument("--force", action="store_true", help="redo even when up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or runtime.default_model_dirs()[0]
    if args.wheel is not None and not args.wheel.is_file():
        parser.error(f"--wheel {args.wheel} is not a file")
    prepare(out.expanduser().resolve(), args.wheel, args.force)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
