"""Every launch file parses, names only graphs, nodes, executables, parameter files and arguments
that exist, and (where launch_ros is installed) generates the graph's nodes."""
import importlib.util
from pathlib import Path

import pytest

from hand_perception.ros.graph import available_executables, load_graph
from hand_perception.ros.launch_graph import check_launch_data

LAUNCH_DIR = Path(__file__).resolve().parents[2] / "launch"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # launch files import launch only inside generate_...()
    return module


def test_there_are_launch_files():
    assert LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_data_is_consistent(path):
    module = _load(path)
    assert callable(module.generate_launch_description)
    graph = load_graph(module.GRAPH)  # checks executables and parameter files exist
    assert {n.executable for n in graph.nodes} <= set(available_executables())
    assert all(isinstance(v, tuple) and len(v) == 2 for v in module.ARGUMENTS.values())
    assert check_launch_data(graph, module.ARGUMENTS, module.PARAMETER_ARGUMENTS,
                             module.REMAP_ARGUMENTS, getattr(module, "CONDITIONS", {})) == []


def test_check_launch_data_catches_mistakes():
    graph = load_graph("hand_perception")
    problems = check_launch_data(graph, {"a": ("", "")}, {"nobody": {"x": "a"}},
                                 {"camera": {"image": "undeclared"}}, {"camera": "missing"})
    assert len(problems) == 3 and "missing" in problems[0] and "nobody" in problems[1]
    assert "undeclared" in problems[2]


def test_launch_argument_text_is_typed_like_the_config_value():
    from hand_perception.ros.launch_graph import _typed

    assert _typed("allegro_right", ["leap_left"]) == ["allegro_right"]
    assert _typed("[leap_left, leap_right]", ["x"]) == ["leap_left", "leap_right"]
    assert _typed("true", False) is True and _typed("3", 2) == 3
    assert _typed("007", "") == "007"  # a string parameter stays the text given


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_generates_the_graph_nodes(path):
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI; runs on a system ROS 2")
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    module = _load(path)
    description = module.generate_launch_description()
    context = LaunchContext()
    for entity in description.entities:
        if not isinstance(entity, OpaqueFunction):
            entity.visit(context)  # declares the arguments with their defaults
    nodes = [node for entity in description.entities if isinstance(entity, OpaqueFunction)
             for node in entity.execute(context)]
    assert sorted(n.node_executable for n in nodes) == sorted(
        s.executable for s in load_graph(module.GRAPH).nodes)
