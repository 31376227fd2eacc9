"""Start a node graph (config/graphs/*.yaml) in one process on a multi-threaded executor.

The same nodes, names, parameter files and remappings that the launch files start as separate
processes; for machines without launch_ros (the PyPI install) and for tests and the demo.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from hand_perception.ros.graph import GraphSpec, NodeSpec
from hand_perception.ros.node_utils import DrainingMultiThreadedExecutor, reuse_freed_frame_buffers

_log = logging.getLogger(__name__)


def create_node(spec: NodeSpec, context: Optional[Context] = None) -> Node:
    """Instantiate one node of a graph in this process with the graph's ROS arguments."""
    module = importlib.import_module(spec.module)
    node_class = getattr(module, "NODE_CLASS", None)
    if node_class is None:
        raise ValueError(f"{spec.module} has no NODE_CLASS to run in-process")
    return node_class(cli_args=spec.ros_arguments(), use_global_arguments=False, context=context)


@dataclass
class RunningGraph:
    """Nodes of a graph spinning on a background executor thread; ``stop()`` ends them."""

    graph: GraphSpec
    nodes: Dict[str, Node]
    executor: DrainingMultiThreadedExecutor
    thread: threading.Thread
    errors: List[BaseException] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        # End the spin loop before shutting the executor down: shutting it down while the loop
        # still dispatches makes its thread pool refuse the next callback ("cannot schedule new
        # futures after shutdown").
        self.stopping.set()
        self.thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=5.0)
        for node in self.nodes.values():
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()


def start_graph(graph: GraphSpec, context: Optional[Context] = None,
                num_threads: Optional[int] = None) -> RunningGraph:
    """Create every node of ``graph`` (rclpy must be initialised) and spin them in a thread."""
    reuse_freed_frame_buffers()
    executor = DrainingMultiThreadedExecutor(num_threads=num_threads, context=context)
    nodes: Dict[str, Node] = {}
    try:
        for spec in graph.nodes:
            nodes[spec.name] = create_node(spec, context)
            executor.add_node(nodes[spec.name])
    except Exception:
        for node in nodes.values():
            node.destroy_node()
        raise
    running = RunningGraph(graph, nodes, executor, threading.Thread(target=lambda: None))

    def spin() -> None:
        try:
            while not running.stopping.is_set() and executor.context.ok():
                executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            pass
        except BaseException as error:  # surfaced to the caller through RunningGraph.errors
            _log.exception("graph executor failed")
            running.errors.append(error)

    running.thread = threading.Thread(target=spin, name="graph-executor", daemon=True)
    running.thread.start()
    return running


def run_graph(graph: GraphSpec, duration_s: float = 0.0, args: Optional[List[str]] = None) -> int:
    """Run ``graph`` until Ctrl-C, shutdown, or ``duration_s`` seconds (0: forever)."""
    rclpy.init(args=args)
    running = start_graph(graph)
    deadline = time.monotonic() + duration_s if duration_s > 0 else float("inf")
    try:
        while rclpy.ok() and running.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        if rclpy.ok():
            rclpy.shutdown()
    return 1 if running.errors else 0
