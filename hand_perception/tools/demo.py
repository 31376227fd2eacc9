"""``hand-perception demo``: the main job on an embedded default.

For now a smoke run of the node graph on the sample photo prepared at set-up; the full demo
(camera -> tracker -> retargeter -> recorder) replaces it.
"""
from __future__ import annotations

import argparse

HELP = "run the node graph on the sample input and report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=3.0, help="seconds (default: %(default)s)")
    parser.add_argument("--input", default="", help="image, folder, video or webcam index")


def run(options: argparse.Namespace) -> int:
    from hand_perception.ros.dds_env import apply_local_dds_environment

    apply_local_dds_environment()  # the demo talks only to itself: keep DDS on this machine
    from sensor_msgs.msg import CameraInfo, Image

    from hand_perception.ros.graph import load_graph
    from hand_perception.ros.smoke import smoke_run

    graph = load_graph("hand_perception")
    if options.input:
        graph.nodes[0].parameters.append({"source": options.input})
    report = smoke_run(graph, {"/camera/image_raw": Image, "/camera/camera_info": CameraInfo},
                       duration_s=options.duration)
    print("\n".join(report.lines()))
    return 0 if all(s.count > 0 for s in report.topics.values()) else 1
