"""image_source_node publishes the input's pixels and matching camera_info over DDS."""
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from hand_perception.nodes.image_source_node import ImageSourceNode
from hand_perception.ros.image import image_to_rgb
from helpers import spin_until

pytestmark = pytest.mark.dds


@pytest.fixture
def frames_dir(tmp_path):
    import cv2

    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return tmp_path, frames


def test_publishes_folder_frames_in_order_with_camera_info(rclpy_context, frames_dir):
    folder, frames = frames_dir
    node = ImageSourceNode(context=rclpy_context, cli_args=[
        "--ros-args", "-p", f"source:={folder}", "-p", "rate_hz:=50.0", "-p", "loop:=false",
        "-p", "width:=0", "-p", "height:=0"])
    probe = rclpy.create_node("probe", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(probe)
    images, infos = [], []
    probe.create_subscription(Image, "image", images.append, qos_profile_sensor_data)
    probe.create_subscription(CameraInfo, "camera_info", infos.append, qos_profile_sensor_data)
    # Start publishing only once the probe matched, so no frame is published into the void.
    node._timer.cancel()
    assert spin_until(executor, lambda: node._image_pub.get_subscription_count() == 1)
    node._timer.reset()
    executor.add_node(node)
    assert spin_until(executor, lambda: len(images) == 3 and len(infos) == 3, 10.0)
    for msg, rgb in zip(images, frames):
        np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    assert infos[0].width == 64 and infos[0].k[0] == pytest.approx(32 / np.tan(np.radians(30)))
    assert images[0].header.stamp == infos[0].header.stamp
    assert images[0].header.frame_id == "camera_color_optical_frame"
    executor.shutdown()
    node.destroy_node()
    probe.destroy_node()


def test_rejects_a_missing_source(rclpy_context, tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        ImageSourceNode(context=rclpy_context,
                        cli_args=["--ros-args", "-p", f"source:={tmp_path / 'nope.mp4'}"])


def test_rate_outside_its_declared_range_is_rejected(rclpy_context, frames_dir):
    from rclpy.exceptions import InvalidParameterValueException

    with pytest.raises(InvalidParameterValueException):
        ImageSourceNode(context=rclpy_context, cli_args=[
            "--ros-args", "-p", f"source:={frames_dir[0]}", "-p", "rate_hz:=1000.0"])
