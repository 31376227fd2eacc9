"""Record demonstrations: camera -> hands -> robot-hand commands -> recorder
(config/graphs/record.yaml), one process each.

    ros2 launch hand_perception record.launch.py robot_hands:=inspire_right \
        output_dir:=~/demos task:="pick up the mug" operator:=alice
    ros2 service call /recorder/start_episode std_srvs/srv/Trigger   # ... and stop_episode
"""
from hand_perception.ros.launch_graph import (CAMERA_AND_TRACKER_ARGUMENTS,
                                              CAMERA_AND_TRACKER_PARAMETERS,
                                              CAMERA_AND_TRACKER_REMAPS, CAMERA_CONDITIONS,
                                              launch_description)

GRAPH = "record"
ARGUMENTS = dict(CAMERA_AND_TRACKER_ARGUMENTS, **{
    "robot_hands": ("", "robot hand(s), e.g. allegro_right ('': config/retargeting_node.yaml)"),
    "output_dir": ("", "where episode bags are written ('': config/recorder.yaml)"),
    "task": ("", "task text stored with each episode"),
    "operator": ("", "operator stored with each episode"),
    "auto_start": ("", "true: start an episode as soon as the topics appear ('': config file)"),
})
PARAMETER_ARGUMENTS = dict(
    CAMERA_AND_TRACKER_PARAMETERS, retargeting={"robot_hands": "robot_hands"},
    recorder={"output_dir": "output_dir", "task": "task", "operator": "operator",
              "robot_hand": "robot_hands", "auto_start": "auto_start"})
REMAP_ARGUMENTS = dict(CAMERA_AND_TRACKER_REMAPS)
CONDITIONS = dict(CAMERA_CONDITIONS)


def generate_launch_description():
    return launch_description(GRAPH, ARGUMENTS, PARAMETER_ARGUMENTS, REMAP_ARGUMENTS, CONDITIONS)
