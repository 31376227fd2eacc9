"""Camera -> hands: the nodes of config/graphs/hand_perception.yaml, one process each.

    ros2 launch hand_perception hand_perception.launch.py image_topic:=/my_cam/image_raw
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

GRAPH = "hand_perception"
ARGUMENTS = {
    "image_topic": ("/camera/image_raw", "sensor_msgs/Image topic of the camera"),
    "camera_info_topic": ("/camera/camera_info", "sensor_msgs/CameraInfo topic of the camera"),
    "source": ("", "image_source input: image, folder, video or webcam index ('' = sample photo)"),
}


def _nodes(context):
    from hand_perception.ros.launch_graph import graph_node_actions

    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    return graph_node_actions(
        GRAPH,
        overrides={"camera": {"source": value["source"]}},
        remappings={"camera": {"image": value["image_topic"],
                               "camera_info": value["camera_info_topic"]}})


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, (default, text) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)])
