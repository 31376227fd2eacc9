"""``hand-perception detect`` in a subprocess: a folder of real photos (with ground truth and a
broken file), a short video made from a real photo, and bad arguments."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from hand_perception.core.models import runtime  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GT_SETS = (("freihand", "test_freihand.json"), ("onehand10k", "test_onehand10k.json"))


def detect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hand_perception.cli", "detect", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def models() -> None:
    try:
        runtime.resolve_model_dir()
    except runtime.ModelsNotFoundError as err:
        pytest.skip(f"prepared models missing: {err}")


def ground_truth(shared: Path) -> dict:
    """file name -> ((21, 2) px, (21,) labelled, box long side)."""
    truth = {}
    for folder, name in GT_SETS:
        data = json.loads((shared / folder / name).read_text())
        files = {im["id"]: im["file_name"] for im in data["images"]}
        for ann in data["annotations"]:
            kp = np.asarray(ann["keypoints"], np.float64).reshape(21, 3)
            truth[files[ann["image_id"]]] = (kp[:, :2], kp[:, 2] > 0, max(ann["bbox"][2:]))
    return truth


def check_hand_schema(hand: dict, with_3d: bool) -> None:
    expected = {"track_id", "handedness", "score", "keypoints_2d", "world_keypoints"}
    assert set(hand) == expected | ({"keypoints_3d"} if with_3d else set())
    assert hand["handedness"] in ("left", "right") and 0.0 <= hand["score"] <= 1.0
    assert np.asarray(hand["keypoints_2d"], float).shape == (21, 2)
    world = np.asarray(hand["world_keypoints"], float)
    assert world.shape == (21, 3) and 0.05 < np.ptp(world, axis=0).max() < 0.3
    if with_3d:
        points = np.asarray(hand["keypoints_3d"], float)
        assert points.shape == (21, 3) and np.all(points[:, 2] > 0.05)


def test_folder_of_photos_matches_ground_truth(models, shared_hands_dir, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for sub in ("freihand", "onehand10k"):
        for path in (shared_hands_dir / sub).glob("*.jpg"):
            shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out, annotated = tmp_path / "hands.jsonl", tmp_path / "annotated"
    proc = detect(str(folder), "--json", str(out), "--fov", "60", "--annotate", str(annotated))
    assert proc.returncode == 1, proc.stderr  # one bad file
    assert "broken.jpg" in proc.stderr and "error" in proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    truth = ground_truth(shared_hands_dir)
    assert sorted(Path(r["image"]).name for r in records) == sorted(truth)
    pcks = []
    for record in records:
        for hand in record["hands"]:
            check_hand_schema(hand, with_3d=True)
        if record["hands"]:
            kp, labelled, size = truth[Path(record["image"]).name]
            errors = np.linalg.norm(np.asarray(record["hands"][0]["keypoints_2d"]) - kp, axis=1)
            pcks.append(np.mean(errors[labelled] <= 0.2 * size))
    assert len(pcks) >= 0.75 * len(records), f"hands in {len(pcks)} of {len(records)} photos"
    assert np.mean(pcks) >= 0.8, np.round(pcks, 2)
    assert len(list(annotated.glob("*.png"))) == len(records)


def test_video_keeps_track_ids(models, shared_hands_dir, tmp_path) -> None:
    image = cv2.resize(cv2.imread(str(shared_hands_dir / "in_the_wild" / "test5.jpg")), (320, 480))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 480))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG video here")
    for k in range(8):
        shift = np.float32([[1, 0, 2 * k], [0, 1, k]])
        writer.write(cv2.warpAffine(image, shift, (320, 480), borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    proc = detect(str(video))  # JSON lines on stdout, no intrinsics
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in records] == list(range(8))
    ids = [sorted(h["track_id"] for h in r["hands"]) for r in records]
    assert len(ids[0]) == 2 and all(i == ids[0] for i in ids), ids
    for record in records:
        for hand in record["hands"]:
            check_hand_schema(hand, with_3d=False)


@pytest.mark.parametrize("args, word", [(["nowhere.jpg"], "no such file"),
                                        (["{photo}", "--intrinsics", "500,500"], "fx,fy,cx,cy"),
                                        (["{photo}", "--fov", "0"], "--fov")])
def test_bad_arguments_fail_clearly(shared_hands_dir, args, word: str) -> None:
    photo = str(shared_hands_dir / "freihand" / "00000355.jpg")
    proc = detect(*[a.format(photo=photo) for a in args])
    assert proc.returncode == 2 and word in proc.stderr and not proc.stdout
