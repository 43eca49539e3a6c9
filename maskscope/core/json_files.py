"""Reading a JSON file that must hold one object (settings, class groups, a label map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maskscope.errors import MaskscopeError


def read_json_object(path: Path, error: type[MaskscopeError], expected: str) -> dict[str, Any]:
    """The JSON object in the file ``path``; ``error`` naming the file when its text is not JSON
    (``"PATH: not JSON (...)"``) or not an object (``"PATH: expected EXPECTED"``)."""
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as problem:
        raise error(f"{path}: not JSON ({problem})") from problem
    if not isinstance(values, dict):
        raise error(f"{path}: expected {expected}")
    return values
