"""Markdown tables for the bench scripts' results."""
from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any, List, Sequence


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: floats rounded, NaN/None as 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return numerator / denominator if denominator else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """Where the numbers were taken."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.processor() or platform.machine()}, {cores} CPU cores, Python {platform.python_version()}"


def write(path: Path, title: str, sections: List[str], command: str) -> str:
    """Join ``sections`` under ``title`` with the command that made them; write and return it."""
    text = "\n\n".join([f"# {title}", f"Command: `{command}`  \nMachine: {machine_line()}"]
                       + sections) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
