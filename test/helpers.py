"""Waiting helpers for DDS tests: wait on a condition while spinning, never a fixed sleep."""
from __future__ import annotations

import time
from typing import Callable

from rclpy.executors import Executor


def spin_until(executor: Executor, condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Spin ``executor`` until ``condition()`` is true or ``timeout_s`` passes; returns the
    condition's final value."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        executor.spin_once(timeout_sec=0.02)
    return True


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, poll_s: float = 0.02) -> bool:
    """Poll ``condition()`` (something else spins) until true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(poll_s)
    return True
