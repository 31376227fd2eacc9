"""ONNX models vs the TFLite reference on real images, and sanity of detections.

Needs the prepared models (``python -m hand_perception.core.models.prepare``), the real images
(``<repo>/../shared/data/hands``) and, for the reference comparison, ``ai-edge-litert``; each
test skips with the reason when one is missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from hand_perception.core.models import runtime  # noqa: E402
from hand_perception.core.models.hand_landmarker import (HandLandmarker,  # noqa: E402
                                                         HandLandmarkerOptions, crop)
from hand_perception.core.models.palm_detector import (PalmDetector,  # noqa: E402
                                                       PalmDetectorOptions, letterbox)
from hand_perception.core.models.roi import roi_from_landmarks, roi_from_palm  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hands"
TOLERANCE = 1e-3
PALM_IMAGES = ["in_the_wild/test1.jpg", "in_the_wild/test3.jpg", "in_the_wild/test5.jpg",
               "onehand10k/784.jpg", "onehand10k/33.jpg", "freihand/00017620.jpg"]


def load(rel: str) -> np.ndarray:
    path = DATA / rel
    if not path.is_file():
        pytest.skip(f"real test image {path} not found (expected shared data at {DATA})")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    try:
        return runtime.resolve_model_dir()
    except runtime.ModelsNotFoundError as err:
        pytest.skip(f"prepared models missing: {err}")


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> PalmDetector:
    return PalmDetector(PalmDetectorOptions(model_dir=str(model_dir), providers=("cpu",)))


@pytest.fixture(scope="module")
def landmarker(model_dir: Path) -> HandLandmarker:
    return HandLandmarker(HandLandmarkerOptions(model_dir=str(model_dir), providers=("cpu",)))


def _tflite_runner(model_dir: Path, name: str):
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert (TFLite reference) not installed")
    path = model_dir / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"TFLite reference model {path} missing; rerun prepare")
    interpreter = litert.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()

    def run(tensor: np.ndarray) -> list:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()]
    return run


@pytest.fixture(scope="module")
def palm_reference(model_dir: Path):
    return _tflite_runner(model_dir, "palm_detection_full")


@pytest.fixture(scope="module")
def landmark_reference(model_dir: Path):
    return _tflite_runner(model_dir, "hand_landmark_full")


def test_palm_outputs_match_tflite(detector, palm_reference) -> None:
    tensors = np.stack([letterbox(load(rel))[0] for rel in PALM_IMAGES])
    onnx_outputs = detector.run_raw(tensors)  # one batched call for all images
    for k, rel in enumerate(PALM_IMAGES):
        for name, ours, ref in zip(("regressors", "classificators"),
                                   (out[k] for out in onnx_outputs), palm_reference(tensors[k])):
            diff = float(np.abs(ours - ref).max())
            assert diff <= TOLERANCE, f"{rel} {name}: max abs diff {diff}"


def test_landmark_outputs_match_tflite(detector, landmarker, landmark_reference) -> None:
    crops = []
    for rel in PALM_IMAGES:
        image = load(rel)
        crops += [crop(image, roi_from_palm(d.box, d.keypoints))
                  for d in detector.process(image).detections]
    crops.append(cv2.resize(load("freihand/00000355.jpg"), (224, 224)).astype(np.float32) / 255)
    assert len(crops) >= 6
    onnx_outputs = landmarker.run_raw(np.stack(crops))
    names = ("landmarks", "presence", "handedness", "world_landmarks")
    for k, tensor in enumerate(crops):
        for name, ours, ref in zip(names, (out[k] for out in onnx_outputs),
                                   landmark_reference(tensor)):
            diff = float(np.abs(ours - ref).max())
            assert diff <= TOLERANCE, f"crop {k} {name}: max abs diff {diff}"


@pytest.mark.parametrize("rel, count", [("in_the_wild/test5.jpg", 2), ("in_the_wild/test1.jpg", 2),
                                        ("in_the_wild/test3.jpg", 2), ("onehand10k/1402.jpg", 1)])
def test_palm_detections_are_sane(detector, rel: str, count: int) -> None:
    image = load(rel)
    detections = detector.process(image).detections
    assert len(detections) == count
    height, width = image.shape[:2]
    for det in detections:
        assert 0.5 <= det.score <= 1.0
        assert det.box.shape == (4,) and det.keypoints.shape == (7, 2)
        assert det.box[0] < det.box[2] and det.box[1] < det.box[3]
        centre = det.keypoints.mean(axis=0)
        assert 0 <= centre[0] <= width and 0 <= centre[1] <= height


def test_two_hands_in_one_batch(detector, landmarker) -> None:
    image = load("in_the_wild/test5.jpg")
    rois = [roi_from_palm(d.box, d.keypoints) for d in detector.process(image).detections]
    result = landmarker.process(image, rois)
    assert len(result) == 2
    assert result.keypoints.shape == (2, 21, 3) and result.keypoints.dtype == np.float32
    assert result.world_keypoints.shape == (2, 21, 3)
    assert np.all(result.presence > 0.9)
    assert sorted(result.labels()) == ["left", "right"]  # her two hands over her face
    # The wrist lies inside its ROI and the world skeleton is hand-sized (metres).
    for k, roi in enumerate(rois):
        assert np.hypot(*(result.keypoints[k, 0, :2] - (roi.cx, roi.cy))) < roi.width
        span = np.ptp(result.world_keypoints[k], axis=0).max()
        assert 0.05 < span < 0.3
    # Tracking: the ROI from the landmarks finds the same hand again.
    again = landmarker.process(image, [roi_from_landmarks(k) for k in result.keypoints])
    assert np.all(again.presence > 0.9)
    shift = np.abs(again.keypoints[:, :, :2] - result.keypoints[:, :, :2]).max()
    assert shift < 0.1 * rois[0].width


def test_freihand_hands_are_right_hands(detector, landmarker) -> None:
    """FreiHAND shows only right hands, unmirrored: handedness > 0.5 must mean RIGHT."""
    for rel in ("freihand/00000355.jpg", "freihand/00017620.jpg", "freihand/00098035.jpg"):
        image = load(rel)
        rois = [roi_from_palm(d.box, d.keypoints) for d in detector.process(image).detections]
        result = landmarker.process(image, rois[:1])
        assert result.labels() == ["right"], (rel, result.handedness)


def test_empty_inputs_give_empty_results(detector, landmarker) -> None:
    blank = np.zeros((120, 160, 3), np.uint8)
    assert len(detector.process(blank)) == 0
    result = landmarker.process(blank, [])
    assert len(result) == 0 and result.keypoints.shape == (0, 21, 3)
    assert detector.process_batch([]) == []


@pytest.mark.parametrize("bad, word", [(np.zeros((10, 10, 3), np.float32), "float32"),
                                       (np.zeros((10, 10), np.uint8), "(10, 10)"),
                                       (np.zeros((10, 10, 4), np.uint8), "(10, 10, 4)"),
                                       ([[0]], "list")])
def test_bad_images_raise_value_error(detector, landmarker, bad, word: str) -> None:
    with pytest.raises(ValueError, match=word.replace("(", r"\(").replace(")", r"\)")):
        detector.process(bad)
    with pytest.raises(ValueError, match=word.replace("(", r"\(").replace(")", r"\)")):
        landmarker.process(bad, [])
