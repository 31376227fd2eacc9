"""Turn a graph file (config/graphs/*.yaml) into a launch description; used by launch/*.launch.py.

A launch file only declares data: which graph, its launch arguments, and which node parameter or
remapping each argument sets. That keeps every launch file checkable without launch_ros (not on
PyPI: test/launch/ validates the data) and starting exactly what the graph runner starts.
launch and launch_ros are imported only when a description is actually generated.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import yaml

from hand_perception.ros.graph import GraphSpec, load_graph

#: launch argument name -> (default value, description); an empty default keeps the config file's value
Arguments = Mapping[str, Tuple[str, str]]
#: node name -> {parameter or remapped topic -> launch argument name}
ArgumentTargets = Mapping[str, Mapping[str, str]]


def check_launch_data(graph: GraphSpec, arguments: Arguments, parameter_args: ArgumentTargets,
                      remap_args: ArgumentTargets) -> List[str]:
    """Problems with a launch file's data (unknown nodes or arguments); empty when consistent."""
    problems = []
    node_names = {node.name for node in graph.nodes}
    for kind, targets in (("parameter", parameter_args), ("remapping", remap_args)):
        for node_name, mapping in targets.items():
            if node_name not in node_names:
                problems.append(f"{kind} target node {node_name!r} is not in {graph.source.name}")
            problems += [f"{kind} {node_name}.{key} uses undeclared argument {arg!r}"
                         for key, arg in mapping.items() if arg not in arguments]
    return problems


def _node_actions(context, graph: GraphSpec, parameter_args: ArgumentTargets,
                  remap_args: ArgumentTargets) -> List[object]:
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def value(argument: str) -> str:
        return LaunchConfiguration(argument).perform(context)

    actions = []
    for spec in graph.nodes:
        parameters: List[object] = [str(p) if not isinstance(p, dict) else p for p in spec.parameters]
        overrides = {param: yaml.safe_load(value(arg))
                     for param, arg in parameter_args.get(spec.name, {}).items() if value(arg) != ""}
        if overrides:
            parameters.append(overrides)
        remaps = dict(spec.remappings)
        remaps.update({topic: value(arg) for topic, arg in remap_args.get(spec.name, {}).items()
                       if value(arg) != ""})
        actions.append(Node(
            package="hand_perception", executable=spec.executable, name=spec.name,
            namespace=spec.namespace or "", parameters=parameters,
            remappings=list(remaps.items()), output="screen", emulate_tty=True))
    return actions


def launch_description(graph_name: str, arguments: Arguments, parameter_args: ArgumentTargets,
                       remap_args: ArgumentTargets):
    """A LaunchDescription: one DeclareLaunchArgument per argument, then the graph's nodes with
    the arguments applied (empty arguments leave the config files' values)."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    graph = load_graph(graph_name)
    problems = check_launch_data(graph, arguments, parameter_args, remap_args)
    if problems:
        raise ValueError("; ".join(problems))
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(
        function=lambda context: _node_actions(context, graph, parameter_args, remap_args))])
