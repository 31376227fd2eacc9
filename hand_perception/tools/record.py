"""``hand-perception record``: record topics into a rosbag2/MCAP bag per episode.

    hand-perception record --topics /camera/image_raw /hands /robot_hand/joint_states \\
        --out episodes --task "pick up the cube"

By default one episode starts as soon as a topic is found and Ctrl-C stops and finalises it.
With ``--wait`` episodes are started and stopped from outside: the services
``/recorder/start_episode`` and ``/recorder/stop_episode`` (std_srvs/Trigger) or "start"/"stop"
on ``/recorder/episode_command`` (std_msgs/String). ``--repair BAG_DIR`` rebuilds a bag whose
recorder was killed (written beside it as ``BAG_DIR_repaired``).
"""
from __future__ import annotations

import argparse
import json

HELP = "record topics into one rosbag2/MCAP bag per episode (Ctrl-C stops)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topics", nargs="+", default=["/camera/image_raw"], metavar="TOPIC",
                        help="topics to record (default: %(default)s)")
    parser.add_argument("--out", default="episodes", help="output directory (default: %(default)s)")
    parser.add_argument("--task", default="", help="task text stored with the episode")
    parser.add_argument("--operator", default="", help="who demonstrates")
    parser.add_argument("--robot-hand", default="", help="robot hand model, e.g. allegro_right")
    parser.add_argument("--max-chunk-age", type=float, default=0.5,
                        help="seconds of data a crash may lose at most (default: %(default)s)")
    parser.add_argument("--wait", action="store_true",
                        help="do not start an episode; wait for start/stop commands")
    parser.add_argument("--repair", metavar="BAG_DIR", default="",
                        help="rebuild a bag whose recorder was killed, then exit")


def _ros_arguments(options: argparse.Namespace) -> list:
    params = {"topics": list(options.topics), "output_dir": options.out, "task": options.task,
              "operator": options.operator, "robot_hand": options.robot_hand,
              "max_chunk_age_s": float(options.max_chunk_age), "auto_start": not options.wait}
    args = ["--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={json.dumps(value)}"]  # JSON is YAML; quotes survive
    return args


def run(options: argparse.Namespace) -> int:
    if options.repair:
        from hand_perception.core.recording.repair import repair_bag

        try:
            result = repair_bag(options.repair)
        except (OSError, ValueError) as error:
            print(f"repair failed: {error}")
            return 1
        print(f"{result.output_dir}: {result.total} messages {result.message_counts}"
              f"{' (torn last chunk dropped)' if result.truncated else ''}")
        return 0
    from hand_perception.nodes.recorder_node import main

    return main(["hand-perception-record", *_ros_arguments(options)])
