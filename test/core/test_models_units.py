"""Unit tests of the model wrappers' pure-numpy parts: anchors, decoding, NMS, ROI geometry,
options, model lookup and the prepare manifest. No model files needed."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from hand_perception.core.models import prepare, runtime  # noqa: E402
from hand_perception.core.models.hand_landmarker import HandLandmarkerOptions  # noqa: E402
from hand_perception.core.models.palm_detector import (PalmDetectorOptions, decode,  # noqa: E402
                                                       generate_anchors, iou, letterbox,
                                                       weighted_nms)
from hand_perception.core.models.roi import (HandRoi, apply_affine,  # noqa: E402
                                             crop_to_image_matrix, image_to_crop_matrix,
                                             roi_from_landmarks, roi_from_palm,
                                             rotation_to_vertical)
from hand_perception.core.options import options_from_yaml  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / "config" / "models.yaml"


def test_anchors() -> None:
    anchors = generate_anchors()
    assert anchors.shape == (2016, 2) and anchors.dtype == np.float32
    np.testing.assert_allclose(anchors[0], [0.5 / 24, 0.5 / 24])
    np.testing.assert_allclose(anchors[1], anchors[0])  # 2 anchors per stride-8 cell
    np.testing.assert_allclose(anchors[2], [1.5 / 24, 0.5 / 24])  # x runs fastest
    np.testing.assert_allclose(anchors[1152], [0.5 / 12, 0.5 / 12])  # first stride-16 anchor
    np.testing.assert_allclose(anchors[-1], [11.5 / 12, 11.5 / 12])


def test_decode_relative_to_anchor() -> None:
    anchors = np.array([[0.25, 0.5]], np.float32)
    raw = np.zeros((1, 18), np.float32)
    raw[0, :4] = [19.2, -9.6, 48.0, 96.0]  # cx, cy shift and w, h in input px
    raw[0, 4:6] = [0.0, 19.2]
    scores, boxes, kps = decode(raw, np.array([0.0], np.float32), anchors)
    np.testing.assert_allclose(scores, [0.5])
    np.testing.assert_allclose(boxes[0], [0.225, 0.2, 0.475, 0.7], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.25, 0.6], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], anchors[0])
    assert decode(raw, np.array([1e4], np.float32), anchors)[0][0] == pytest.approx(1.0)


def test_iou() -> None:
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 6, 6]], np.float64)
    np.testing.assert_allclose(iou(boxes[0], boxes), [1.0, 1 / 7, 0.0])


def test_weighted_nms_merges_overlaps() -> None:
    scores = np.array([0.6, 0.9, 0.8])
    boxes = np.array([[0, 0, 1, 1], [10, 10, 12, 12], [0, 0, 1.2, 1]], np.float64)
    kps = np.arange(3 * 7 * 2, dtype=np.float64).reshape(3, 7, 2)
    kept = weighted_nms(scores, boxes, kps, 0.3)
    assert [k[0] for k in kept] == [0.9, 0.8]
    np.testing.assert_allclose(kept[0][1], boxes[1])
    w = np.array([0.8, 0.6]) / 1.4  # box 2 (top of its group) and box 0, score-weighted
    np.testing.assert_allclose(kept[1][1], w @ boxes[[2, 0]])
    np.testing.assert_allclose(kept[1][2], np.tensordot(w, kps[[2, 0]], axes=1))
    assert len(weighted_nms(scores, boxes, kps, 0.3, max_detections=1)) == 1
    degenerate = weighted_nms(np.array([0.7]), np.zeros((1, 4)), kps[:1], 0.3)
    assert len(degenerate) == 1  # zero-area box: no endless loop


def test_letterbox_maps_corners() -> None:
    image = np.full((100, 200, 3), 255, np.uint8)
    tensor, (sx, sy, px, py) = letterbox(image)
    assert tensor.shape == (192, 192, 3) and tensor.dtype == np.float32
    assert (sx, sy, px, py) == (0.96, 0.96, 0.0, 48.0)
    assert tensor[47, 96].max() == 0.0 and tensor[48, 96].min() == 1.0


def test_rotation_to_vertical() -> None:
    assert rotation_to_vertical(np.array([0, 10]), np.array([0, 0])) == pytest.approx(0.0)
    assert rotation_to_vertical(np.array([0, 0]), np.array([10, 0])) == pytest.approx(math.pi / 2)
    assert rotation_to_vertical(np.array([0, 0]), np.array([-10, 0])) == pytest.approx(-math.pi / 2)


def test_affine_round_trip_and_corners() -> None:
    roi = HandRoi(300.0, 200.0, 150.0, 150.0, 0.7)
    forward, inverse = crop_to_image_matrix(roi, 224), image_to_crop_matrix(roi, 224)
    points = np.random.default_rng(1).uniform(0, 224, (50, 2))
    np.testing.assert_allclose(apply_affine(inverse, apply_affine(forward, points)), points,
                               atol=1e-9)
    np.testing.assert_allclose(apply_affine(forward, [[112, 112]]), [[300, 200]])
    crop_corners = np.array([[0, 0], [224, 0], [224, 224], [0, 224]], np.float64)
    np.testing.assert_allclose(apply_affine(forward, crop_corners), roi.corners(), atol=1e-9)


def test_roi_from_palm_upright_and_rotated() -> None:
    box = np.array([100, 100, 140, 140], np.float32)
    kps = np.zeros((7, 2), np.float32)
    kps[0], kps[2] = [120, 140], [120, 100]  # wrist below the middle-finger MCP: upright
    roi = roi_from_palm(box, kps)
    assert roi.rotation == pytest.approx(0.0)
    assert (roi.width, roi.height) == pytest.approx((104.0, 104.0))  # 40 * 2.6
    assert (roi.cx, roi.cy) == pytest.approx((120.0, 100.0))  # shifted up by half the box
    kps[0], kps[2] = [100, 120], [140, 120]  # pointing right
    roi = roi_from_palm(box, kps)
    assert roi.rotation == pytest.approx(math.pi / 2)
    assert (roi.cx, roi.cy) == pytest.approx((140.0, 120.0))  # "up" is now +x


def test_roi_from_landmarks_follows_the_hand() -> None:
    rng = np.random.default_rng(2)
    hand = np.column_stack([rng.uniform(-30, 30, 21), rng.uniform(-60, 40, 21)])
    hand[0], hand[5], hand[9], hand[13] = [0, 40], [-10, -20], [0, -25], [10, -20]
    upright = roi_from_landmarks(hand + [200, 300])
    assert upright.rotation == pytest.approx(0.0)
    assert upright.width == pytest.approx(upright.height)
    angle = 0.5  # rotate the hand about the origin: the ROI rotates with it
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    turned = roi_from_landmarks(hand @ rot.T + [200, 300])
    assert turned.rotation == pytest.approx(angle)
    assert turned.width == pytest.approx(upright.width)
    centre = rot @ (np.array([upright.cx, upright.cy]) - [200, 300]) + [200, 300]
    np.testing.assert_allclose([turned.cx, turned.cy], centre, atol=1e-6)


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="min_score"):
        PalmDetectorOptions(min_score=1.5)
    with pytest.raises(ValueError, match="max_detections"):
        PalmDetectorOptions(max_detections=-1)
    with pytest.raises(TypeError, match="max_batch"):
        HandLandmarkerOptions(max_batch=2.0)
    with pytest.raises(ValueError, match="gpu"):
        PalmDetectorOptions(providers=("gpu",))
    with pytest.raises(ValueError, match="border_mode"):
        HandLandmarkerOptions(border_mode="wrap")


def test_config_file_loads() -> None:
    palm = options_from_yaml(PalmDetectorOptions, CONFIG, "palm_detector")
    marker = options_from_yaml(HandLandmarkerOptions, CONFIG, "hand_landmarker")
    assert palm.min_score == 0.5 and palm.nms_iou == 0.3
    assert "cpu" in palm.providers and "cpu" in marker.providers


def test_select_providers_falls_back_to_cpu() -> None:
    chosen = runtime.select_providers(("tensorrt", "cuda"))
    assert chosen[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="npu"):
        runtime.select_providers(("npu",))


def test_sessions_share_one_thread_pool_sized_by_the_first(monkeypatch, caplog) -> None:
    monkeypatch.setattr(runtime, "_SHARED_POOL_THREADS", None)
    sized = []
    monkeypatch.setattr(runtime.ort.capi.onnxruntime_pybind11_state,
                        "set_global_thread_pool_sizes", lambda intra, inter: sized.append(intra))
    first, second = runtime.ort.SessionOptions(), runtime.ort.SessionOptions()
    own = runtime.ort.SessionOptions()
    runtime._set_threads(first, 2, "shared")
    with caplog.at_level("INFO", logger=runtime.__name__):
        runtime._set_threads(second, 1, "shared")
    runtime._set_threads(own, 1, "own")
    assert sized == [2]  # the pool is sized once, by the first session
    assert not first.use_per_session_threads and not second.use_per_session_threads
    assert "num_threads=1 ignored" in caplog.text
    assert own.use_per_session_threads and own.intra_op_num_threads == 1
    with pytest.raises(ValueError, match="thread_pool"):
        HandLandmarkerOptions(thread_pool="global")


def test_missing_models_error_names_paths(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(runtime.MODEL_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(runtime.ModelsNotFoundError) as err:
        runtime.resolve_model_dir(required=("surely_missing.onnx",))
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and runtime.PREPARE_COMMAND in message
    assert "share/hand_perception/models" in message


def test_manifest_detects_changes(tmp_path: Path) -> None:
    for name in prepare.output_files():
        (tmp_path / name).write_bytes(name.encode())
    manifest = {"converter_version": prepare.CONVERTER_VERSION,
                "sha256": {n: prepare.sha256(tmp_path / n) for n in prepare.output_files()}}
    (tmp_path / prepare.MANIFEST).write_text(json.dumps(manifest))
    assert prepare.is_up_to_date(tmp_path)
    (tmp_path / prepare.output_files()[0]).write_bytes(b"changed")
    assert not prepare.is_up_to_date(tmp_path)


def test_palm_model_has_no_prelu_left() -> None:
    """The converter writes PReLU as relu and two 1x1 depthwise convolutions (ONNX Runtime's
    PRelu was half the detector's CPU time); the outputs still match TFLite within 1e-3
    (test_models_reference.py)."""
    onnx = pytest.importorskip("onnx")
    try:
        path = runtime.resolve_model_dir() / runtime.PALM_MODEL
    except runtime.ModelsNotFoundError as err:
        pytest.skip(f"prepared models missing: {err}")
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "PRelu" not in ops
    assert ops.count("Relu") == 31  # every PReLU of palm_detection_full
    depthwise_1x1 = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"
                     and any(a.name == "kernel_shape" and list(a.ints) == [1, 1]
                             for a in n.attribute)
                     and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(depthwise_1x1) == 2 * 31
