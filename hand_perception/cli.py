"""``hand-perception``: the package's command line.

    hand-perception demo [--duration S] [--input PATH]   the main job on an embedded default
    hand-perception run  [--graph NAME] [--set ...]      start a node graph in one process
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence


def _demo(options: argparse.Namespace) -> int:
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


def _run(options: argparse.Namespace, rest: Sequence[str]) -> int:
    from hand_perception.nodes.graph_runner import main as graph_runner_main

    return graph_runner_main(["--graph", options.graph, *rest])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hand-perception", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the node graph on the sample input and report")
    demo.add_argument("--duration", type=float, default=3.0, help="seconds (default: %(default)s)")
    demo.add_argument("--input", default="", help="image, folder, video or webcam index")
    run = commands.add_parser("run", help="start a graph from config/graphs in one process")
    run.add_argument("--graph", default="hand_perception")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options, rest = build_parser().parse_known_args(argv)
    if options.command == "demo":
        return _demo(options)
    return _run(options, rest)


if __name__ == "__main__":
    sys.exit(main())
