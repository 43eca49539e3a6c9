"""The package's modules by their present names, also in a checkout of an earlier layout.

The speed benchmarks run an earlier checkout beside this one. Until the package was split
into ``core/model``, ``core/perturbation``, ``core/scoring`` and ``core/optimisation``, its
modules sat directly in ``maskscope/core`` (the optimisation loop, now
``core/optimisation/descent.py``, was ``core/optimisation.py``): :func:`import_module` finds a
module under either name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: present names whose earlier module is not ``maskscope.core.<last part of the name>``
EARLIER_NAMES = {"maskscope.core.optimisation.descent": "maskscope.core.optimisation"}


def earlier_name(name: str) -> str | None:
    """The name the module ``name`` had in the flat layout, or ``None`` outside ``maskscope.core``."""
    if not name.startswith("maskscope.core.") or name.count(".") < 3:
        return None
    return EARLIER_NAMES.get(name, "maskscope.core." + name.rsplit(".", 1)[1])


def import_module(name: str) -> ModuleType:
    """The module ``name`` of the running package, under its earlier name where the running
    checkout predates the split."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        earlier = earlier_name(name)
        if earlier is None:
            raise
        return importlib.import_module(earlier)
