"""The node graph, defined once in config/graphs/*.yaml and started two ways.

``ros2 launch hand_perception <file>.launch.py`` turns a graph into launch_ros Node actions (one
process per node); ``graph_runner`` (and ``hand-perception run``) starts the same nodes in one
process on a multi-threaded executor, for machines without launch_ros. A graph file looks like::

    nodes:
      - executable: image_source_node     # hand_perception/nodes/image_source_node.py
        name: camera
        namespace: ""
        parameters: [image_source.yaml]   # files under config/, or inline mappings
        remappings: {image: /camera/image_raw}

This module only parses and checks graphs; it imports no ROS package.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

import yaml

from hand_perception.paths import config_path

NODES_DIR = Path(__file__).resolve().parent.parent / "nodes"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
ParameterSource = Union[Path, Dict[str, Any]]


def available_executables() -> Tuple[str, ...]:
    """Executables the package installs: every ``hand_perception/nodes/*_node.py``."""
    return tuple(sorted(p.stem for p in NODES_DIR.glob("*_node.py")))


@dataclass
class NodeSpec:
    """One node of a graph: which executable, its name, parameter files and remappings."""

    executable: str
    name: str
    namespace: str = ""
    parameters: List[ParameterSource] = field(default_factory=list)
    remappings: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.executable not in available_executables():
            raise ValueError(
                f"executable {self.executable!r} does not exist; have {available_executables()}")
        if not _NAME.match(self.name):
            raise ValueError(f"node name {self.name!r} is not a valid ROS name")
        for source in self.parameters:
            if isinstance(source, Path) and not source.is_file():
                raise ValueError(f"node {self.name!r}: parameter file {source} does not exist")

    @property
    def module(self) -> str:
        return f"hand_perception.nodes.{self.executable}"

    def ros_arguments(self) -> List[str]:
        """``--ros-args`` for this node: name, namespace, parameter files, inline parameters,
        remappings; the same arguments ``ros2 launch`` passes."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for source in self.parameters:
            if isinstance(source, Path):
                args += ["--params-file", str(source)]
            else:
                args += [arg for key, value in source.items()
                         for arg in ("-p", f"{key}:={yaml.safe_dump(value, default_flow_style=True).strip()}")]
        for src, dst in self.remappings.items():
            args += ["-r", f"{src}:={dst}"]
        return args


@dataclass
class GraphSpec:
    """A set of nodes started together."""

    nodes: List[NodeSpec]
    source: Path

    def __post_init__(self) -> None:
        names = [(n.namespace, n.name) for n in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{self.source}: node names used twice: {duplicates}")


def _parameter_sources(raw: Any, where: str) -> List[ParameterSource]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{where}: parameters must be a list, got {type(raw).__name__}")
    sources: List[ParameterSource] = []
    for item in raw:
        if isinstance(item, str):
            sources.append(config_path(item))
        elif isinstance(item, Mapping):
            sources.append(dict(item))
        else:
            raise ValueError(f"{where}: parameter entry {item!r} is neither a file nor a mapping")
    return sources


def _node_spec(raw: Any, where: str) -> NodeSpec:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a node must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - {"executable", "name", "namespace", "parameters", "remappings"})
    if unknown or "executable" not in raw:
        raise ValueError(f"{where}: unknown keys {unknown} or no 'executable'")
    remappings = raw.get("remappings") or {}
    if not isinstance(remappings, Mapping):
        raise ValueError(f"{where}: remappings must be a mapping, got {remappings!r}")
    return NodeSpec(
        executable=str(raw["executable"]),
        name=str(raw.get("name", raw["executable"])),
        namespace=str(raw.get("namespace", "") or ""),
        parameters=_parameter_sources(raw.get("parameters"), where),
        remappings={str(k): str(v) for k, v in remappings.items()},
    )


def load_graph(name: Union[str, Path]) -> GraphSpec:
    """Load and check a graph file (a path, or a name under ``config/graphs/``)."""
    path = Path(name)
    if not path.is_file():
        path = config_path(Path("graphs") / Path(name).with_suffix(".yaml").name)
    if not path.is_file():
        raise ValueError(f"graph file {name!r} not found (looked at {path})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw_nodes = data.get("nodes") if isinstance(data, Mapping) else None
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ValueError(f"{path}: needs a non-empty 'nodes' list")
    nodes = [_node_spec(raw, f"{path} node {i}") for i, raw in enumerate(raw_nodes)]
    return GraphSpec(nodes=nodes, source=path)
