"""Complete ROS 2 message definitions (``ros2msg`` schema text) and type hashes for bag schemas.

rosbag2 stores, for every topic, the type's ``.msg`` text followed by the text of every nested
type, each preceded by a line of 80 ``=`` and ``MSG: pkg/msg/Type`` (the ``ros2msg`` encoding
that ``ros2 bag``, Foxglove and the ``mcap_ros2`` decoder read). The texts here are the installed
``share/<pkg>/msg/<Type>.msg`` files themselves, comments included, as rosbag2 does; the
``RIHS01_...`` type hash is the one rosidl generated next to them (``<Type>.json``), or, where
that file is missing, rosbags' computation over the same texts.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

_log = logging.getLogger(__name__)

SEPARATOR = "=" * 80
_PRIMITIVES = frozenset({
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
    "uint32", "int64", "uint64", "string", "wstring", "time", "duration"})
_TYPE_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)/(?:msg/)?([A-Za-z][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class MessageDefinition:
    """What a bag needs to describe one message type."""

    type_name: str  # canonical "pkg/msg/Type"
    text: str       # complete ros2msg text: the type's .msg, then each dependency after a delimiter
    rihs01: str     # "RIHS01_<64 hex>" type description hash


def canonical_type_name(type_name: str) -> Tuple[str, str]:
    """``("pkg", "Type")`` from ``pkg/msg/Type`` or ``pkg/Type``; ``ValueError`` otherwise."""
    match = _TYPE_NAME.match(type_name.strip()) if isinstance(type_name, str) else None
    if not match:
        raise ValueError(f"message type {type_name!r} is not of the form pkg/msg/Type")
    return match.group(1), match.group(2)


def default_search_dirs() -> List[Path]:
    """``share`` directories that may hold ``<pkg>/msg/*.msg``: the running interpreter's prefix
    (the venv with the ROS wheels and our built messages), every AMENT_PREFIX_PATH entry, and the
    source checkout (for hand_perception's own msg/ before it is installed)."""
    dirs = [Path(sys.prefix) / "share"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share")
    source_root = Path(__file__).resolve().parents[3]
    if (source_root / "msg").is_dir() and (source_root / "package.xml").is_file():
        dirs.append(source_root)  # msg/ directly under it; see _is_package_root
    return dirs


def field_types(text: str, package: str) -> List[str]:
    """Nested (non-primitive) types named by the fields of a .msg text, as ``pkg/msg/Type``, in
    order of first use. Constants and primitive fields are skipped."""
    found: List[str] = []
    for raw_line in text.splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2 or "=" in parts[1]:
            continue  # a constant ("uint8 NAME=1") or a malformed line rosidl would reject
        base = re.sub(r"\[.*\]$", "", parts[0]).split("<=", 1)[0]
        if base in _PRIMITIVES:
            continue
        if "/" in base:
            pkg, name = canonical_type_name(base)
        elif base == "Header":
            pkg, name = "std_msgs", "Header"
        else:
            pkg, name = package, base
        full = f"{pkg}/msg/{name}"
        if full not in found:
            found.append(full)
    return found


class MessageDefinitionSource:
    """Finds ``.msg`` files in ``search_dirs`` and builds complete definitions, cached per type.

    ``definition()`` raises ``ValueError`` naming the type when its .msg (or a nested one) is not
    installed, so a recorder can refuse that topic with a clear message.
    """

    def __init__(self, search_dirs: Optional[Sequence[Path]] = None) -> None:
        self._dirs = [Path(d) for d in (search_dirs or default_search_dirs())]
        self._texts: Dict[str, Tuple[str, Path]] = {}
        self._cache: Dict[str, MessageDefinition] = {}

    def _msg_file(self, package: str, name: str) -> Path:
        for directory in self._dirs:
            for candidate in (directory / package / "msg" / f"{name}.msg",
                              directory / "msg" / f"{name}.msg"):
                if candidate.is_file() and (candidate.parent.parent.name == package
                                            or _is_package_root(candidate.parent.parent, package)):
                    return candidate
        raise ValueError(f"message type {package}/msg/{name}: no {name}.msg under "
                         f"{[str(d) for d in self._dirs]}")

    def msg_text(self, type_name: str) -> str:
        """The installed .msg text of one type (no dependencies)."""
        package, name = canonical_type_name(type_name)
        key = f"{package}/msg/{name}"
        if key not in self._texts:
            path = self._msg_file(package, name)
            self._texts[key] = (path.read_text(encoding="utf-8"), path)
        return self._texts[key][0]

    def dependencies(self, type_name: str) -> List[str]:
        """Every nested type, depth first in order of first use (rosbag2's order), unique."""
        order: List[str] = []

        def visit(current: str) -> None:
            package = canonical_type_name(current)[0]
            for nested in field_types(self.msg_text(current), package):
                if nested not in order:
                    order.append(nested)
                    visit(nested)

        visit(type_name)
        return order

    def definition(self, type_name: str) -> MessageDefinition:
        """The complete ros2msg definition and RIHS01 hash of ``type_name``."""
        package, name = canonical_type_name(type_name)
        key = f"{package}/msg/{name}"
        if key not in self._cache:
            deps = self.dependencies(key)
            pieces = [self.msg_text(key).rstrip("\n")]
            for dep in deps:
                pieces.append(f"{SEPARATOR}\nMSG: {dep}\n{self.msg_text(dep).rstrip(chr(10))}")
            text = "\n".join(pieces) + "\n"
            self._cache[key] = MessageDefinition(key, text, self._hash(key, [key, *deps]))
        return self._cache[key]

    def _hash(self, key: str, types: List[str]) -> str:
        json_file = self._texts[key][1].with_suffix(".json")
        if json_file.is_file():
            for entry in json.loads(json_file.read_text(encoding="utf-8")).get("type_hashes", []):
                if entry.get("type_name") == key:
                    return str(entry["hash_string"])
        return self._hash_with_rosbags(key, types)

    def _hash_with_rosbags(self, key: str, types: List[str]) -> str:
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore

        store = get_typestore(Stores.EMPTY)
        parsed: Dict = {}
        for name in types:
            parsed.update(get_types_from_msg(self.msg_text(name), name))
        store.register(parsed)
        _log.debug("type hash of %s computed by rosbags (no rosidl .json installed)", key)
        return store.hash_rihs01(key)


def _is_package_root(directory: Path, package: str) -> bool:
    """A source checkout's root (msg/ beside package.xml) counts as ``package``."""
    xml = directory / "package.xml"
    return xml.is_file() and f"<name>{package}</name>" in xml.read_text(encoding="utf-8")
