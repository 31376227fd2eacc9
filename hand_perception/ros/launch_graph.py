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
#: node name -> launch argument that must be true for the node to start
NodeConditions = Mapping[str, str]
_TRUE = ("true", "1", "yes", "on")


def check_launch_data(graph: GraphSpec, arguments: Arguments, parameter_args: ArgumentTargets,
                      remap_args: ArgumentTargets, conditions: NodeConditions = None) -> List[str]:
    """Problems with a launch file's data (unknown nodes or arguments); empty when consistent."""
    problems = []
    node_names = {node.name for node in graph.nodes}
    for node_name, arg in (conditions or {}).items():
        if node_name not in node_names or arg not in arguments:
            problems.append(f"condition {node_name!r} -> {arg!r}: unknown node or argument")
    for kind, targets in (("parameter", parameter_args), ("remapping", remap_args)):
        for node_name, mapping in targets.items():
            if node_name not in node_names:
                problems.append(f"{kind} target node {node_name!r} is not in {graph.source.name}")
            problems += [f"{kind} {node_name}.{key} uses undeclared argument {arg!r}"
                         for key, arg in mapping.items() if arg not in arguments]
    specs = {node.name: node for node in graph.nodes}
    for node_name, mapping in parameter_args.items():
        known = _file_parameters(specs[node_name]) if node_name in specs else {}
        problems += [f"parameter {node_name}.{param} is not set in the node's config files"
                     for param in mapping if node_name in specs and param not in known]
    return problems


def _file_parameters(spec) -> Dict[str, object]:
    """The node's parameters as its parameter files set them (to type launch argument values)."""
    values: Dict[str, object] = {}
    for source in spec.parameters:
        data = (yaml.safe_load(source.read_text(encoding="utf-8")) or {}) if not isinstance(source, dict) \
            else {spec.name: {"ros__parameters": source}}
        for section in data.values():
            values.update((section or {}).get("ros__parameters", {}))
    return values


def _typed(text: str, like: object) -> object:
    """A launch argument's text as a parameter value of the same kind as ``like`` (its value in
    the config file): YAML scalars, and a bare word becomes a one-item list where a list is
    expected (``robot_hands:=allegro_right``)."""
    value = yaml.safe_load(text)
    if isinstance(like, list) and not isinstance(value, list):
        return [value]
    if isinstance(like, str) and not isinstance(value, str):
        return text
    return value


def _node_actions(context, graph: GraphSpec, parameter_args: ArgumentTargets,
                  remap_args: ArgumentTargets, conditions: NodeConditions) -> List[object]:
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def value(argument: str) -> str:
        return LaunchConfiguration(argument).perform(context)

    actions = []
    for spec in graph.nodes:
        if spec.name in conditions and value(conditions[spec.name]).lower() not in _TRUE:
            continue
        parameters: List[object] = [str(p) if not isinstance(p, dict) else p for p in spec.parameters]
        defaults = _file_parameters(spec)
        overrides = {param: _typed(value(arg), defaults.get(param))
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
                       remap_args: ArgumentTargets, conditions: NodeConditions = None):
    """A LaunchDescription: one DeclareLaunchArgument per argument, then the graph's nodes with
    the arguments applied (empty arguments leave the config files' values); a node named in
    ``conditions`` starts only when its argument is true."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    graph = load_graph(graph_name)
    conditions = conditions or {}
    problems = check_launch_data(graph, arguments, parameter_args, remap_args, conditions)
    if problems:
        raise ValueError("; ".join(problems))
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=lambda context: _node_actions(
        context, graph, parameter_args, remap_args, conditions))])


#: Launch arguments shared by every launch file that starts the camera and the hand tracker.
CAMERA_AND_TRACKER_ARGUMENTS = {
    "use_image_source": ("true", "start image_source_node; false when a camera driver publishes"),
    "source": ("", "image_source input: image, folder, video or webcam index ('': config file)"),
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image topic of the camera"),
    "camera_info_topic": ("/camera/camera_info", "sensor_msgs/CameraInfo topic of the camera"),
    "depth_topic": ("/camera/depth/image_raw", "aligned depth image (16UC1 mm or 32FC1 m)"),
    "use_depth": ("", "true: metric 3D from the depth image ('': config file)"),
    "providers": ("", "inference back-end: auto | cpu | cuda | tensorrt ('': config file)"),
    "max_hands": ("", "hands tracked at most ('': config file)"),
    "image_is_mirrored": ("", "true for selfie-view (flipped) images ('': config file)"),
    "publish_annotated": ("", "true: publish /hands/annotated ('': config file)"),
}
CAMERA_AND_TRACKER_PARAMETERS = {
    "camera": {"source": "source"},
    "hand_tracker": {name: name for name in ("use_depth", "providers", "max_hands",
                                             "image_is_mirrored", "publish_annotated")},
}
CAMERA_AND_TRACKER_REMAPS = {
    "camera": {"image": "image_topic", "camera_info": "camera_info_topic"},
    "hand_tracker": {"image": "image_topic", "camera_info": "camera_info_topic",
                     "depth": "depth_topic"},
}
CAMERA_CONDITIONS = {"camera": "use_image_source"}
