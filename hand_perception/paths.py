"""Where hand_perception's shared files (config/, launch/, models) are on this machine."""
from __future__ import annotations

from pathlib import Path

PACKAGE_NAME = "hand_perception"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """The package's share directory: the source tree when running from a checkout, else the
    ament index entry (a colcon install space or the venv prefix)."""
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    from ament_index_python.packages import get_package_share_directory  # ROS side only

    return Path(get_package_share_directory(PACKAGE_NAME))


def config_path(name: str) -> Path:
    """Resolve a config file: absolute paths as given, else relative to ``share_dir()/config``."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    candidate = share_dir() / "config" / path
    if not candidate.exists() and (share_dir() / path).exists():
        candidate = share_dir() / path  # "config/x.yaml" written relative to the share dir
    return candidate


def data_dir() -> Path:
    """Files prepared at set-up (models, sample photos): ``$HAND_PERCEPTION_DATA_DIR``, else
    ``<prefix>/share/hand_perception`` of the running interpreter (the venv or install space)."""
    import os
    import sys

    override = os.environ.get("HAND_PERCEPTION_DATA_DIR", "")
    return Path(override).expanduser() if override else Path(sys.prefix) / "share" / PACKAGE_NAME


def sample_path(name: str = "zidane.jpg") -> Path:
    """A sample photo extracted at set-up; ``ValueError`` naming the set-up command if absent."""
    path = data_dir() / "samples" / name
    if not path.is_file():
        raise ValueError(f"sample {path} is missing: run scripts/setup.sh first")
    return path
