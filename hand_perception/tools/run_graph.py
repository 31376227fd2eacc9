"""``hand-perception run``: start a node graph from config/graphs in one process."""
from __future__ import annotations

import argparse

HELP = "start a graph from config/graphs in one process (as graph_runner)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hand_perception.nodes.graph_runner import add_graph_arguments

    add_graph_arguments(parser)


def run(options: argparse.Namespace) -> int:
    from hand_perception.nodes.graph_runner import run_from_options

    return run_from_options(options, ros_args=[])
