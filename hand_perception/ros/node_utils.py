"""Small pieces every hand_perception node uses: parameter declaration, throttled errors, main()."""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, Optional, Sequence

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def declare(node: Node, name: str, default: Any, description: str,
            low: Optional[float] = None, high: Optional[float] = None,
            read_only: bool = False) -> Any:
    """Declare a parameter with a descriptor (description and, for numbers, a range) and return
    its value. Ranges are enforced by rclpy: setting a value outside them is rejected."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, bool):
            raise TypeError(f"parameter {name}: a range makes no sense for a bool")
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return node.declare_parameter(name, default, descriptor).value


def log_dropped(node: Node, reason: str, period_s: float = 2.0) -> None:
    """A throttled error for a dropped input, naming the bad value: at most once per ``period_s``
    for each kind of problem (the text before the first ':'), so a stream of bad frames neither
    floods the log nor hides a different problem that starts meanwhile. rclpy's own throttle
    counts per call site, which would silence the second kind."""
    kind = reason.split(":", 1)[0]
    last_logged: Dict[str, float] = node.__dict__.setdefault("_hand_perception_drop_log", {})
    now = time.monotonic()
    if period_s > 0 and now - last_logged.get(kind, -math.inf) < period_s:
        return
    last_logged[kind] = now
    node.get_logger().error(f"dropped frame: {reason}")


def run_nodes(factories: Sequence[Callable[[], Node]], args: Optional[Sequence[str]] = None,
              num_threads: Optional[int] = None) -> int:
    """Initialise rclpy, build the nodes, spin them on a multi-threaded executor until Ctrl-C or
    shutdown, and clean up. Returns the process exit code."""
    rclpy.init(args=args)
    nodes = []
    executor = MultiThreadedExecutor(num_threads=num_threads)
    try:
        for factory in factories:
            nodes.append(factory())
            executor.add_node(nodes[-1])
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for node in nodes:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
