"""Locating robot-hand URDFs and the shipped retargeting configs at run time.

URDFs are never copied into this repository: shipped configs name them as
``package://dexi_rs/resources/assets/robots/hands/...`` and they are resolved inside the installed
``dexi-rs`` wheel through ``importlib.resources``.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path
from typing import List, Optional, Union

PACKAGE_PREFIX = "package://"
#: Environment variable that overrides where the shipped ``*.yaml`` hand configs are looked up.
CONFIG_DIR_ENV = "HAND_PERCEPTION_RETARGETING_CONFIG_DIR"
#: Hands shipped by default (Schunk SVH is GPL-3 and deliberately left out).
SHIPPED_HANDS = ("allegro", "leap", "shadow", "inspire", "ability")


def resolve_urdf(spec: str, base_dir: Optional[Union[str, Path]] = None) -> Path:
    """Turn a URDF spec into an existing file path.

    ``spec`` is ``package://<python_package>/<path inside it>`` (resolved in the installed Python
    package), an absolute path, or a path relative to ``base_dir`` (the YAML file's folder).
    Raises ``FileNotFoundError`` / ``ModuleNotFoundError`` naming the spec.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"urdf={spec!r} must be a non-empty string")
    if spec.startswith(PACKAGE_PREFIX):
        package, _, inner = spec[len(PACKAGE_PREFIX):].partition("/")
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(
                f"urdf={spec!r}: Python package {package!r} is not installed "
                f"(for the shipped hands: pip install 'dexi-rs==0.4.1')")
        path = Path(str(importlib.resources.files(package).joinpath(inner)))
    else:
        path = Path(os.path.expanduser(spec))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
    if not path.is_file():
        raise FileNotFoundError(f"urdf={spec!r} resolves to {path}, which does not exist")
    return path


def config_dir() -> Path:
    """Folder of the shipped ``<hand>_<side>.yaml`` configs (source tree or ROS share folder)."""
    override = os.environ.get(CONFIG_DIR_ENV)
    candidates: List[Path] = [Path(override)] if override else []
    here = Path(__file__).resolve()
    # Source checkout: <repo>/hand_perception/core/retargeting/resources.py -> <repo>/config.
    candidates.append(here.parents[3] / "config" / "retargeting")
    # Installed ROS package: <prefix>/lib/pythonX/site-packages/... -> <prefix>/share/...
    for parent in here.parents:
        candidates.append(parent / "share" / "hand_perception" / "config" / "retargeting")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no retargeting config folder found; set {CONFIG_DIR_ENV} (looked in {candidates[:3]})")


def shipped_config(hand: str, side: str) -> Path:
    """Path of the shipped config for ``hand`` (e.g. ``"allegro"``) and ``side`` (left/right)."""
    path = config_dir() / f"{hand}_{side}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped retargeting config for hand={hand!r} side={side!r}: "
                                f"{path} is missing")
    return path


def shipped_configs() -> List[Path]:
    """All shipped hand configs, sorted by name."""
    return sorted(config_dir().glob("*.yaml"))
