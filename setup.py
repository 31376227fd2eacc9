"""pip installation of hand_perception's Python package and commands (no system ROS needed).

The ROS build (`colcon build`, package.xml's ament_cmake) does not use this file: CMakeLists.txt
builds the messages and installs the same sources. scripts/setup.sh builds the messages into the
venv and then installs this package editable, which gives the `hand-perception` command and one
command per node (every hand_perception/nodes/*_node.py with a main()).
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
NODE_MODULES = sorted(p.stem for p in (HERE / "hand_perception" / "nodes").glob("*_node.py"))

setup(
    name="hand_perception",
    version="0.1.0",
    description="ROS 2 hand perception: 21-keypoint hands in 2D and metric 3D, retargeting",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hand_perception", "hand_perception.*"]),
    package_data={"hand_perception": ["py.typed"]},
    entry_points={
        "console_scripts": ["hand-perception = hand_perception.cli:main"]
        + [f"{name} = hand_perception.nodes.{name}:main" for name in NODE_MODULES]
        + ["graph_runner = hand_perception.nodes.graph_runner:main"],
    },
)
