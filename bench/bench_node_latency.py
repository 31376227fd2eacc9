"""Camera-to-HandArray latency of hand_tracker_node in its own process, over real DDS.

This process plays the camera: the bench's 640x480 scenes (real photos, 1 or 2 hands, see
bench_hand_tracking.py) as rgb8 Image + CameraInfo at --rate Hz, best effort, and takes the
node's HandArray messages; the node (``python -m hand_perception.nodes.hand_tracker_node``, CPU
providers) runs in a child process. Latency = arrival of the HandArray - its image's stamp, on
the same machine's clock: conversion, queueing, inference and both DDS hops. DDS stays on this
machine (LOCALHOST discovery, config/fastdds_localhost.xml, a domain of its own).

    python bench/bench_node_latency.py [--frames 300] [--rate 30] [--thread-pool shared|own]
        [--threads N] [--hands 1|2|both] [--search on|off|both] [--camera-malloc nodes|default]

``--search``: the node's ``search_between_frames`` (default ``both``: a row with each, for 1 and
2 hands; with 1 hand and max_hands 2 the node keeps looking for a second hand).
``--camera-malloc``: this process stands in for image_source_node, so by default it sets the
malloc thresholds our nodes set (``node_utils.reuse_freed_frame_buffers``; building each Image
then takes ~0.2 instead of ~1 ms); ``default`` keeps glibc's.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

if __package__ in (None, ""):  # run as a script: make `import bench.x` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_hand_tracking import scene_frames  # noqa: E402
from bench.eval_hand_tracking import DATA  # noqa: E402
from hand_perception.ros.dds_env import local_dds_environment  # noqa: E402
from hand_perception.ros.node_utils import reuse_freed_frame_buffers  # noqa: E402

WARMUP_FRAMES = 30  # model warm-up and the first detector runs are not counted


def start_tracker(env: Dict[str, str], thread_pool: str, threads: int,
                  search_between_frames: bool) -> subprocess.Popen:
    args = ["-r", "__node:=bench_tracker", "-r", "image:=/bench/image",
            "-r", "camera_info:=/bench/camera_info", "-r", "hands:=/bench/hands",
            "-p", "providers:=cpu", "-p", f"inference_thread_pool:={thread_pool}",
            "-p", f"inference_threads:={threads}",
            "-p", f"search_between_frames:={str(search_between_frames).lower()}"]
    return subprocess.Popen([sys.executable, "-m", "hand_perception.nodes.hand_tracker_node",
                             "--ros-args", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def play(frames: List[np.ndarray], rate: float) -> dict:
    """Publish ``frames`` (looped to the requested count) and collect HandArray latencies."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from hand_perception.core.camera import CameraIntrinsics
    from hand_perception.msg import HandArray
    from hand_perception.nodes.image_source_node import camera_info_message
    from hand_perception.ros.image import numpy_to_image

    node = rclpy.create_node("bench_camera")
    image_pub = node.create_publisher(Image, "/bench/image", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "/bench/camera_info", qos_profile_sensor_data)
    intrinsics = CameraIntrinsics.from_fov(640, 480, 60.0)
    latencies, hands, sent = {}, {}, []

    def on_hands(msg: HandArray) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        latencies[stamp] = (node.get_clock().now().nanoseconds - stamp) / 1e6
        hands[stamp] = len(msg.hands)

    node.create_subscription(HandArray, "/bench/hands", on_hands,
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 60.0  # the node loads its models before it subscribes
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    for index, rgb in enumerate(frames):
        due = time.monotonic() + 1.0 / rate
        header = Header(stamp=node.get_clock().now().to_msg(), frame_id="camera_optical_frame")
        info_pub.publish(camera_info_message(intrinsics, header))
        image_pub.publish(numpy_to_image(rgb, "rgb8", header))
        sent.append(header.stamp.sec * 10**9 + header.stamp.nanosec)
        while time.monotonic() < due:
            rclpy.spin_once(node, timeout_sec=max(due - time.monotonic(), 0.0))
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    timed = [latencies[s] for s in sent[WARMUP_FRAMES:] if s in latencies]
    return {"sent": len(sent) - WARMUP_FRAMES, "answered": len(timed),
            "hands": float(np.mean([hands[s] for s in sent[WARMUP_FRAMES:] if s in hands] or [0])),
            "latency_ms": np.asarray(timed)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per row, warm-up included")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--thread-pool", choices=("shared", "own"), default="shared")
    parser.add_argument("--threads", type=int, default=0,
                        help="the node's inference_threads (0: config file, one per core)")
    parser.add_argument("--domain", type=int, default=67, help="ROS_DOMAIN_ID of this run")
    parser.add_argument("--hands", choices=("1", "2", "both"), default="both",
                        help="rows with 1 hand, 2 hands or both")
    parser.add_argument("--search", choices=("on", "off", "both"), default="both",
                        help="the node's search_between_frames")
    parser.add_argument("--camera-malloc", choices=("nodes", "default"), default="nodes",
                        help="this (camera) process' malloc thresholds: those our nodes set "
                             "(image_source_node's) or glibc's default")
    args = parser.parse_args(argv)
    env = dict(os.environ, **local_dds_environment(args.domain))
    os.environ.update(env)  # this process' rclpy reads it at init
    import rclpy

    if args.camera_malloc == "nodes":
        reuse_freed_frame_buffers()

    searches = {"on": (True,), "off": (False,), "both": (True, False)}[args.search]
    print(f"| hands | search between frames | answered / sent | hands per answer | mean ms | "
          f"p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|---|---|")
    hand_counts = {"1": (1,), "2": (2,), "both": (1, 2)}[args.hands]
    for n_hands, search in ((n, s) for n in hand_counts for s in searches):
        tracker = start_tracker(env, args.thread_pool, args.threads, search)
        rclpy.init()
        try:
            result = play(scene_frames(n_hands, args.frames, DATA), args.rate)
        finally:
            rclpy.shutdown()
            tracker.terminate()
            try:
                tracker.wait(timeout=20)
            except subprocess.TimeoutExpired:  # never leave a node behind to skew the next row
                tracker.kill()
                tracker.wait()
        ms = result["latency_ms"]
        if not ms.size:
            sys.stderr.write(tracker.stderr.read())
            raise SystemExit(f"no HandArray received with {n_hands} hand(s)")
        print(f"| {n_hands} | {'on' if search else 'off'} | {result['answered']} / {result['sent']} | "
              f"{result['hands']:.2f} | "
              f"{ms.mean():.1f} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | "
              f"{ms.max():.1f} |", flush=True)
    print(f"\n`python bench/bench_node_latency.py {' '.join(argv or sys.argv[1:])}`, "
          f"{args.rate:g} Hz, 640x480 rgb8, camera malloc {args.camera_malloc}, "
          f"thread pool {args.thread_pool}, inference threads "
          f"{args.threads or 'per core'}; the first "
          f"{WARMUP_FRAMES} frames are not counted.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
