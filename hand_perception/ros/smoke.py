"""A smoke run of a node graph: start it in-process on loopback DDS, watch its topics, report.

What ``hand-perception demo`` runs until the full demo (tracker -> retargeter -> recorder) lands.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List

import rclpy
from rclpy.context import Context
from rclpy.qos import qos_profile_sensor_data

from hand_perception.ros.graph import GraphSpec
from hand_perception.ros.runner import start_graph


@dataclass
class TopicStats:
    """Messages seen on one topic during the run and the first/last arrival times (s)."""

    count: int = 0
    first: float = 0.0
    last: float = 0.0

    @property
    def rate_hz(self) -> float:
        return (self.count - 1) / (self.last - self.first) if self.count > 1 and self.last > self.first else 0.0


@dataclass
class SmokeReport:
    duration_s: float
    topics: Dict[str, TopicStats] = field(default_factory=dict)

    def lines(self) -> List[str]:
        rows = [f"ran {self.duration_s:.1f} s"]
        rows += [f"  {name:<28} {s.count:6d} msgs  {s.rate_hz:6.1f} Hz" for name, s in self.topics.items()]
        return rows


def smoke_run(graph: GraphSpec, watch: Dict[str, type], duration_s: float = 3.0) -> SmokeReport:
    """Run ``graph`` for ``duration_s`` seconds and count messages on the ``watch`` topics
    (name -> message type). Needs the local DDS environment applied beforehand."""
    context = Context()
    rclpy.init(context=context)
    report = SmokeReport(duration_s=duration_s, topics={name: TopicStats() for name in watch})
    try:
        running = start_graph(graph, context=context)
        monitor = rclpy.create_node("smoke_monitor", context=context)
        for name, msg_type in watch.items():
            monitor.create_subscription(msg_type, name, _counter(report.topics[name]),
                                        qos_profile_sensor_data)
        running.executor.add_node(monitor)
        time.sleep(duration_s)
        running.stop()
        monitor.destroy_node()
        if running.errors:
            raise RuntimeError(f"graph failed: {running.errors[0]!r}")
    finally:
        rclpy.shutdown(context=context)
    return report


def _counter(stats: TopicStats):
    def on_message(_msg) -> None:
        now = time.monotonic()
        stats.first = stats.first or now
        stats.last = now
        stats.count += 1
    return on_message
