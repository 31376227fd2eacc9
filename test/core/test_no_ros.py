"""hand_perception.core must stay plain Python: no rclpy, no ROS message packages."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "hand_perception" / "core"
ROS_MODULES = ("rclpy", "rosidl", "rmw", "rcl_interfaces", "launch", "launch_ros",
               "ament_index_python", "builtin_interfaces", "hand_perception.msg",
               "hand_perception.ros", "hand_perception.nodes")


def _is_ros_module(name: str) -> bool:
    return (name.split(".")[0].endswith("_msgs") or name.split(".")[0].endswith("_srvs")
            or any(name == m or name.startswith(m + ".") for m in ROS_MODULES))


def _imported_modules(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_ros(path):
    offending = [name for name in _imported_modules(path) if _is_ros_module(name)]
    assert not offending, f"{path} imports ROS modules {offending}"


def test_is_ros_module_recognises_ros_names():
    assert _is_ros_module("sensor_msgs.msg") and _is_ros_module("rclpy.node")
    assert _is_ros_module("hand_perception.msg") and not _is_ros_module("numpy")


def test_importing_every_core_module_loads_no_ros():
    modules = sorted(
        "hand_perception.core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py") if p.name != "__init__.py" and "__main__" not in p.name)
    script = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    try:\n        importlib.import_module(m)\n"
        "    except ImportError as e:\n        print('SKIP', m, e)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rosidl_parser',"
        " 'sensor_msgs', 'std_msgs', 'geometry_msgs') or m.startswith('hand_perception.msg'))\n"
        "print('ROS', bad)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "ROS []" in out.stdout, out.stdout + out.stderr
