"""Camera -> hands: the nodes of config/graphs/hand_perception.yaml, one process each.

    ros2 launch hand_perception hand_perception.launch.py use_image_source:=false \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info \
        use_depth:=true depth_topic:=/camera/aligned_depth_to_color/image_raw providers:=cuda

The same graph runs without launch_ros as `graph_runner --graph hand_perception`.
"""
from hand_perception.ros.launch_graph import (CAMERA_AND_TRACKER_ARGUMENTS,
                                              CAMERA_AND_TRACKER_PARAMETERS,
                                              CAMERA_AND_TRACKER_REMAPS, CAMERA_CONDITIONS,
                                              launch_description)

GRAPH = "hand_perception"
ARGUMENTS = dict(CAMERA_AND_TRACKER_ARGUMENTS)
PARAMETER_ARGUMENTS = dict(CAMERA_AND_TRACKER_PARAMETERS)
REMAP_ARGUMENTS = dict(CAMERA_AND_TRACKER_REMAPS)
CONDITIONS = dict(CAMERA_CONDITIONS)


def generate_launch_description():
    return launch_description(GRAPH, ARGUMENTS, PARAMETER_ARGUMENTS, REMAP_ARGUMENTS, CONDITIONS)
