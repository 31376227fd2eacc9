"""The node graph of ``hand-perception demo``: config/graphs/record.yaml with the demo's settings.

camera (image_source_node) -> hand_tracker -> retargeting -> recorder, as ``hand-perception run
--graph record`` starts it, plus inline parameters: the input, a simulated clock for the nodes that
take part in pacing (see ros/demo_runner.py), two robot hands, and what the recorder records.
With a ROS image topic as input the camera node is left out and the tracker subscribes that topic.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from hand_perception.core.options import require_range
from hand_perception.ros.graph import GraphSpec, NodeSpec, load_graph

IMAGE_TOPIC = "/camera/image_raw"
HANDS_TOPIC = "/hands"
DEFAULT_TASK = "demo: follow the pointing hand"
#: One robot hand per side: each person's hand drives the robot hand of its own side, so the
#: demo moves a robot hand whichever hand is shown (the sample's pointing hand is a LEFT hand).
DEFAULT_ROBOT_HANDS = ("allegro_left", "allegro_right")


@dataclass
class DemoSettings:
    """``source``: image_source_node's ``source`` (image, folder, video, webcam index), or
    ``ros_topic``: an Image topic some other node publishes (then ``source`` is ignored).
    ``max_frames``: stop after this many (0: at the end of the input; for a topic or a webcam
    set it or ``duration_s``, wall-clock seconds, 0: no limit). ``fps``: the camera rate (Hz),
    also the rate of the stamps, the video and the LeRobot episode. ``size``: (width, height) px
    to resize to, (0, 0) keeps the input's size. ``frame_timeout_s``: longest wait for the
    tracker's result of one frame before the demo gives up."""

    out_dir: Path
    source: str = ""
    ros_topic: str = ""
    max_frames: int = 120
    duration_s: float = 0.0
    fps: float = 30.0
    size: Tuple[int, int] = (0, 0)
    loop: bool = False
    robot_hands: Tuple[str, ...] = DEFAULT_ROBOT_HANDS
    task: str = DEFAULT_TASK
    input_name: str = ""    # how the summary names the input
    pipeline_config: str = ""  # the tracker's config_file; "" keeps the graph's
    frame_timeout_s: float = 10.0
    verbose: bool = False

    def __post_init__(self) -> None:
        if bool(self.source) == bool(self.ros_topic):
            raise ValueError(f"give exactly one of source={self.source!r} and "
                             f"ros_topic={self.ros_topic!r}")
        if self.ros_topic and not self.ros_topic.startswith("/"):
            raise ValueError(f"ros_topic={self.ros_topic!r} must be an absolute topic name")
        require_range("max_frames", self.max_frames, 0, 10**7)
        require_range("duration_s", self.duration_s, 0.0, 10**6)
        require_range("fps", self.fps, 0.1, 240.0)
        require_range("frame_timeout_s", self.frame_timeout_s, 0.1, 600.0)
        if len(self.size) != 2 or (self.size[0] == 0) != (self.size[1] == 0):
            raise ValueError(f"size={self.size!r} must be (width, height), both 0 or both > 0")
        if not self.robot_hands or len(self.robot_hands) > 2:
            raise ValueError(f"robot_hands={self.robot_hands!r}: one or two robot hands")
        self.out_dir = Path(self.out_dir)

    @property
    def paced(self) -> bool:
        """True when the demo drives the camera (and so every frame is processed)."""
        return not self.ros_topic

    @property
    def image_topic(self) -> str:
        return self.ros_topic or IMAGE_TOPIC

    @property
    def camera_info_topic(self) -> str:
        """camera_info beside the image topic, as image_transport pairs them."""
        return self.image_topic.rsplit("/", 1)[0] + "/camera_info"


def robot_topic_prefix(side: str, robot_hands: Tuple[str, ...]) -> str:
    """Where the retargeting node publishes the commands of the robot hand of ``side``."""
    return f"/robot_hand/{side}/" if len(robot_hands) > 1 else "/robot_hand/"


def robot_sides(robot_hands: Tuple[str, ...]) -> Dict[str, str]:
    """side ("left"/"right") -> robot hand name, from ``<hand>_<side>`` names."""
    sides = {}
    for name in robot_hands:
        side = name.rpartition("_")[2]
        if side not in ("left", "right") or side in sides:
            raise ValueError(f"robot_hands={list(robot_hands)}: {name!r} needs a side of its own "
                             f"(<hand>_left / <hand>_right)")
        sides[side] = name
    return sides


def recorded_topics(settings: DemoSettings) -> List[str]:
    """Camera, hands and every robot hand's JointState and ActionChunk."""
    topics = [settings.image_topic, settings.camera_info_topic, HANDS_TOPIC]
    for side in robot_sides(settings.robot_hands):
        prefix = robot_topic_prefix(side, settings.robot_hands)
        topics += [prefix + "joint_states", prefix + "action_chunk"]
    return topics


def _node(graph: GraphSpec, executable: str) -> NodeSpec:
    found = [n for n in graph.nodes if n.executable == executable]
    if len(found) != 1:
        raise ValueError(f"{graph.source}: expected one {executable}, found {len(found)}")
    return found[0]


def demo_graph(settings: DemoSettings, bag_root: Path) -> GraphSpec:
    """The record graph with the demo's parameters; recorder episodes go under ``bag_root``."""
    graph = load_graph("record")
    sim = {"use_sim_time": settings.paced}
    tracker = _node(graph, "hand_tracker_node")
    if settings.paced:
        width, height = settings.size
        _node(graph, "image_source_node").parameters.append(
            {"source": settings.source, "loop": settings.loop, "rate_hz": float(settings.fps),
             "width": int(width), "height": int(height), **sim})
    else:
        graph.nodes.remove(_node(graph, "image_source_node"))
        tracker.remappings.update({"image": settings.image_topic,
                                   "image/compressed": settings.image_topic + "/compressed",
                                   "camera_info": settings.camera_info_topic})
    # Paced frames cost nothing to wait for: the camera_info twin of every image is used, even
    # on a loaded machine and with photos of different sizes.
    waits = {"camera_info_wait_s": 1.0} if settings.paced else {}
    tracker.parameters.append(dict(sim, **waits, **({"config_file": settings.pipeline_config}
                                                     if settings.pipeline_config else {})))
    _node(graph, "retargeting_node").parameters.append(
        {"robot_hands": list(settings.robot_hands), **sim})
    # The recorder stays on wall time: its topic discovery runs on a timer of its clock.
    _node(graph, "recorder_node").parameters.append(
        {"topics": recorded_topics(settings), "output_dir": str(bag_root),
         "task": settings.task, "robot_hand": ",".join(settings.robot_hands),
         "auto_start": False})
    return graph
