"""Test-wide set-up: DDS stays on this machine, on a domain of this run's own.

The environment is written before any test module imports rclpy, because the RMW reads it once
per context. test/helpers.py has the waiting helpers (no fixed sleeps: tests wait for matching).
"""
import os
from pathlib import Path

import pytest

from hand_perception.ros.dds_env import apply_local_dds_environment

# Forced for every run: LOCALHOST discovery, the loopback/shared-memory profile and a per-run
# domain (scripts/test.sh already picked one; a bare `pytest` gets a random one here).
DDS_ENV = apply_local_dds_environment(os.environ, keep_domain=True)
SHARED_HANDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hands"


@pytest.fixture(scope="session")
def shared_hands_dir() -> Path:
    """../shared/data/hands (real photos with ground truth); skips where absent."""
    if not SHARED_HANDS.is_dir():
        pytest.skip(f"real hand photos not found at {SHARED_HANDS} (../shared beside the repo)")
    return SHARED_HANDS


@pytest.fixture
def rclpy_context():
    """A fresh rclpy context for one test, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)
