"""Small pieces every hand_perception node uses: parameter declaration, throttled errors, main()."""
from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

_log = logging.getLogger(__name__)

#: glibc malloc thresholds for node processes (bytes), see ``reuse_freed_frame_buffers``.
MMAP_THRESHOLD = 32 * 2 ** 20
TRIM_THRESHOLD = 128 * 2 ** 20

#: Longest wait of one spin; a Ctrl-C is acted on at most this much later (s), once the
#: callback running then returns.
SPIN_PERIOD_S = 0.1


class DrainingMultiThreadedExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor whose ``shutdown`` first lets the callbacks already handed to
    its thread pool finish. rclpy 9.1's ``Executor.shutdown`` does not wait for them (it tests
    the flag it has just set) and destroys its guard condition under them; their handler's
    ``trigger()`` then raises InvalidHandle, which the interpreter prints at exit as "The
    following exception was never retrieved: cannot use Destroyable because destruction was
    requested". Call it after the spin loop has stopped: nothing new is submitted then."""

    def shutdown(self, timeout_sec: Optional[float] = None, *,
                 wait_for_threads: bool = True) -> bool:
        self._executor.shutdown(wait=True)  # rclpy's pool (no public handle to its callbacks)
        return super().shutdown(timeout_sec, wait_for_threads=wait_for_threads)


def reuse_freed_frame_buffers() -> bool:
    """Make glibc's malloc reuse freed image-sized buffers instead of handing each one back to
    the kernel. By default a block over ~128 KiB (a 640x480 frame is 900 KiB) is mmap'ed and
    unmapped again when freed, so every message's buffers start as untouched pages and fault in
    (~450 faults per 640x480 rgb8 Image built from numpy). With blocks up to ``MMAP_THRESHOLD``
    taken from the heap, which keeps up to ``TRIM_THRESHOLD`` of freed memory (the usual
    real-time ROS 2 set-up), building one took 0.16 instead of 0.9-1.0 ms, and a Python
    subscriber had such images 1.6-1.8 instead of 3.0 ms (p50) after their stamp. Thresholds
    given in the environment (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) are left
    alone. Returns whether the thresholds were set (False off glibc)."""
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    done = (mallopt(m_mmap_threshold, MMAP_THRESHOLD) == 1
            and mallopt(m_trim_threshold, TRIM_THRESHOLD) == 1)
    _log.debug("malloc thresholds %s", "set" if done else "refused")
    return done


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
              num_threads: Optional[int] = None, single_threaded: bool = False) -> int:
    """Initialise rclpy, build the nodes, spin them until Ctrl-C (SIGINT), SIGTERM or shutdown,
    and clean up. Returns the process exit code.

    ``single_threaded``: rclpy's EventsExecutor (one thread, its event queue and dispatch in
    C++), for nodes whose callbacks are all short and whose heavy work has a thread of its own
    (the hand tracker): Python executors add latency (a 640x480 image between two processes:
    p50 5.1 ms with a MultiThreadedExecutor, 3.7 ms with a SingleThreadedExecutor; EventsExecutor
    cut the tracker's image-to-worker time further, see README, Speed); otherwise a
    MultiThreadedExecutor with ``num_threads``.

    rclpy's own signal handlers are off: they shut the context down at once, under worker
    threads still publishing (a SingleThreadedExecutor then crashed on Ctrl-C). Python's default
    KeyboardInterrupt is not used either: raised inside a message take it surfaces as a
    pybind11 conversion error. Here a signal only sets a flag that the spin loop checks between
    spins; the context is shut down after every node's ``close()`` (its threads stop) and
    ``destroy_node()``."""
    reuse_freed_frame_buffers()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    nodes = []
    executor = (EventsExecutor() if single_threaded
                else DrainingMultiThreadedExecutor(num_threads=num_threads))
    try:
        for factory in factories:
            nodes.append(factory())
            executor.add_node(nodes[-1])
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
