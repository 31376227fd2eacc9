"""ROS-free core of hand_perception: plain Python + numpy/torch/onnxruntime.

Nothing under this package imports rclpy or any ROS message package; test/core/test_no_ros.py
enforces it, so the core can be used in notebooks, offline tools and other middlewares.
"""
