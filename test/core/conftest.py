"""Fixtures shared by the core tests."""
from __future__ import annotations

import dataclasses

import pytest

from hand_perception.core.hand_pipeline import HandPipelineOptions, load_pipeline_options
from hand_perception.core.models import runtime


@pytest.fixture(scope="module")
def base_options() -> HandPipelineOptions:
    """The shipped pipeline options (video mode) on CPU with the prepared models; skips without
    them."""
    try:
        model_dir = str(runtime.resolve_model_dir())
    except runtime.ModelsNotFoundError as err:
        pytest.skip(f"prepared models missing: {err}")
    options = load_pipeline_options()
    return dataclasses.replace(
        options,
        palm_detector=dataclasses.replace(options.palm_detector, model_dir=model_dir,
                                          providers=("cpu",)),
        hand_landmarker=dataclasses.replace(options.hand_landmarker, model_dir=model_dir,
                                            providers=("cpu",)))
