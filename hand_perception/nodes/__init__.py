"""ROS 2 nodes: each ``*_node.py`` converts messages, calls hand_perception.core and publishes.

Every node module has a ``main(args=None)`` entry point (installed as an executable of the same
name) and a ``NODE_CLASS`` the graph runner instantiates in-process.
"""
