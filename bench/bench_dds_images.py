"""Loss and latency of 640x480 rgb8 best-effort images between two processes, with and without
hand_perception's Fast DDS profile (config/fastdds_localhost.xml), and with the profile plus the
malloc thresholds our nodes set in the subscriber (``node_utils.reuse_freed_frame_buffers``).
The runs use LOCALHOST discovery and a ROS domain each, so nothing leaves this machine.

    python bench/bench_dds_images.py [--frames 150] [--rate 30]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _publisher(frames: int, rate: float) -> dict:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_pub")
    pub = node.create_publisher(Image, "bench_image", qos_profile_sensor_data)
    start = time.monotonic()
    while pub.get_subscription_count() == 0 and time.monotonic() - start < 20:
        time.sleep(0.005)
    discovery_s = time.monotonic() - start
    msg = Image(height=480, width=640, encoding="rgb8", step=1920)
    msg.data = np.random.default_rng(0).integers(0, 255, 480 * 640 * 3, dtype=np.uint8).tobytes()
    time.sleep(0.5)  # let the subscriber's side of the match settle too
    for i in range(frames):
        msg.header.frame_id = str(i)
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    return {"discovery_s": discovery_s}


def _subscriber(frames: int, rate: float, node_malloc: bool) -> dict:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    if node_malloc:
        sys.path.insert(0, str(ROOT))
        from hand_perception.ros.node_utils import reuse_freed_frame_buffers

        reuse_freed_frame_buffers()
    rclpy.init()
    node = rclpy.create_node("bench_sub")
    latencies = []

    def on_image(msg: Image) -> None:
        sent = msg.header.stamp.sec * 1e9 + msg.header.stamp.nanosec
        latencies.append((node.get_clock().now().nanoseconds - sent) / 1e6)

    node.create_subscription(Image, "bench_image", on_image, qos_profile_sensor_data)
    deadline = time.monotonic() + frames / rate + 25
    while time.monotonic() < deadline and len(latencies) < frames:
        rclpy.spin_once(node, timeout_sec=0.05)
    return {"received": len(latencies),
            "median_ms": float(np.median(latencies)) if latencies else None}


def _run_pair(env: dict, frames: int, rate: float, node_malloc: bool) -> dict:
    def start(role: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, __file__, "--role", role, "--frames", str(frames),
                                 "--rate", str(rate), *(["--node-malloc"] if node_malloc else [])],
                                env=env, stdout=subprocess.PIPE, text=True)

    sub = start("sub")
    pub = start("pub")
    result = json.loads(pub.communicate(timeout=120)[0])
    result.update(json.loads(sub.communicate(timeout=120)[0]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--role", choices=("pub", "sub"))
    parser.add_argument("--node-malloc", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.role == "pub":
        print(json.dumps(_publisher(options.frames, options.rate)))
        return 0
    if options.role == "sub":
        print(json.dumps(_subscriber(options.frames, options.rate, options.node_malloc)))
        return 0
    base = {k: v for k, v in os.environ.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    base.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    profile = str(ROOT / "config" / "fastdds_localhost.xml")
    runs = {  # name: (environment, the subscriber sets our nodes' malloc thresholds)
        "default transports": (dict(base, ROS_DOMAIN_ID="61"), False),
        "config/fastdds_localhost.xml": (
            dict(base, ROS_DOMAIN_ID="62", FASTDDS_DEFAULT_PROFILES_FILE=profile), False),
        "config/fastdds_localhost.xml, node malloc thresholds": (
            dict(base, ROS_DOMAIN_ID="63", FASTDDS_DEFAULT_PROFILES_FILE=profile), True),
    }
    print("| DDS set-up | received / sent | lost | median latency (ms) | discovery (s) |")
    print("|---|---|---|---|---|")
    for name, (env, node_malloc) in runs.items():
        r = _run_pair(env, options.frames, options.rate, node_malloc)
        lost = 100.0 * (1 - r["received"] / options.frames)
        median = f"{r['median_ms']:.1f}" if r["median_ms"] is not None else "-"
        print(f"| {name} | {r['received']} / {options.frames} | {lost:.0f}% | {median} | "
              f"{r['discovery_s']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
