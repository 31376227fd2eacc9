"""Options of the hand pipeline (:class:`HandPipelineOptions`) and their YAML loading
(config/hand_pipeline.yaml, :func:`load_pipeline_options`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import yaml

from hand_perception.core.detection import TiledDetectionOptions
from hand_perception.core.lifting import LiftingOptions
from hand_perception.core.models.hand_landmarker import HandLandmarkerOptions
from hand_perception.core.models.palm_detector import PalmDetectorOptions
from hand_perception.core.options import options_from_mapping, require_int, require_range
from hand_perception.core.retargeting.wrist_frame import WristFrameOptions
from hand_perception.core.tracking import HandTrackerOptions

_COMPONENTS = {"palm_detector": PalmDetectorOptions, "hand_landmarker": HandLandmarkerOptions,
               "hand_tracker": HandTrackerOptions, "hand_lifter": LiftingOptions,
               "tiled_detection": TiledDetectionOptions, "wrist_frame": WristFrameOptions}


@dataclass
class HandPipelineOptions:
    """Options of :class:`~hand_perception.core.hand_pipeline.HandPipeline`
    (config/hand_pipeline.yaml, :func:`load_pipeline_options`).

    ``max_hands`` and ``image_is_mirrored`` are the pipeline's and override the tracker's;
    ``redetect_interval_frames`` > 0 runs the palm detector at least that often (0: only when
    the tracker asks); ``static_image_mode`` runs the detector on every frame and never tracks
    ROIs (IDs and smoothing still carry over; call ``reset`` between unrelated images).
    ``retry_roi_scale`` (> 1, or 0 = off) and ``confirm_new_hands`` are the video-mode steps of
    the module docstring's step 2. ``search_between_frames``: in video, the search for further
    hands while at least one is tracked (the periodic detector pass and the tile sweep) leaves
    ``process`` and runs in :meth:`HandPipeline.search_step` calls between frames, one detector
    run each, on the last processed frame; its palms are tried on the next frame. A search not
    finished after ``redetect_interval_frames`` frames is finished inside ``process``. Only for
    callers that make those calls (hand_tracker_node does, in its idle time between images)."""

    max_hands: int = 2
    image_is_mirrored: bool = False
    static_image_mode: bool = False
    redetect_interval_frames: int = 10
    retry_roi_scale: float = 1.5
    confirm_new_hands: bool = True
    search_between_frames: bool = False
    palm_detector: PalmDetectorOptions = field(default_factory=PalmDetectorOptions)
    hand_landmarker: HandLandmarkerOptions = field(default_factory=HandLandmarkerOptions)
    hand_tracker: HandTrackerOptions = field(default_factory=HandTrackerOptions)
    hand_lifter: LiftingOptions = field(default_factory=LiftingOptions)
    tiled_detection: TiledDetectionOptions = field(default_factory=TiledDetectionOptions)
    wrist_frame: WristFrameOptions = field(default_factory=WristFrameOptions)

    def __post_init__(self) -> None:
        require_int("max_hands", self.max_hands, 1)
        require_int("redetect_interval_frames", self.redetect_interval_frames, 0)
        if self.retry_roi_scale != 0:
            require_range("retry_roi_scale", self.retry_roi_scale, 1.0, 4.0)
        for name in ("image_is_mirrored", "static_image_mode", "confirm_new_hands",
                     "search_between_frames"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name, cls in _COMPONENTS.items():
            value = getattr(self, name)
            if isinstance(value, Mapping):
                setattr(self, name, options_from_mapping(cls, value))
            elif not isinstance(value, cls):
                raise TypeError(f"{name} must be {cls.__name__} or a mapping, got {value!r}")
        self.hand_tracker = dataclasses.replace(
            self.hand_tracker, max_hands=self.max_hands, image_is_mirrored=self.image_is_mirrored)


def _load_section(reference: str, base_dir: Path) -> Dict[str, Any]:
    """Mapping from a ``"file.yaml#section"`` reference (file relative to ``base_dir``, else to
    the package's config/)."""
    from hand_perception.paths import config_path

    name, _, section = reference.partition("#")
    path = base_dir / name if (base_dir / name).is_file() else config_path(name)
    with path.open("r", encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    if section not in data:
        raise ValueError(f"{path}: no section {section!r} (referenced as {reference!r})")
    return dict(data[section] or {})


def load_pipeline_options(path: Union[str, Path, None] = None) -> HandPipelineOptions:
    """Options from config/hand_pipeline.yaml (or ``path``): its ``hand_pipeline`` section, with
    each component's options read from the file and section named under ``sections`` and then
    updated by a mapping of the same name inside ``hand_pipeline`` (overrides)."""
    from hand_perception.paths import config_path

    path = Path(path) if path is not None else config_path("hand_pipeline.yaml")
    with path.open("r", encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    values = dict(data.get("hand_pipeline") or {})
    for component, reference in (data.get("sections") or {}).items():
        if component not in _COMPONENTS:
            raise ValueError(f"{path}: sections.{component} is not one of {sorted(_COMPONENTS)}")
        merged = _load_section(str(reference), path.parent)
        merged.update(values.get(component) or {})
        values[component] = merged
    return options_from_mapping(HandPipelineOptions, values)
