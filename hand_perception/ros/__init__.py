"""ROS-side helpers shared by the nodes: message conversions, QoS, the node graph, DDS settings.

Unlike hand_perception.core, these modules may import rclpy and message packages.
"""
