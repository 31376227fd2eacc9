"""Camera -> hands -> robot-hand commands (config/graphs/teleop.yaml), one process each.

    ros2 launch hand_perception teleop.launch.py robot_hands:=leap_right providers:=cuda
    ros2 launch hand_perception teleop.launch.py robot_hands:="[leap_left, leap_right]"

Robot hands: config/retargeting/<hand>_<side>.yaml (allegro, leap, shadow, inspire, ability).
"""
from hand_perception.ros.launch_graph import (CAMERA_AND_TRACKER_ARGUMENTS,
                                              CAMERA_AND_TRACKER_PARAMETERS,
                                              CAMERA_AND_TRACKER_REMAPS, CAMERA_CONDITIONS,
                                              launch_description)

GRAPH = "teleop"
ARGUMENTS = dict(CAMERA_AND_TRACKER_ARGUMENTS, **{
    "robot_hands": ("", "robot hand(s), e.g. allegro_right or [leap_left, leap_right] "
                        "('': config/retargeting_node.yaml)"),
    "arm_base_frame": ("", "frame_id of the ActionChunk wrist poses ('': config file)"),
    "horizon": ("", "actions per ActionChunk ('': config file)"),
})
PARAMETER_ARGUMENTS = dict(CAMERA_AND_TRACKER_PARAMETERS, retargeting={
    "robot_hands": "robot_hands", "arm_base_frame": "arm_base_frame", "horizon": "horizon"})
REMAP_ARGUMENTS = dict(CAMERA_AND_TRACKER_REMAPS)
CONDITIONS = dict(CAMERA_CONDITIONS)


def generate_launch_description():
    return launch_description(GRAPH, ARGUMENTS, PARAMETER_ARGUMENTS, REMAP_ARGUMENTS, CONDITIONS)
