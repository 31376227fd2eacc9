"""The environment that keeps DDS on this machine (mirrors scripts/ros_env.sh for Python callers).

Must be applied before rclpy is initialised: the RMW reads these variables once per context.
"""
from __future__ import annotations

import os
import random
from typing import Dict, MutableMapping, Optional

from hand_perception.paths import share_dir

FASTDDS_PROFILE = "fastdds_localhost.xml"


def local_dds_environment(domain_id: Optional[int] = None) -> Dict[str, str]:
    """Variables for loopback-only DDS: discovery range LOCALHOST, the shared-memory Fast DDS
    profile and a ROS domain (``domain_id``, else a random one in [10, 99] so parallel runs
    never see each other's topics)."""
    if domain_id is None:
        domain_id = random.SystemRandom().randint(10, 99)
    if not 0 <= int(domain_id) <= 101:
        raise ValueError(f"ROS_DOMAIN_ID={domain_id} is outside [0, 101]")
    return {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(share_dir() / "config" / FASTDDS_PROFILE),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "ROS_DOMAIN_ID": str(int(domain_id)),
    }


def apply_local_dds_environment(environ: MutableMapping[str, str] = os.environ,
                                keep_domain: bool = True) -> Dict[str, str]:
    """Write ``local_dds_environment()`` into ``environ``; an existing ROS_DOMAIN_ID is kept when
    ``keep_domain``. Returns what was written."""
    current = environ.get("ROS_DOMAIN_ID", "")
    domain = int(current) if keep_domain and current.isdigit() else None
    values = local_dds_environment(domain)
    environ.update(values)
    return values
