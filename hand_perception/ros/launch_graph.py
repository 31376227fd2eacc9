"""Turn a graph file (config/graphs/*.yaml) into launch_ros actions; used by launch/*.launch.py.

Imports launch_ros lazily: the rest of the package works without it (it is not on PyPI).
"""
from __future__ import annotations

from typing import Dict, List

from hand_perception.ros.graph import GraphSpec, load_graph


def node_actions(graph: GraphSpec, overrides: Dict[str, Dict[str, object]] = None,
                 remappings: Dict[str, Dict[str, str]] = None) -> List[object]:
    """One ``launch_ros.actions.Node`` per graph node, with the graph's parameter files, inline
    parameters and remappings, plus ``overrides[node_name]`` parameters and ``remappings[node]``."""
    from launch_ros.actions import Node

    overrides, remappings = overrides or {}, remappings or {}
    actions = []
    for spec in graph.nodes:
        parameters = [str(p) if not isinstance(p, dict) else p for p in spec.parameters]
        if spec.name in overrides:
            parameters.append(overrides[spec.name])
        remaps = dict(spec.remappings, **remappings.get(spec.name, {}))
        actions.append(Node(
            package="hand_perception", executable=spec.executable, name=spec.name,
            namespace=spec.namespace or None, parameters=parameters,
            remappings=list(remaps.items()), output="screen", emulate_tty=True))
    return actions


def graph_node_actions(graph_name: str, **kwargs) -> List[object]:
    """``node_actions(load_graph(graph_name), ...)``."""
    return node_actions(load_graph(graph_name), **kwargs)
