"""What every benchmark writes: its figures, the machine they were measured on, as one JSON file.

Every script imports it as ``benchmarks.common.records`` (a script run as a file puts the
checkout's root at the end of the import path).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import torch


def machine(device: str | torch.device = "cpu") -> dict:
    """The device, torch's thread count, the processor, its cores (and those this process may
    use, fewer when it is pinned) and torch's version."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch": torch.__version__,
    }


def git_commit(folder: Path) -> str:
    """The short commit of the git checkout ``folder`` ("unknown" outside one)."""
    result = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def write_record(path: Path, record: dict, shown: dict | None = None) -> None:
    """Write ``record`` to ``path`` as indented JSON and print ``shown`` (default: all of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps(record if shown is None else shown, indent=2))
