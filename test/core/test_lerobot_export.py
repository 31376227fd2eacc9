"""Export of recorded episodes to LeRobot's dataset format (v3.0): frames resampled by nearest
stamp, actions from the action chunks, video decodable frame by frame, metadata complete; and
LeRobot's own reader (``LeRobotDataset`` of lerobot 0.4.4, installed by scripts/setup.sh) reads
back what was recorded."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from hand_perception.core.recording import EpisodeMetadata, EpisodeRecorder, RecorderOptions
from hand_perception.core.recording.lerobot_export import (LeRobotExportOptions, export_lerobot,
                                                           image_to_rgb, nearest_indices)
from hand_perception.core.recording.lerobot_format import VideoSettings
from hand_perception.core.recording.message_definitions import MessageDefinitionSource

STORE = get_typestore(Stores.ROS2_KILTED)
_SOURCE = MessageDefinitionSource()
STORE.register(get_types_from_msg(_SOURCE.msg_text("hand_perception/msg/ActionChunk"),
                                  "hand_perception/msg/ActionChunk"))
T = STORE.types
JOINTS = ["thumb", "index", "middle"]
W, H = 64, 48
MS = 1_000_000
EPISODES = [("pick up the cube", 12, 0), ("wave", 9, 3 * MS)]  # task, frames, stamp offset (ns)


def _header(stamp_ns: int):
    return T["std_msgs/msg/Header"](
        T["builtin_interfaces/msg/Time"](stamp_ns // 10 ** 9, stamp_ns % 10 ** 9), "cam")


def _cdr(msg, type_name):
    return bytes(STORE.serialize_cdr(msg, type_name))


def colour(k: int) -> np.ndarray:
    return np.array([(k * 37) % 200 + 20, (k * 11) % 200 + 20, 128], np.uint8)


def joint_positions(stamp_ns: int) -> np.ndarray:
    """The recorded joint positions at ``stamp_ns``: (3,) float64 [ms, -ms, 2 ms] of the stamp."""
    ms = stamp_ns / MS
    return np.array([ms, -ms, 2 * ms])


def record_episode(recorder: EpisodeRecorder, task: str, frames: int, offset_ns: int) -> None:
    """Camera at 30 Hz, joints at 60 Hz (value = stamp in ms), action chunks at 30 Hz."""
    recorder.start_episode(EpisodeMetadata(task=task, robot_hand="allegro_right"))
    base = 10 ** 9 + offset_ns
    for i in range(frames * 2):
        stamp = base + i * 1_000_000_000 // 60
        recorder.write("/robot_hand/joint_states", stamp, _cdr(T["sensor_msgs/msg/JointState"](
            _header(stamp), JOINTS, joint_positions(stamp), np.zeros(0), np.zeros(0)),
            "sensor_msgs/msg/JointState"))
        if i % 2:
            continue
        k = i // 2
        pixels = np.tile(colour(k), H * W)
        recorder.write("/camera/image_raw", stamp, _cdr(T["sensor_msgs/msg/Image"](
            _header(stamp), H, W, "rgb8", 0, W * 3, pixels), "sensor_msgs/msg/Image"))
        actions = np.array([[k, 10 + k, 20 + k], [99, 99, 99]], np.float32).reshape(-1)
        reversed_columns = actions.reshape(2, 3)[:, ::-1].reshape(-1).copy()
        chunk = T["hand_perception/msg/ActionChunk"](
            _header(stamp), 1, 2, "allegro_right", JOINTS[::-1], 1 / 30, 2, reversed_columns,
            [], "test")
        recorder.write("/robot_hand/action_chunk", stamp,
                       _cdr(chunk, "hand_perception/msg/ActionChunk"))
    recorder.stop_episode()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    recorder = EpisodeRecorder(RecorderOptions(output_dir=str(tmp / "bags")))
    recorder.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
    recorder.add_topic("/robot_hand/joint_states", "sensor_msgs/msg/JointState")
    recorder.add_topic("/robot_hand/action_chunk", "hand_perception/msg/ActionChunk")
    for task, frames, offset_ns in EPISODES:
        record_episode(recorder, task, frames, offset_ns)
    recorder.close()
    bags = sorted((tmp / "bags").iterdir())
    options = LeRobotExportOptions(fps=30, repo_id="local/hands")
    return export_lerobot(bags, tmp / "dataset", options), bags


def test_frames_are_resampled_and_actions_come_from_the_chunks(exported):
    result, _ = exported
    root = result.root
    assert [e.length for e in result.episodes] == [12, 9] and result.total_frames == 21
    data = pq.read_table(root / "data/chunk-000/file-000.parquet").to_pydict()
    assert data["frame_index"] == list(range(12)) and data["index"] == list(range(12))
    np.testing.assert_allclose(data["timestamp"], np.arange(12) / 30, atol=1e-6)
    state = np.array(data["observation.state"])
    expected_ms = (10 ** 9 + np.arange(12) * 10 ** 9 // 30) / MS  # joints at the image stamps
    np.testing.assert_allclose(state[:, 0], expected_ms, rtol=1e-6)
    np.testing.assert_allclose(state[:, 1], -expected_ms, rtol=1e-6)
    action = np.array(data["action"])  # chunk columns were reversed: reordered by joint name
    np.testing.assert_array_equal(action, np.stack([np.arange(12), 10 + np.arange(12),
                                                    20 + np.arange(12)], 1))
    second = pq.read_table(root / "data/chunk-000/file-001.parquet").to_pydict()
    assert second["index"] == list(range(12, 21)) and set(second["episode_index"]) == {1}
    assert set(second["task_index"]) == {1}


def test_video_holds_every_frame_at_its_timestamp(exported):
    import av

    result, _ = exported
    path = result.root / "videos/observation.images.camera/chunk-000/file-001.mp4"
    with av.open(str(path)) as container:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    assert len(frames) == 9
    for k, (time, rgb) in enumerate(frames):
        assert time == pytest.approx(k / 30, abs=1e-3)
        assert np.abs(rgb[H // 2, W // 2].astype(int) - colour(k)).max() <= 12  # lossy AV1


def test_metadata_matches_lerobot_v3(exported):
    import pandas as pd

    result, _ = exported
    root = result.root
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30
    assert info["total_episodes"] == 2 and info["total_frames"] == 21 and info["total_tasks"] == 2
    assert info["features"]["action"] == {"dtype": "float32", "shape": [3], "names": JOINTS}
    video = info["features"]["observation.images.camera"]
    assert video["shape"] == [H, W, 3] and video["info"]["video.codec"] == "av1"
    assert info["robot_type"] == "allegro_right" and info["splits"] == {"train": "0:2"}
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks.loc["wave"].task_index == 1 and tasks.index.name == "task"
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["tasks"] for e in episodes] == [["pick up the cube"], ["wave"]]
    assert episodes[1]["dataset_from_index"] == 12 and episodes[1]["dataset_to_index"] == 21
    assert episodes[1]["videos/observation.images.camera/to_timestamp"] == pytest.approx(9 / 30)
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["action"]["count"] == [21] and len(stats["action"]["q99"]) == 3
    assert np.array(stats["observation.images.camera"]["mean"]).shape == (3, 1, 1)


def test_bad_input_is_refused_by_name(tmp_path, exported):
    _, bags = exported
    with pytest.raises(ValueError, match="/nope"):
        export_lerobot(bags[:1], tmp_path / "d", LeRobotExportOptions(image_topic="/nope"))
    assert not (tmp_path / "d").exists()  # nothing half-written is left
    with pytest.raises(ValueError, match="not empty"):
        export_lerobot(bags, bags[0].parent)
    with pytest.raises(ValueError, match="repo_id"):
        LeRobotExportOptions(repo_id="hands")
    msg = T["sensor_msgs/msg/Image"](_header(1), 1, 1, "yuv422", 0, 2, np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="yuv422"):
        image_to_rgb(msg)
    assert nearest_indices(np.array([0, 10, 20]), np.array([4, 5, 6, 30])).tolist() == [0, 0, 1, 2]
    assert VideoSettings().codec_options()["g"] == "2"


def expected_frames() -> list:
    """What each exported frame must hold, in dataset order: frame k of an episode is the k-th
    image, the joints at its stamp (the 2k-th joint message) and the first row of its chunk."""
    rows = []
    for episode_index, (task, frames, offset_ns) in enumerate(EPISODES):
        for k in range(frames):
            stamp = 10 ** 9 + offset_ns + 2 * k * 1_000_000_000 // 60
            rows.append({"episode_index": episode_index, "frame_index": k, "task": task,
                         "timestamp": k / 30, "state": joint_positions(stamp),
                         "action": np.array([k, 10 + k, 20 + k]), "colour": colour(k)})
    return rows


_TORCHVISION_OPS = []  # a torch Library drops its op declarations when it is freed


def _declare_missing_torchvision_ops() -> None:
    """PyPI's torchvision wheels for Linux are CUDA builds: next to this venv's CPU torch their
    C++ ops do not load (torchvision carries on without them), but ``import torchvision`` still
    registers fake kernels for its nms ops, which fails unless those ops exist. Declaring their
    schemas lets the import through; lerobot's reader uses only torchvision's Python code (the
    pyav VideoReader, transforms), never those ops. Done only where the ops cannot load."""
    import torch

    package = Path(importlib.util.find_spec("torchvision").origin).parent
    extensions = sorted(package.glob("_C*.so"))
    try:
        if extensions:
            torch.ops.load_library(str(extensions[0]))  # what `import torchvision` does first
            return
    except OSError:
        pass
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_OPS.append(library)


def import_lerobot_dataset():
    """``lerobot.datasets.lerobot_dataset``, or skip where lerobot is not installed."""
    for name in ("lerobot", "torchvision"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed, so LeRobot's own reader is not checked "
                        "(scripts/setup.sh installs lerobot==0.4.4 and torchvision==0.25.0 "
                        "with --no-deps)")
    if "torchvision" not in sys.modules:
        _declare_missing_torchvision_ops()
    from lerobot.datasets import lerobot_dataset

    return lerobot_dataset


def _check_item(item: dict, index: int, want: dict) -> None:
    assert int(item["index"]) == index and item["task"] == want["task"]
    assert int(item["episode_index"]) == want["episode_index"]
    assert int(item["frame_index"]) == want["frame_index"]
    assert float(item["timestamp"]) == pytest.approx(want["timestamp"], abs=1e-6)
    assert tuple(item["observation.state"].shape) == (3,) == tuple(item["action"].shape)
    np.testing.assert_allclose(item["observation.state"].numpy(), want["state"], rtol=1e-6)
    np.testing.assert_array_equal(item["action"].numpy(), want["action"])
    image = item["observation.images.camera"]  # (3, H, W) float32 in [0, 1], channels first
    assert tuple(image.shape) == (3, H, W)
    rgb = image.permute(1, 2, 0).numpy() * 255
    assert np.abs(rgb - want["colour"]).max() <= 12, f"frame {index}: lossy AV1, but not this far"


@pytest.mark.filterwarnings("ignore:Failed to load image Python extension:UserWarning")
@pytest.mark.filterwarnings("ignore:The video decoding and encoding capabilities:UserWarning")
def test_lerobot_reads_back_what_was_recorded(exported, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read before the hub client is imported
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # datasets' parquet cache goes there
    lerobot_dataset = import_lerobot_dataset()
    result, _ = exported
    # "pyav": lerobot's decoder where torchcodec (which needs FFmpeg's shared libraries) is absent
    dataset = lerobot_dataset.LeRobotDataset("local/hands", root=result.root,
                                             video_backend="pyav")
    expected = expected_frames()
    assert dataset.fps == 30 and dataset.num_episodes == len(EPISODES)
    assert len(dataset) == dataset.num_frames == len(expected) == 21
    assert dataset.meta.video_keys == ["observation.images.camera"]
    assert dataset.features["action"]["names"] == JOINTS
    np.testing.assert_allclose(dataset.meta.stats["action"]["max"], [11, 21, 31])
    for index, want in enumerate(expected):
        _check_item(dataset[index], index, want)
