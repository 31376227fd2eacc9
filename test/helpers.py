"""Helpers for DDS tests: wait on a condition while spinning (never a fixed sleep), and find
the shared-memory segments that exited processes left behind."""
from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import Callable, Set

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


def orphaned_fastdds_segments(shm_dir: Path = Path("/dev/shm")) -> Set[str]:
    """Names of Fast DDS shared-memory segments whose owner process has exited. A participant
    holds an exclusive flock on its segment's ``<segment>_el`` file while it lives (the test
    Fast DDS' own ``fastdds shm clean`` makes), so a lock we can take marks an orphan."""
    orphans = set()
    for lock_file in shm_dir.glob("fastdds_????????????????_el"):
        try:
            with lock_file.open("ab") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # locked: its participant is alive (or the file just went away)
        orphans.add(lock_file.name[:-len("_el")])
    return orphans


def remove_fastdds_segments(names: Set[str], shm_dir: Path = Path("/dev/shm")) -> None:
    """Delete orphaned segments (``orphaned_fastdds_segments``) and their lock files, as
    ``fastdds shm clean`` would: a ``kill -9``'d participant leaves 64 MiB of RAM behind."""
    for name in names:
        for path in (shm_dir / name, shm_dir / f"{name}_el"):
            path.unlink(missing_ok=True)
