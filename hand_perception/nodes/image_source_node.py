"""Publishes frames from an image, an image folder, a video or a webcam as a camera would.

Topics: ``image`` (sensor_msgs/Image, rgb8) and ``camera_info`` (sensor_msgs/CameraInfo, pinhole
intrinsics from ``horizontal_fov_deg``), both stamped with the same time. Stands in for a camera
driver in the demo, tests and offline runs.
"""
from __future__ import annotations

from typing import Optional, Sequence

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from hand_perception.core.camera import CameraIntrinsics
from hand_perception.core.frame_source import FrameSource, FrameSourceOptions
from hand_perception.paths import sample_path
from hand_perception.ros.image import numpy_to_image
from hand_perception.ros.node_utils import declare, run_nodes


def camera_info_message(intrinsics: CameraIntrinsics, header) -> CameraInfo:
    """CameraInfo for a rectified pinhole camera (plumb_bob, zero distortion)."""
    k = intrinsics.matrix
    return CameraInfo(
        header=header, width=intrinsics.width, height=intrinsics.height,
        distortion_model="plumb_bob", d=[0.0] * 5, k=k.reshape(-1).tolist(),
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0])


class ImageSourceNode(Node):
    """Timer-driven publisher of frames read by core.frame_source."""

    def __init__(self, **kwargs) -> None:
        super().__init__("image_source", **kwargs)
        source = declare(self, "source", "", "Image file, image folder, video file or webcam "
                         "index; empty: the sample photo prepared at set-up") or str(sample_path())
        rate = declare(self, "rate_hz", 30.0, "Publishing rate (Hz)", 0.1, 240.0)
        self._frame_id = declare(self, "frame_id", "camera_color_optical_frame",
                                 "frame_id of the images (a camera optical frame, REP-103)")
        self._fov = declare(self, "horizontal_fov_deg", 60.0,
                            "Horizontal field of view used for camera_info (degrees)", 1.0, 179.0)
        options = FrameSourceOptions(
            source=source, loop=declare(self, "loop", True, "Restart at the end of the input"),
            width=declare(self, "width", 0, "Resize to this width (0: keep)", 0, 8192),
            height=declare(self, "height", 0, "Resize to this height (0: keep)", 0, 8192))
        self._source = FrameSource(options)
        # Reliable publishers match both best-effort (sensor-data) and reliable subscribers.
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._image_pub = self.create_publisher(
            Image, "image", qos)
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self.frames_published = 0
        self.finished = False  # the input ended (never with loop:=true)
        self._timer = self.create_timer(1.0 / rate, self._publish_next)

    def _publish_next(self) -> None:
        frame = self._source.process()
        if frame.empty:
            self.get_logger().info("end of input", once=True)
            self.finished = True
            self._timer.cancel()
            return
        header = Header(
            stamp=self.get_clock().now().to_msg(), frame_id=self._frame_id)
        height, width = frame.rgb.shape[:2]
        self._image_pub.publish(numpy_to_image(frame.rgb, "rgb8", header))
        self._info_pub.publish(camera_info_message(
            CameraIntrinsics.from_fov(width, height, self._fov), header))
        self.frames_published += 1

    def close(self) -> None:
        self._source.close()


NODE_CLASS = ImageSourceNode


def main(args: Optional[Sequence[str]] = None) -> int:
    return run_nodes([ImageSourceNode], args=args)


if __name__ == "__main__":
    raise SystemExit(main())
