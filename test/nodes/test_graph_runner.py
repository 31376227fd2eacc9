"""The graph runner starts a configured graph in one process; nodes talk over DDS."""
import subprocess
import sys

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from hand_perception.ros.graph import load_graph
from hand_perception.ros.runner import start_graph
from helpers import wait_until

pytestmark = pytest.mark.dds


@pytest.fixture
def graph_file(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "frame.png"), np.full((30, 40, 3), 90, np.uint8))
    graph = {"nodes": [
        {"executable": "image_source_node", "name": "cam_a",
         "parameters": [{"source": str(tmp_path / "frame.png"), "rate_hz": 20.0}],
         "remappings": {"image": "/a/image"}},
        {"executable": "image_source_node", "name": "cam_b", "namespace": "/b",
         "parameters": [{"source": str(tmp_path / "frame.png"), "rate_hz": 20.0}]},
    ]}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(graph))
    return path


def test_start_graph_runs_every_node_with_its_names_and_remappings(rclpy_context, graph_file):
    running = start_graph(load_graph(graph_file), context=rclpy_context)
    try:
        assert set(running.nodes) == {"cam_a", "cam_b"}
        assert running.nodes["cam_b"].get_namespace() == "/b"
        probe = rclpy.create_node("probe", context=rclpy_context)
        seen = {"/a/image": 0, "/b/image": 0}
        for topic in seen:
            probe.create_subscription(Image, topic, lambda _m, t=topic: seen.__setitem__(t, seen[t] + 1),
                                      qos_profile_sensor_data)
        running.executor.add_node(probe)
        assert wait_until(lambda: min(seen.values()) >= 2, 10.0), seen
    finally:
        running.stop()
    assert not running.errors


def test_graph_runner_command_runs_for_a_duration(graph_file):
    done = subprocess.run([sys.executable, "-m", "hand_perception.nodes.graph_runner",
                           "--graph", str(graph_file), "--duration", "1.0",
                           "--set", "cam_a.rate_hz:=5.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_graph_runner_rejects_bad_overrides(graph_file):
    done = subprocess.run([sys.executable, "-m", "hand_perception.nodes.graph_runner",
                           "--graph", str(graph_file), "--set", "nobody.rate_hz:=5.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "nobody" in done.stderr
