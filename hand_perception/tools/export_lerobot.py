"""``hand-perception export-lerobot``: recorded episodes -> a LeRobot dataset (format v3.0).

    hand-perception export-lerobot episodes/episode_* --out datasets/hands --fps 30

One bag (one recorded episode) becomes one episode, in the order given. Frames are resampled to
``--fps`` by nearest stamp; ``observation.state`` is the robot-hand joints, ``action`` the first
step of the action chunk (else the joints one frame later); the camera is stored as AV1 video.
Load it with ``LeRobotDataset(REPO_ID, root=OUT)`` (format v3.0: lerobot 0.4.4 to 0.6.1).
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export recorded episode bags to a LeRobot dataset (v3.0)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", type=Path, metavar="BAG_DIR",
                        help="episode bag directories (one episode each)")
    parser.add_argument("--out", required=True, type=Path, help="new dataset directory")
    parser.add_argument("--fps", type=int, default=30, help="frame rate (default: %(default)s)")
    parser.add_argument("--repo-id", default="local/hands", help="default: %(default)s")
    parser.add_argument("--image-topic", default="/camera/image_raw")
    parser.add_argument("--joints-topic", default="/robot_hand/joint_states")
    parser.add_argument("--action-chunk-topic", default="/robot_hand/action_chunk")
    parser.add_argument("--vcodec", default="libsvtav1",
                        help="video encoder (default: %(default)s, as lerobot; h264 is faster)")


def run(options: argparse.Namespace) -> int:
    from hand_perception.core.recording.lerobot_export import (LeRobotExportOptions,
                                                               export_lerobot)
    from hand_perception.core.recording.lerobot_format import VideoSettings

    bags = [b for b in options.bags if b.is_dir() and (b / "metadata.yaml").is_file()]
    skipped = sorted(set(options.bags) - set(bags))
    if skipped:
        print(f"skipping (not a bag directory): {', '.join(map(str, skipped))}")
    export_options = LeRobotExportOptions(
        fps=options.fps, repo_id=options.repo_id, image_topic=options.image_topic,
        joints_topic=options.joints_topic, action_chunk_topic=options.action_chunk_topic,
        video=VideoSettings(vcodec=options.vcodec))
    try:
        result = export_lerobot(bags, options.out, export_options)
    except ValueError as error:
        print(f"export failed: {error}")
        return 1
    for episode in result.episodes:
        print(f"episode {episode.episode_index}: {episode.length} frames, task {episode.task!r}"
              f" <- {episode.bag_dir}")
    print(f"{result.root}: {len(result.episodes)} episodes, {result.total_frames} frames")
    return 0
