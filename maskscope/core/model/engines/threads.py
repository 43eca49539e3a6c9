"""Threads of the compiled engines, and keeping torch's own threads out of their way.

A compiled engine (ONNX Runtime, OpenVINO) runs its passes on its own thread pool, sized to the
process's torch thread count. Between two passes the scoring loops compose the next batch of
perturbed images with torch ops, and after each parallel op torch's OpenMP threads spin,
waiting for more work, on the cores the engine's threads need: on a 2-core CPU that made
EfficientNet-Lite0's ONNX Runtime passes 20–40% slower. :func:`engine_scoring` runs such a
loop with torch on one thread (the composite ops are cheap beside the model) while the engine
keeps the count the process had; it restores torch's count on the way out.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

#: torch's thread count saved by the outermost :func:`engine_scoring`, while one is active
_saved_threads: int | None = None


def engine_threads() -> int:
    """Threads a compiled engine runs on: the process's torch thread count (as it was outside
    :func:`engine_scoring`)."""
    return _saved_threads if _saved_threads is not None else torch.get_num_threads()


@contextmanager
def engine_scoring(active: bool = True) -> Iterator[None]:
    """Run a forward-only scoring loop with torch's own ops on one thread (when ``active``).

    Only for loops whose model passes all go to a compiled engine: a gradient pass inside the
    block would run torch on one thread. Nested blocks act once.
    """
    global _saved_threads
    if not active or _saved_threads is not None:
        yield
        return
    _saved_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(_saved_threads)
        _saved_threads = None
