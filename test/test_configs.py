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


def _core_loaders():
    """Config file (relative to config/) -> function that loads it through its Options class."""
    from hand_perception.core.lifting import LiftingOptions
    from hand_perception.core.models.hand_landmarker import HandLandmarkerOptions
    from hand_perception.core.models.palm_detector import PalmDetectorOptions
    from hand_perception.core.options import options_from_yaml
    from hand_perception.core.tracking import HandTrackerOptions

    def sections(**classes):
        return lambda path: [options_from_yaml(cls, path, name) for name, cls in classes.items()]

    loaders = {
        "models.yaml": sections(palm_detector=PalmDetectorOptions,
                                hand_landmarker=HandLandmarkerOptions),
        "tracking.yaml": sections(hand_tracker=HandTrackerOptions, hand_lifter=LiftingOptions),
    }
    try:
        from hand_perception.core.hand_pipeline import load_pipeline_options
        loaders["hand_pipeline.yaml"] = load_pipeline_options
    except ImportError:
        pass
    return loaders


def _is_node_params_or_graph(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return path.parent.name == "graphs" or any(
        isinstance(v, dict) and "ros__parameters" in v for v in data.values())


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_config_loads_through_its_options(path):
    relative = str(path.relative_to(ROOT / "config"))
    if _is_node_params_or_graph(path):
        pytest.skip("node parameters / graph: covered by the tests above")
    if relative.startswith("retargeting/"):
        pytest.importorskip("pinocchio", reason="retargeting configs need pin (scripts/setup.sh)")
        from hand_perception.core.retargeting.config import load_options
        assert load_options(path)
        return
    loaders = _core_loaders()
    assert relative in loaders, f"config/{relative} has no loader: register it in this test"
    assert loaders[relative](path)
