"""Small pieces every hand_perception node uses: parameter declaration, throttled errors, main()."""
from __future__ import annotations

import math
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
