"""``RetargetingOptions``: one robot hand and side, loadable from ``config/retargeting/*.yaml``."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import yaml

from hand_perception.core.keypoints import LEFT, NUM_KEYPOINTS, RIGHT, WRIST
from hand_perception.core.options import options_from_mapping, require_choice, require_range
from hand_perception.core.rotations import matrix_from_quaternion

OBJECTIVES = ("vector", "dexpilot", "position")
WARM_STARTS = ("constant_velocity", "previous")
SMOOTHING_FILTERS = ("exponential", "one_euro")
SECTION = "retargeting"
PALM_KNUCKLES = (5, 9, 13, 17)


def _quat_xyzw_to_matrix(name: str, quat: Any) -> np.ndarray:
    try:
        return matrix_from_quaternion(quat)
    except (ValueError, TypeError):
        raise ValueError(f"{name}={quat!r} must be a non-zero quaternion [x, y, z, w]") from None


def transform_from_spec(name: str, spec: Any) -> np.ndarray:
    """4x4 float64 from a 4x4 nested list or ``{xyz: [..], xyzw: [..]}`` (metres, quaternion)."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"xyz", "xyzw"})
        if unknown:
            raise ValueError(f"{name}: unknown key(s) {unknown}; use xyz and xyzw")
        xyz = np.asarray(spec.get("xyz", [0.0, 0.0, 0.0]), dtype=float)
        if xyz.shape != (3,) or not np.isfinite(xyz).all():
            raise ValueError(f"{name}.xyz={spec.get('xyz')!r} must be 3 finite numbers")
        matrix = np.eye(4)
        matrix[:3, :3] = _quat_xyzw_to_matrix(f"{name}.xyzw", spec.get("xyzw", [0, 0, 0, 1]))
        matrix[:3, 3] = xyz
        return matrix
    matrix = np.asarray(spec, dtype=float)
    if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
        raise ValueError(f"{name} must be a 4x4 matrix or {{xyz, xyzw}}, got {spec!r}")
    rot = matrix[:3, :3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
        raise ValueError(f"{name}: the 3x3 block is not a rotation matrix")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise ValueError(f"{name}: last row must be [0, 0, 0, 1]")
    return matrix


@dataclasses.dataclass
class RetargetingOptions:
    """One robot hand for one side.

    urdf: ``package://<python package>/<path>``, absolute, or relative to the YAML file.
    keypoint_links: human keypoint index (MediaPipe order) -> robot link whose origin plays it;
        must contain 0 (the wrist). fingertip_links: the robot's fingertip links (reported, checked).
    vector_pairs: (human a, human b) keypoint pairs; the robot vector between the two links is
        matched to ``scaling`` times the human vector (objective "vector"). position_keypoints:
        keypoints matched as positions relative to the wrist (objective "position").
    wrist_rotation_xyzw: rotation from the MediaPipe palm frame to the wrist link's frame; None =
        derived from the robot's own palm geometry (recommended). arm_from_camera: 4x4 or
        {xyz, xyzw}: pose of the keypoints' frame in the robot arm's base frame.
    vector_weights: one weight per vector_pairs entry (empty = all 1).
    pinch_*: DexPilot thumb-finger pinch switch; separation_distance (m, robot) /
        separation_weight: DexPilot finger-finger target when two fingers pinch the thumb together.
    huber_delta: pair residuals longer than this (m, robot scale) count linearly (Huber), so
        unreachable pairs weigh less; 0 = plain least squares.
    palm_offsets: palm keypoint (5, 9, 13 or 17) -> [x, y, z] m in its link's own frame: the
        point that plays the knuckle when the link origin sits beside the finger (LEAP's servo
        frames). It sets the robot's palm frame (and robot keypoints); such a keypoint may not
        appear in vector_pairs.
    tolerance / relative_tolerance: stop when the predicted cost decrease is below tolerance (m²)
        or relative_tolerance × the cost (0.3 %: on real, unreachable poses Gauss-Newton converges
        linearly and the last iterations move fingertips by a fraction of a millimetre).
    warm_start: "constant_velocity" starts each solve from the last two solutions extrapolated
        (fewer iterations, and under fast motion the solver stays in the right basin);
        "previous" from the last solution. cold_start_seeds: starts tried after a reset (>= 1),
        and again when the cost jumps above recovery_cost_ratio × the last one (0 = never).
    smoothing_filter: "exponential" (smoothing_alpha, 1 = off; lag (1-a)/a frames) or "one_euro"
        (one_euro_min_cutoff Hz, one_euro_beta Hz per rad/s, one_euro_d_cutoff Hz; lag
        1/(2 pi (min_cutoff + beta |v|)) s, see smoothing.py). frame_rate_hz: assumed rate when
        ``process`` gets no stamp.
    """

    urdf: str = ""
    side: str = RIGHT
    wrist_link: str = ""
    keypoint_links: Dict[int, str] = dataclasses.field(default_factory=dict)
    fingertip_links: List[str] = dataclasses.field(default_factory=list)
    objective: str = "vector"
    vector_pairs: List[List[int]] = dataclasses.field(default_factory=list)
    position_keypoints: List[int] = dataclasses.field(default_factory=lambda: [4, 8, 12, 16, 20])
    scaling: float = 1.0
    locked_joints: Dict[str, float] = dataclasses.field(default_factory=dict)
    wrist_rotation_xyzw: Optional[List[float]] = None
    arm_from_camera: Any = dataclasses.field(default_factory=lambda: np.eye(4).tolist())
    pinch_threshold: float = 0.03
    pinch_distance: float = 0.005
    pinch_weight: float = 10.0
    separation_distance: float = 0.02
    separation_weight: float = 10.0
    vector_weights: List[float] = dataclasses.field(default_factory=list)
    regularization: float = 1e-5
    max_iterations: int = 30
    tolerance: float = 1e-9
    relative_tolerance: float = 3e-3
    huber_delta: float = 0.0
    palm_offsets: Dict[int, List[float]] = dataclasses.field(default_factory=dict)
    warm_start: str = "constant_velocity"
    cold_start_seeds: int = 5
    recovery_cost_ratio: float = 4.0
    smoothing_alpha: float = 1.0
    smoothing_filter: str = "exponential"
    one_euro_min_cutoff: float = 1.0
    one_euro_beta: float = 5.0
    one_euro_d_cutoff: float = 1.0
    frame_rate_hz: float = 30.0
    base_dir: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.urdf, str) or not self.urdf:
            raise ValueError(f"urdf={self.urdf!r} must name a URDF file")
        require_choice("side", self.side, (LEFT, RIGHT))
        if not isinstance(self.wrist_link, str) or not self.wrist_link:
            raise ValueError(f"wrist_link={self.wrist_link!r} must name a link")
        require_choice("objective", self.objective, OBJECTIVES)
        self._check_keypoints()
        for name in ("scaling", "pinch_threshold", "pinch_distance", "pinch_weight",
                     "separation_distance", "separation_weight", "one_euro_beta",
                     "recovery_cost_ratio"):
            require_range(name, getattr(self, name), 0.0, 1e3)
        for name in ("one_euro_min_cutoff", "one_euro_d_cutoff", "frame_rate_hz"):
            require_range(name, getattr(self, name), 1e-3, 1e4)
        require_choice("warm_start", self.warm_start, WARM_STARTS)
        require_choice("smoothing_filter", self.smoothing_filter, SMOOTHING_FILTERS)
        require_range("scaling", self.scaling, 1e-3, 1e3)
        require_range("regularization", self.regularization, 0.0, 1e3)
        require_range("tolerance", self.tolerance, 0.0, 1.0)
        require_range("relative_tolerance", self.relative_tolerance, 0.0, 1.0)
        require_range("huber_delta", self.huber_delta, 0.0, 1.0)
        require_range("smoothing_alpha", self.smoothing_alpha, 1e-3, 1.0)
        for name in ("max_iterations", "cold_start_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an int >= 1")
        if self.wrist_rotation_xyzw is not None:
            _quat_xyzw_to_matrix("wrist_rotation_xyzw", self.wrist_rotation_xyzw)
        transform_from_spec("arm_from_camera", self.arm_from_camera)
        if not isinstance(self.locked_joints, dict):
            raise TypeError(f"locked_joints={self.locked_joints!r} must be a mapping")

    def _check_keypoints(self) -> None:
        links = self.keypoint_links
        if not isinstance(links, dict) or WRIST not in links:
            raise ValueError(f"keypoint_links={links!r} must map keypoint 0 (wrist) to a link")
        for key, link in links.items():
            if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < NUM_KEYPOINTS:
                raise ValueError(f"keypoint_links key {key!r} is not a keypoint index 0..20")
            if not isinstance(link, str) or not link:
                raise ValueError(f"keypoint_links[{key}]={link!r} must be a link name")
        for pair in self.vector_pairs:
            if len(pair) != 2 or any(k not in links for k in pair):
                raise ValueError(f"vector_pairs entry {pair!r} must be two keys of keypoint_links")
        for key in self.position_keypoints:
            if key not in links:
                raise ValueError(f"position_keypoints entry {key!r} is not in keypoint_links")
        if self.objective == "vector" and not self.vector_pairs:
            raise ValueError("objective='vector' needs vector_pairs")
        weights = self.vector_weights
        if weights and (len(weights) != len(self.vector_pairs) or any(
                isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1e3
                for w in weights)):
            raise ValueError(f"vector_weights={weights!r} must be empty or one number in "
                             f"[0, 1000] per vector_pairs entry ({len(self.vector_pairs)})")
        if not isinstance(self.fingertip_links, list) or not self.fingertip_links:
            raise ValueError(f"fingertip_links={self.fingertip_links!r} must be a non-empty list")
        self._check_palm_offsets()

    def _check_palm_offsets(self) -> None:
        offsets = self.palm_offsets
        if not isinstance(offsets, dict):
            raise ValueError(f"palm_offsets={offsets!r} must map palm keypoints to [x, y, z]")
        paired = {k for pair in self.vector_pairs for k in pair}
        for key, offset in offsets.items():
            if key not in PALM_KNUCKLES or key not in self.keypoint_links or key in paired:
                raise ValueError(f"palm_offsets key {key!r} must be a knuckle {PALM_KNUCKLES} of "
                                 f"keypoint_links that no vector_pairs entry uses")
            value = np.asarray(offset, dtype=float) if isinstance(offset, (list, tuple)) else None
            if value is None or value.shape != (3,) or not np.isfinite(value).all() or np.abs(
                    value).max() > 0.1:
                raise ValueError(f"palm_offsets[{key}]={offset!r} must be 3 numbers within "
                                 f"0.1 m")

    def wrist_rotation(self) -> Optional[np.ndarray]:
        """The configured palm-frame -> wrist-link rotation (3, 3), or None for automatic."""
        if self.wrist_rotation_xyzw is None:
            return None
        return _quat_xyzw_to_matrix("wrist_rotation_xyzw", self.wrist_rotation_xyzw)


def load_options(path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None
                 ) -> RetargetingOptions:
    """Read the ``retargeting:`` section of a YAML hand config (``base_dir`` = its folder)."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    if SECTION not in data:
        raise ValueError(f"{path}: no top-level {SECTION!r} section (have {sorted(data)})")
    values = dict(data[SECTION] or {})
    values.setdefault("base_dir", str(path.parent))
    values.update(overrides or {})
    return options_from_mapping(RetargetingOptions, values)
