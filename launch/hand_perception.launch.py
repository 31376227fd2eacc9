"""Camera -> hands: the nodes of config/graphs/hand_perception.yaml, one process each.

    ros2 launch hand_perception hand_perception.launch.py image_topic:=/my_cam/image_raw

The same graph runs without launch_ros as `graph_runner --graph hand_perception`.
"""
from hand_perception.ros.launch_graph import launch_description

GRAPH = "hand_perception"
ARGUMENTS = {
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image topic of the camera"),
    "camera_info_topic": ("/camera/camera_info", "sensor_msgs/CameraInfo topic of the camera"),
    "source": ("", "image_source input: image, folder, video or webcam index ('': config file)"),
}
PARAMETER_ARGUMENTS = {"camera": {"source": "source"}}
REMAP_ARGUMENTS = {"camera": {"image": "image_topic", "camera_info": "camera_info_topic"}}


def generate_launch_description():
    return launch_description(GRAPH, ARGUMENTS, PARAMETER_ARGUMENTS, REMAP_ARGUMENTS)
