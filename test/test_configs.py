"""Every shipped config file loads: YAML parses, node parameter files have the ROS layout,
graph files name real executables and files, the Fast DDS profile is what the tests rely on."""
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from hand_perception.ros.graph import load_graph

ROOT = Path(__file__).resolve().parents[1]
YAML_FILES = sorted((ROOT / "config").rglob("*.yaml"))


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_loads(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data, f"{path} is empty or not a mapping"
    if any(isinstance(v, dict) and "ros__parameters" in v for v in data.values()):
        for node_name, section in data.items():
            assert isinstance(section, dict) and set(section) == {"ros__parameters"}, (
                f"{path}: node {node_name!r} needs exactly a ros__parameters mapping")
            assert isinstance(section["ros__parameters"], dict)


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "graphs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_graph_file_is_valid(path):
    graph = load_graph(path)
    assert graph.nodes


def test_fastdds_profile_is_loopback_and_large_shared_memory():
    root = ET.parse(ROOT / "config" / "fastdds_localhost.xml").getroot()
    ns = {"d": "http://www.eprosima.com"}
    descriptors = root.findall(".//d:transport_descriptor", ns)
    kinds = {d.find("d:type", ns).text: d for d in descriptors}
    assert set(kinds) == {"SHM", "UDPv4"}
    segment = int(kinds["SHM"].find("d:segment_size", ns).text)
    assert segment >= 4 * 640 * 480 * 3, "segment must hold several 640x480 rgb8 frames"
    addresses = [a.text for a in kinds["UDPv4"].findall(".//d:address", ns)]
    assert addresses == ["127.0.0.1"]
    assert root.find(".//d:useBuiltinTransports", ns).text == "false"
