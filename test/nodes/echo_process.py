"""Run as a separate process by test_messages_dds.py: republishes every hand_perception message
received on ``in/<Type>`` to ``out/<Type>``, so messages cross a real process boundary over DDS."""
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy

import hand_perception.msg as hp_msg


def main() -> None:
    names = sys.argv[1:]
    rclpy.init()
    node = rclpy.create_node("echo_process")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    keep = []
    for name in names:
        msg_type = getattr(hp_msg, name)
        publisher = node.create_publisher(msg_type, f"out/{name}", qos)
        keep.append(node.create_subscription(msg_type, f"in/{name}", publisher.publish, qos))
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
