"""``graph_runner``: start a node graph from config/graphs/ in one process (no launch_ros needed).

    graph_runner --graph hand_perception [--set camera.source:=video.mp4] [--remap camera:image:=/cam/image]
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from hand_perception.ros.graph import GraphSpec, load_graph


def _apply_overrides(graph: GraphSpec, sets: Sequence[str], remaps: Sequence[str]) -> GraphSpec:
    import yaml

    by_name = {node.name: node for node in graph.nodes}
    for item in sets:
        target, assign, value = item.partition(":=")
        node_name, _, param = target.partition(".")
        if node_name not in by_name or not param or not assign:
            raise SystemExit(f"--set {item!r}: want NODE.PARAM:=VALUE with NODE in {sorted(by_name)}")
        by_name[node_name].parameters.append({param: yaml.safe_load(value)})
    for item in remaps:
        node_name, _, rule = item.partition(":")
        src, sep, dst = rule.partition(":=")
        if node_name not in by_name or not sep:
            raise SystemExit(f"--remap {item!r}: want NODE:FROM:=TO with NODE in {sorted(by_name)}")
        by_name[node_name].remappings[src] = dst
    return graph


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--graph", default="hand_perception",
                        help="graph file, or a name under config/graphs/ (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM:=VALUE")
    parser.add_argument("--remap", action="append", default=[], metavar="NODE:FROM:=TO")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: until Ctrl-C)")


def run_from_options(options: argparse.Namespace, ros_args: Sequence[str]) -> int:
    from hand_perception.ros.runner import run_graph

    graph = _apply_overrides(load_graph(options.graph), options.set, options.remap)
    return run_graph(graph, duration_s=options.duration, args=list(ros_args))


def main(args: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="graph_runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_arguments(parser)
    options, ros_args = parser.parse_known_args(args)
    return run_from_options(options, ros_args)


if __name__ == "__main__":
    raise SystemExit(main())
