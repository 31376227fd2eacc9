"""Shared plumbing for the ``XxxOptions`` dataclasses of the core components.

Every core component takes a frozen-ish options dataclass validated in ``__post_init__``; this
module lets each of them be built from a plain mapping or a YAML file, rejecting unknown keys so a
typo in a config file is an error naming the key rather than a silently ignored setting.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Type, TypeVar, Union

import yaml

T = TypeVar("T")


def options_from_mapping(cls: Type[T], values: Mapping[str, Any]) -> T:
    """Build the options dataclass ``cls`` from ``values``; unknown keys raise ``ValueError``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(values, Mapping):
        raise TypeError(f"options for {cls.__name__} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for {cls.__name__}; known: {sorted(known)}")
    return cls(**dict(values))


def options_from_yaml(cls: Type[T], path: Union[str, Path], section: str = "") -> T:
    """Load ``cls`` from a YAML file, optionally from one top-level ``section`` of it."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as stream:
        data = yaml.safe_load(stream) or {}
    if section:
        if section not in data:
            raise ValueError(f"{path}: no section {section!r} (have {sorted(data)})")
        data = data[section] or {}
    return options_from_mapping(cls, data)


def require_range(name: str, value: float, low: float = -math.inf, high: float = math.inf) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``low <= value <= high`` and finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name}={value!r} is outside [{low}, {high}]")


def require_int(name: str, value: int, low: int, high: float = math.inf) -> None:
    """Raise ``TypeError``/``ValueError`` naming ``name`` unless ``value`` is an int in
    [``low``, ``high``]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be in [{low}, {high}]")


def require_choice(name: str, value: Any, choices: tuple) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")
