"""Where the prepared ONNX models live, and how ONNX Runtime sessions are opened for them.

Execution providers are chosen at run time from a preference list (short names ``tensorrt``,
``cuda``, ``cpu``): those not built into the installed onnxruntime (``onnxruntime`` vs
``onnxruntime-gpu``) are skipped with a log line, and CPU is always the last resort.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import onnxruntime as ort

_LOG = logging.getLogger(__name__)

MODEL_DIR_ENV = "HAND_PERCEPTION_MODEL_DIR"
PALM_MODEL = "palm_detection_full.onnx"
LANDMARK_MODEL = "hand_landmark_full.onnx"
MODEL_FILES: Tuple[str, ...] = (PALM_MODEL, LANDMARK_MODEL)
PREPARE_COMMAND = "python -m hand_perception.core.models.prepare"
THREAD_POOLS = ("shared", "own")
#: intra-op threads of the shared ONNX Runtime pool, once the first session has set it
_SHARED_POOL_THREADS: Optional[int] = None

PROVIDER_NAMES: Dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def validate_providers(providers: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """Return ``providers`` as a tuple of known short names; raise ``ValueError`` naming a bad one.

    A single string (e.g. ``"cpu"`` from YAML) is accepted as a one-element list.
    """
    names = (providers,) if isinstance(providers, str) else tuple(providers)
    if not names:
        raise ValueError("providers must name at least one of " + str(tuple(PROVIDER_NAMES)))
    for name in names:
        if name not in PROVIDER_NAMES:
            raise ValueError(f"providers: {name!r} is not one of {tuple(PROVIDER_NAMES)}")
    return names


class ModelsNotFoundError(FileNotFoundError):
    """The prepared ONNX models are in none of the searched directories."""


def default_model_dirs() -> List[Path]:
    """Directories searched for the models, in order (see ``resolve_model_dir``)."""
    dirs = []
    if os.environ.get(MODEL_DIR_ENV):
        dirs.append(Path(os.environ[MODEL_DIR_ENV]).expanduser())
    dirs.append(Path(sys.prefix) / "share" / "hand_perception" / "models")
    dirs.append(Path.home() / ".cache" / "hand_perception" / "models")
    return dirs


def resolve_model_dir(model_dir: Union[str, Path, None] = None,
                      required: Sequence[str] = MODEL_FILES) -> Path:
    """Return the directory holding the prepared models.

    ``model_dir`` (when non-empty) is the only place looked at; otherwise
    ``$HAND_PERCEPTION_MODEL_DIR`` when set, then ``<sys.prefix>/share/hand_perception/models``,
    then ``~/.cache/hand_perception/models``. Raises ``ModelsNotFoundError`` naming the paths tried
    and the set-up command when no directory holds all ``required`` files.
    """
    candidates = [Path(model_dir).expanduser()] if model_dir else default_model_dirs()
    for directory in candidates:
        if all((directory / name).is_file() for name in required):
            return directory
    tried = ", ".join(str(d) for d in candidates)
    raise ModelsNotFoundError(
        f"hand_perception models {list(required)} not found; tried: {tried}. "
        f"Create them with `{PREPARE_COMMAND} [--out DIR]` (set {MODEL_DIR_ENV}=DIR for a "
        "non-default DIR).")


def select_providers(preferred: Sequence[str]) -> List[str]:
    """Map short provider names to those available in this onnxruntime, CPU appended last."""
    available = set(ort.get_available_providers())
    chosen = []
    for short in preferred:
        if short not in PROVIDER_NAMES:
            raise ValueError(f"provider {short!r} is not one of {tuple(PROVIDER_NAMES)}")
        full = PROVIDER_NAMES[short]
        if full in available and full not in chosen:
            chosen.append(full)
        elif full not in available:
            _LOG.info("execution provider %s not available in this onnxruntime; skipped", full)
    if PROVIDER_NAMES["cpu"] not in chosen:
        chosen.append(PROVIDER_NAMES["cpu"])
    return chosen


def _provider_options(name: str, input_shape: Optional[Sequence[int]], max_batch: int,
                      cache_dir: Path) -> Dict[str, str]:
    if name != PROVIDER_NAMES["tensorrt"] or input_shape is None:
        return {}
    # One optimisation profile covering batch 1..max_batch; the engine is cached on disk because
    # building it takes tens of seconds. fp16 stays off to keep the outputs within 1e-3 of TFLite.
    dims = "x".join(str(d) for d in input_shape)
    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_fp16_enable": "False",
        "trt_profile_min_shapes": f"input:1x{dims}",
        "trt_profile_opt_shapes": f"input:1x{dims}",
        "trt_profile_max_shapes": f"input:{max_batch}x{dims}",
    }


def _set_threads(options: ort.SessionOptions, num_threads: int, thread_pool: str) -> None:
    """Put the session on the process-wide pool (``"shared"``) or on one of its own (``"own"``).

    "shared": one pool for every session (its first user sizes it), whose workers spin between
    the ~50 parallel sections of a run instead of being woken for each. On 2 cores: detection
    mode 50 vs 27-40 FPS, one tracked hand 98 vs 72 FPS, and the one-process demo graph 12.6 vs
    4.9 FPS. "own": a pool per session that never spins (spinning pools per session starve each
    other: detection-mode p95 49 ms vs 26 ms). It is the choice when other busy processes share
    the cores: a spinning worker then burns the time slices the other thread needs (detection
    mode 18-23 FPS shared vs 26-41 FPS own with a busy loop on one of 2 cores).
    bench/bench_hand_tracking.py --thread-pool / --busy-core measure both.
    """
    global _SHARED_POOL_THREADS
    size_shared_pool = getattr(ort.capi.onnxruntime_pybind11_state,
                               "set_global_thread_pool_sizes", None)
    if thread_pool == "shared" and size_shared_pool is None:
        _LOG.warning("this onnxruntime build cannot share a thread pool: thread_pool=own used")
        thread_pool = "own"
    if thread_pool == "own":
        options.intra_op_num_threads = int(num_threads)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return
    if _SHARED_POOL_THREADS is None:
        size_shared_pool(int(num_threads), 1)
        _SHARED_POOL_THREADS = int(num_threads)
    elif int(num_threads) != _SHARED_POOL_THREADS:
        _LOG.info("num_threads=%d ignored: this process' shared ONNX Runtime pool already has "
                  "num_threads=%d (0: one per core)", num_threads, _SHARED_POOL_THREADS)
    options.use_per_session_threads = False


def create_session(path: Union[str, Path], input_shape: Optional[Sequence[int]] = None,
                   providers: Sequence[str] = ("cpu",), num_threads: int = 0, max_batch: int = 4,
                   cache_dir: Optional[Path] = None, thread_pool: str = "shared"
                   ) -> ort.InferenceSession:
    """Open an ONNX Runtime session on ``path`` with the first available of ``providers``.

    ``input_shape`` is the model input without the batch dimension, e.g. ``(224, 224, 3)``, used
    for the TensorRT optimisation profile;
    ``num_threads``: intra-op threads (0: onnxruntime's default, one per core) of the session's
    own pool, or of the shared pool when the first ``thread_pool="shared"`` session sizes it;
    ``thread_pool``: one of ``THREAD_POOLS``, see ``_set_threads``;
    ``max_batch`` bounds the TensorRT optimisation profile.
    """
    path = Path(path)
    options = ort.SessionOptions()
    if thread_pool not in THREAD_POOLS:
        raise ValueError(f"thread_pool={thread_pool!r} is not one of {THREAD_POOLS}")
    _set_threads(options, num_threads, thread_pool)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    names = select_providers(providers)
    cache = cache_dir or Path.home() / ".cache" / "hand_perception" / "trt"
    session = ort.InferenceSession(str(path), sess_options=options, providers=[
        (name, _provider_options(name, input_shape, max_batch, cache)) for name in names])
    _LOG.info("opened %s with providers %s", path.name, session.get_providers())
    return session

